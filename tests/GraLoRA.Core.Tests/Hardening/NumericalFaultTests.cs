using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>NaN/Inf in loss or gradients, simulated out-of-memory during a step, and merges that would overflow.</summary>
    public sealed class NumericalFaultTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        BaseModel Model()
        {
            var model = BaseModel.Load(TinyModelFactory.Save(tmp.File("tiny"), new TinyModelOptions { Seed = 5 }));
            manual_seed(1);
            model.AddAdapter("default", new AdapterConfig { Rank = 8, K = 2, Alpha = 16, TargetModules = new[] { AdapterConfig.AllLinear } });
            return model;
        }

        /// <summary>Batches of 2 rows × 8 tokens; batch i holds examples 2i and 2i+1.</summary>
        sealed class Batches : IBatchSource
        {
            readonly List<DataBatch> _batches;
            public Batches(int count)
            {
                _batches = Enumerable.Range(0, count).Select(i =>
                {
                    var ids = Enumerable.Range(0, 16).Select(j => (long)(100 + (i + j) % 16)).ToArray();
                    return new DataBatch(2, 8, ids, ids.ToArray(), Enumerable.Repeat(1L, 16).ToArray(),
                        Enumerable.Range(0, 16).Select(j => (long)(j % 8)).ToArray(), null, null, new[] { 2 * i, 2 * i + 1 });
                }).ToList();
            }
            public int BatchesPerEpoch => _batches.Count;
            public IEnumerable<DataBatch> Epoch(int epoch) => _batches;
        }

        // Plain arrays: the hook runs inside the step's dispose scope, which would free cloned tensors.
        static Dictionary<string, float[]> Snapshot(BaseModel model) =>
            model.Adapters.StateDict("default").ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().to(ScalarType.Float32).data<float>().ToArray());

        static bool Same(Dictionary<string, float[]> a, Dictionary<string, float[]> b) => a.All(kv => kv.Value.SequenceEqual(b[kv.Key]));

        [Fact]
        public void NaNGradientAtOneStepSkipsThatStepAndNamesStepParameterAndBatch()
        {
            using var model = Model();
            var trainer = new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 5, LoggingSteps = 1 });
            var warnings = new List<string>();
            trainer.Warning = warnings.Add;
            Dictionary<string, float[]>? before = null, after = null;
            string poisoned = "";
            trainer.FaultInjection = (step, phase, parameters) =>
            {
                if (step == 3 && phase == "backward")
                {
                    before = Snapshot(model);
                    var (name, p) = parameters[parameters.Count / 2];
                    poisoned = name;
                    using (no_grad()) p.grad![0] = float.NaN;
                }
                if (step == 4 && phase == "forward" && after is null) after = Snapshot(model);
            };
            var result = trainer.Train(new Batches(4));

            Assert.Equal(5, result.Steps);
            Assert.Equal(1, result.SkippedSteps);
            var skipped = Assert.Single(result.Skipped!);                               // counted as data, not from the text
            Assert.Equal(3, skipped.Step);
            Assert.Contains($"parameter '{poisoned}'", skipped.Reason);
            var warning = Assert.Single(warnings);
            Assert.Equal(warning, Assert.Single(result.Warnings!));
            Assert.Contains("Step 3 skipped", warning);
            Assert.Contains($"parameter '{poisoned}'", warning);
            Assert.Contains("micro-batch 2 of epoch 0 (examples 4, 5)", warning);
            // The skipped step changed nothing, and training went on to finite weights.
            Assert.True(Same(before!, after!), "step 3 must not update the adapter");
            Assert.All(model.Adapters.StateDict("default").Values, t => Assert.True(t.isfinite().all().item<bool>()));
            Assert.True(double.IsNaN(result.History[2].Loss));
            Assert.True(double.IsFinite(result.History[3].Loss));
        }

        [Fact]
        public void NaNLossStopsTheRunWhenAskedAndNamesTheBatch()
        {
            using var model = Model();
            var trainer = new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 5, OnNonFinite = NonFiniteAction.Stop });
            var weight = model.Module.named_parameters().First(p => p.name.EndsWith("embed_tokens.weight")).parameter;
            trainer.FaultInjection = (step, phase, _) =>
            {
                // A poisoned weight (as a bad data value or an overflow would leave) at step 2 only.
                if (phase != "forward") return;
                using (no_grad()) weight[100, 0] = step == 2 ? float.PositiveInfinity : 0.01f;
            };
            var ex = Assert.Throws<GraloraException>(() => trainer.Train(new Batches(4)));
            Assert.Equal("NonFiniteLoss", ex.ErrorId);
            Assert.Contains("Training stopped at step 2", ex.Message);
            Assert.Contains("micro-batch 1 of epoch 0 (examples 2, 3)", ex.Message);
            Assert.Contains("OnNonFinite = SkipStep", ex.Message);
        }

        [Fact]
        public void NaNLossIsSkippedByDefault()
        {
            using var model = Model();
            var trainer = new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 4 });
            var weight = model.Module.named_parameters().First(p => p.name.EndsWith("embed_tokens.weight")).parameter;
            trainer.FaultInjection = (step, phase, _) =>
            {
                if (phase != "forward") return;
                using (no_grad()) weight[100, 0] = step == 2 ? float.NaN : 0.01f;
            };
            var result = trainer.Train(new Batches(4));
            Assert.Equal(4, result.Steps);
            var warning = Assert.Single(result.Warnings!);
            Assert.Contains("Step 2 skipped", warning);
            Assert.Contains("the loss is NaN on micro-batch 1 of epoch 0", warning);
        }

        [Fact]
        public void OutOfMemoryInAStepNamesWhatToLowerAndLeavesTheModelUsable()
        {
            using var model = Model();
            var trainer = new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 3 });
            // Simulated: a real libtorch allocation failure, asked for inside the step (an exabyte cannot be allocated).
            trainer.FaultInjection = (step, phase, _) =>
            {
                if (step == 2 && phase == "forward") using (empty(1L << 60, dtype: ScalarType.Byte)) { }
            };
            var ex = Assert.Throws<GraloraException>(() => trainer.Train(new Batches(4)));
            Assert.Equal("OutOfMemory", ex.ErrorId);
            Assert.Contains("at step 2 (batch size 2, sequence length 8)", ex.Message);
            Assert.Contains("Lower the batch size", ex.Message);
            Assert.Contains("maximum sequence length", ex.Message);
            Assert.Contains("gradient checkpointing", ex.Message);
            Assert.False(model.Module.training);

            // The process and model stay usable: a fresh run trains to the end.
            var again = new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 2 }).Train(new Batches(4));
            Assert.Equal(2, again.Steps);
            Assert.True(double.IsFinite(again.FinalLoss!.Value));
        }

        [Fact]
        public void OutOfMemoryRecognisesDotNetAndLibtorchAllocationFailures()
        {
            Assert.True(Trainer.IsOutOfMemory(new OutOfMemoryException()));
            Assert.True(Trainer.IsOutOfMemory(new System.Runtime.InteropServices.ExternalException("CUDA out of memory. Tried to allocate 2.00 GiB")));
            Assert.True(Trainer.IsOutOfMemory(new System.Runtime.InteropServices.ExternalException("[enforce fail at alloc_cpu.cpp:116] DefaultCPUAllocator: can't allocate memory")));
            Assert.False(Trainer.IsOutOfMemory(new System.Runtime.InteropServices.ExternalException("shape mismatch")));
            Assert.False(Trainer.IsOutOfMemory(new InvalidOperationException("out of memory")));
        }

        // ---- merges ----

        [Fact]
        public void SafeMergeRefusesASumThatOverflowsFloat16WhenStored()
        {
            using var scope = NewDisposeScope();
            var linear = nn.Linear(8, 8, hasBias: false, dtype: ScalarType.Float16);
            using (no_grad()) linear.weight!.fill_(65000f);
            var layer = new GraloraLinear(linear, "default", new GraloraOptions { Rank = 4, K = 2, Alpha = 4, InitWeights = false });
            using (no_grad())
            {
                foreach (var p in layer.named_parameters().Where(p => p.name.StartsWith("gralora_"))) p.parameter.fill_(100f);
            }
            // W + ΔW is finite in float32 but above float16's 65504.
            var delta = layer.GetDeltaWeight("default").to(ScalarType.Float32);
            Assert.True(delta.isfinite().all().item<bool>());
            Assert.True((delta + 65000f).max().item<float>() > 65504f);
            var weight = linear.weight!.detach().clone();
            var ex = Assert.Throws<GraloraException>(() => layer.Merge(safe: true));
            Assert.Equal("NonFiniteMerge", ex.ErrorId);
            Assert.Contains("Float16", ex.Message);
            Assert.True(TensorAssert.Identical(weight, linear.weight!));
        }

        [Fact]
        public void BFloat16MergeIsComputedInFloat32AndRoundedOnce()
        {
            using var scope = NewDisposeScope();
            // W = 1 (bfloat16, whose step at 1 is 2^-7) and ΔW = 2^-8 + 2^-17: just above half a step. Rounded once from
            // float32, 1 + ΔW is 1 + 2^-7; adding in bfloat16 would first round ΔW to 2^-8, a tie that rounds back to 1.
            var linear = nn.Linear(4, 4, hasBias: false, dtype: ScalarType.BFloat16);
            using (no_grad()) linear.weight!.fill_(1f);
            var layer = new LoraLinear(linear, "default", new LoraOptions { Rank = 1, Alpha = 1, InitWeights = false });
            float delta = MathF.Pow(2, -8) + MathF.Pow(2, -17);
            using (no_grad())
            {
                foreach (var (name, p) in layer.named_parameters().Where(p => p.name.StartsWith("lora_")))
                    p.fill_(name.StartsWith("lora_A") ? 1f : delta);
            }
            var delta32 = layer.GetDeltaWeight("default").to(ScalarType.Float32);
            Assert.Equal(delta, delta32[0, 0].item<float>());
            Assert.Equal(1f, (linear.weight! + delta32.to(ScalarType.BFloat16))[0, 0].to(ScalarType.Float32).item<float>());   // the bfloat16 path
            layer.Merge(safe: true);
            Assert.Equal(ScalarType.BFloat16, linear.weight!.dtype);
            Assert.All(linear.weight!.to(ScalarType.Float32).data<float>().ToArray(), w => Assert.Equal(1f + MathF.Pow(2, -7), w));
        }
    }
}
