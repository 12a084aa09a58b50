using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using GraLoRA.Distributed;
using GraLoRA.IO;
using GraLoRA.Models;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Data-parallel training over real Open MPI processes: <c>mpirun -np 2</c> of the bench's rank host
    /// (GraLoRA.Bench dist-child), against the same host run alone. The reference is always the one-process run of
    /// the same data and settings, so these check that distribution changes nothing but rounding. Needs Open MPI's
    /// mpirun (./build.sh installs it from Debian); where it could not be installed, build.sh says why and exports
    /// GRALORA_MPI_UNAVAILABLE, and these tests are reported as skipped with that reason (<see cref="MpiFactAttribute"/>).
    /// </summary>
    public sealed class DataParallelMpiTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        readonly ITestOutputHelper output;
        public DataParallelMpiTests(ITestOutputHelper output) => this.output = output;
        public void Dispose() => tmp.Dispose();

        static string BenchDll => TestEnvironment.BenchDll;

        string? _model;
        string Model => _model ??= TinyModelFactory.Save(tmp.File("tiny"), new TinyModelOptions { Seed = 5 });

        /// <summary>What every test here needs; a missing mpirun fails unless build.sh said why (then the test is skipped).</summary>
        static void RequireMpi()
        {
            Assert.True(File.Exists(BenchDll), $"'{BenchDll}' is missing: build the solution (./build.sh build) first.");
            Assert.True(Launchers.FindMpirun() is not null, "mpirun is not on PATH: install Open MPI (apt-get install openmpi-bin), or run ./build.sh test, which installs it.");
        }

        sealed record Run(int Exit, string Output, TimeSpan Elapsed)
        {
            public IEnumerable<(int Step, double Loss, double? Eval)> Steps =>
                Output.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("step ", StringComparison.Ordinal)).Select(l => l.Split(' ')).Select(p =>
                    (int.Parse(p[1], CultureInfo.InvariantCulture), double.Parse(p[3], CultureInfo.InvariantCulture),
                     p.Length > 5 ? double.Parse(p[5], CultureInfo.InvariantCulture) : (double?)null));
        }

        /// <summary>The rank host as <paramref name="ranks"/> MPI ranks (alone for 1), with <paramref name="args"/>.</summary>
        Run Ranks(int ranks, string outDir, string args, IDictionary<string, string>? environment = null)
        {
            var program = new List<string> { "dotnet", BenchDll, "dist-child", "--model", Model, "--out", tmp.File(outDir), "--threads", "1" };
            program.AddRange(args.Split(' ', StringSplitOptions.RemoveEmptyEntries));
            var start = ranks == 1 ? new ProcessStartInfo(program[0], program.Skip(1)) : new ProcessStartInfo(Launchers.RequireMpirun(), Launchers.MpirunArguments(ranks, program));
            start.RedirectStandardOutput = start.RedirectStandardError = true;
            start.UseShellExecute = false;
            start.Environment["TERM"] = "dumb";
            foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
            var clock = Stopwatch.StartNew();
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"{ranks} rank(s) did not finish within 5 minutes: {stdout.Result}{stderr.Result}");
            }
            var run = new Run(process.ExitCode, stdout.Result + stderr.Result, clock.Elapsed);
            output.WriteLine($"--- {ranks} rank(s) {args}: exit {run.Exit} in {run.Elapsed.TotalSeconds:0.0} s\n{run.Output}");
            return run;
        }

        Dictionary<string, Tensor> Weights(string outDir, int rank) => Safetensors.Read(Path.Combine(tmp.File(outDir), $"rank-{rank}.safetensors"));
        string[] Warnings(string outDir, int rank) => File.ReadAllLines(Path.Combine(tmp.File(outDir), $"rank-{rank}.warnings"));

        static double MaxAbsDifference(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b)
        {
            Assert.Equal(a.Keys.OrderBy(k => k), b.Keys.OrderBy(k => k));
            return a.Keys.Max(k => (a[k] - b[k]).abs().max().item<float>());
        }

        static void AssertIdentical(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b, string what)
        {
            foreach (var key in a.Keys) Assert.True(TensorAssert.Identical(a[key], b[key]), $"{what}: '{key}' differs");
        }

        [MpiFact]
        public void TwoRanksOfBatchFourGiveTheAdapterOfOneRankOfBatchEightAfterFiveSteps()
        {
            RequireMpi();
            var one = Ranks(1, "one", "--batch 8 --steps 5 --validation");
            var two = Ranks(2, "two", "--batch 4 --steps 5 --validation");
            Assert.True(one.Exit == 0 && two.Exit == 0, one.Output + two.Output);
            Assert.Contains("rank 1 of 2 done: 5 steps", two.Output);

            // fp32: the same math, summed in another order (rank shares, then across ranks): equal within rounding.
            double difference = MaxAbsDifference(Weights("two", 0), Weights("one", 0));
            output.WriteLine($"max abs adapter weight difference: {difference:E3}");
            Assert.True(difference <= 1e-5, $"2 × 4 vs 1 × 8: max abs adapter weight difference {difference:E3}");
            var b = Weights("one", 0).First(kv => kv.Key.EndsWith("gralora_B", StringComparison.Ordinal));
            Assert.True(b.Value.abs().max().item<float>() > 1e-3, "training must have moved B away from its zero start");
            AssertIdentical(Weights("two", 0), Weights("two", 1), "rank 1 vs rank 0");

            // The reported loss is the global step's, and validation (every 2 steps and at the end) is reduced over the ranks.
            var (a1, a2) = (one.Steps.ToList(), two.Steps.ToList());
            Assert.Equal(a1.Select(s => s.Step), a2.Select(s => s.Step));
            for (int i = 0; i < a1.Count; i++)
            {
                Assert.Equal(a1[i].Loss, a2[i].Loss, 1e-5);
                Assert.Equal(a1[i].Eval.HasValue, a2[i].Eval.HasValue);
                if (a1[i].Eval is { } e) Assert.Equal(e, a2[i].Eval!.Value, 1e-5);
            }
            Assert.Equal(3, a1.Count(s => s.Eval is not null));
        }

        [MpiFact]
        public void ANonFiniteLossOrGradientOnOneRankSkipsThatStepOnEveryRankAsInOneProcess()
        {
            RequireMpi();
            // Step 2: rank 1's gradient gets a NaN (one process: its only rank); step 4: rank 0's loss is NaN.
            var one = Ranks(1, "one", "--batch 8 --steps 5 --nan-at 2 --fault-rank 0 --nan-loss-at 4 --nan-loss-rank 0");
            var two = Ranks(2, "two", "--batch 4 --steps 5 --nan-at 2 --fault-rank 1 --nan-loss-at 4 --nan-loss-rank 0");
            Assert.True(one.Exit == 0 && two.Exit == 0, one.Output + two.Output);
            foreach (int rank in new[] { 0, 1 })
            {
                var warnings = Warnings("two", rank);
                Assert.Equal(2, warnings.Length);
                Assert.StartsWith("Step 2 skipped (no update): the gradient norm is NaN", warnings[0]);
                Assert.StartsWith("Step 4 skipped (no update):", warnings[1]);
            }
            Assert.Contains("the loss is NaN on micro-batch 3 of epoch 0", Warnings("two", 0)[1]);
            Assert.Contains("(rank 0)", Warnings("two", 0)[1]);
            Assert.Contains("rank 0 of 2 saw a non-finite loss", Warnings("two", 1)[1]);
            AssertIdentical(Weights("two", 0), Weights("two", 1), "rank 1 vs rank 0");
            Assert.True(MaxAbsDifference(Weights("two", 0), Weights("one", 0)) <= 1e-5, "the skips must match one process's");
        }

        [MpiFact]
        public void StoppingOneRankStopsEveryRankAtThatStepAndResumingContinuesBitForBit()
        {
            RequireMpi();
            const string settings = "--batch 4 --steps 6 --dropout 0.2 --save-steps 2";
            var straight = Ranks(2, "straight", settings);
            // Only rank 0's cancellation token fires (at step 3); the stop agreement stops rank 1 at the same step.
            var stopped = Ranks(2, "resumed", settings + " --stop-at 3");
            Assert.True(straight.Exit == 0 && stopped.Exit == 0, straight.Output + stopped.Output);
            Assert.Contains("rank 0 of 2 done: 3 steps, cancelled", stopped.Output);
            Assert.Contains("rank 1 of 2 done: 3 steps, cancelled", stopped.Output);

            string run = Path.Combine(tmp.File("resumed"), "run");
            string checkpoint = Path.Combine(run, "checkpoint-3");
            var world = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "distributed.json")))!;
            Assert.Equal(2, (int)world["world_size"]!);
            Assert.Equal(8, (int)world["global_batch_rows"]!);
            Assert.True(File.Exists(Path.Combine(checkpoint, "rng_state_1.safetensors")), "rank 1's random state (dropout) is saved by rank 0");
            Assert.Empty(Directory.GetDirectories(run, ".*"));                                  // nothing half-written
            var metricSteps = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => (int)JsonNode.Parse(l)!["step"]!).ToList();
            Assert.Equal(new[] { 1, 2, 3 }, metricSteps);                                       // written once, by rank 0

            var resumed = Ranks(2, "resumed", settings + " --resume");
            Assert.True(resumed.Exit == 0, resumed.Output);
            Assert.Equal(new[] { 4, 5, 6 }, resumed.Steps.Select(s => s.Step));
            AssertIdentical(Weights("resumed", 0), Weights("straight", 0), "resumed vs uninterrupted, rank 0");
            AssertIdentical(Weights("resumed", 1), Weights("straight", 1), "resumed vs uninterrupted, rank 1");
        }

        [MpiFact]
        public void AKilledRankStopsTheJobWithAClearErrorAndLeavesOnlyCompleteCheckpoints()
        {
            RequireMpi();
            var killed = Ranks(2, "killed", "--batch 4 --steps 6 --save-steps 1 --kill-at 3");   // SIGKILL in step 3's backward
            Assert.NotEqual(0, killed.Exit);
            // mpirun ends the job when a rank dies: the survivor does not sit out the collective timeout (600 s here;
            // Ranks fails a job that runs past 5 minutes).
            Assert.DoesNotContain("DistributedTimeout", killed.Output);
            Assert.Contains("process rank 1", killed.Output);
            Assert.Contains("signal 9 (Killed)", killed.Output);
            string run = Path.Combine(tmp.File("killed"), "run");
            Assert.Equal(new[] { "checkpoint-1", "checkpoint-2" }, Directory.GetDirectories(run).Select(Path.GetFileName).Where(n => !n!.StartsWith("runs")).OrderBy(n => n));
            // The survivors' last checkpoint is complete: a new job continues from it.
            var resumed = Ranks(2, "killed", "--batch 4 --steps 6 --save-steps 1 --resume");
            Assert.True(resumed.Exit == 0, resumed.Output);
            Assert.Equal(new[] { 3, 4, 5, 6 }, resumed.Steps.Select(s => s.Step));
        }

        [MpiFact]
        public void AHangingRankMakesTheOthersStopWithATimeoutErrorNamingTheCollective()
        {
            RequireMpi();
            var hung = Ranks(2, "hung", "--batch 4 --steps 6 --hang-at 3", new Dictionary<string, string> { ["GRALORA_DIST_TIMEOUT"] = "5" });
            Assert.NotEqual(0, hung.Exit);
            Assert.Contains("error DistributedTimeout: Rank 0 of 2 waited 5 s for the gradient all-reduce of step 3", hung.Output);
            Assert.Contains("GRALORA_DIST_TIMEOUT", hung.Output);
        }

        [MpiFact]
        public void RanksHoldingDifferentBaseModelsAreRefusedBeforeTraining()
        {
            RequireMpi();
            string other = TinyModelFactory.Save(tmp.File("other"), new TinyModelOptions { Seed = 6 });
            var run = Ranks(2, "mismatch", $"--batch 4 --steps 2 --model-rank-1 {other}");
            Assert.NotEqual(0, run.Exit);
            Assert.Contains("error DistributedModelMismatch: Rank 1's frozen base weights differ from rank 0's", run.Output);
        }
    }

    /// <summary>
    /// A test that needs Open MPI: reported as skipped, with build.sh's reason, only where build.sh could not install it
    /// (GRALORA_MPI_UNAVAILABLE set and no mpirun); otherwise it runs, and a missing mpirun fails it.
    /// </summary>
    public sealed class MpiFactAttribute : FactAttribute
    {
        public MpiFactAttribute()
        {
            if (Environment.GetEnvironmentVariable("GRALORA_MPI_UNAVAILABLE") is { Length: > 0 } reason && Launchers.FindMpirun() is null)
                Skip = $"Open MPI is unavailable here ({reason}); the multi-rank checks need it.";
        }
    }
}
