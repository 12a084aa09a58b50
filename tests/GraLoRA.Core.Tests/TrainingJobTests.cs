using GraLoRA.Data;
using GraLoRA.Training;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>The one way from a model, settings and a dataset to a running trainer, and the current-adapter rule it uses.</summary>
    public sealed class TrainingJobTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        BaseModel Model(params string[] adapters)
        {
            var model = BaseModel.Load(TinyModelFactory.SaveWithTokenizer(tmp.File("tiny-" + Guid.NewGuid().ToString("N")), new TinyModelOptions { Seed = 8 }));
            manual_seed(3);
            foreach (var name in adapters) model.AddAdapter(name, new AdapterConfig { Rank = 8, K = 2, TargetModules = new[] { "q_proj" } });
            return model;
        }

        string PromptCompletion(int records)
        {
            string file = tmp.File($"pc-{records}.jsonl");
            File.WriteAllLines(file, Enumerable.Range(0, records).Select(i => $"{{\"prompt\": \"Item {i}:\", \"completion\": \" value {i % 3}\"}}"));
            return file;
        }

        static GraloraException Fails(Action action) => Assert.Throws<GraloraException>(action);

        [Fact]
        public void TheDefaultSettingsAreTheOptionsOwnDefaults()
        {
            Assert.Equal(new TrainingOptions(), TrainingSettings.Default.ToTrainingOptions(null));
            Assert.Equal(new DataOptions(), TrainingSettings.Default.ToDataOptions());
            Assert.Equal(new BatchOptions(), TrainingSettings.Default.ToBatchOptions());
        }

        [Fact]
        public void TheCurrentAdapterIsTheNamedOneElseTheOnlyActiveElseTheOnlyOne()
        {
            using var model = Model("a", "b");                          // adding makes the new one the only active adapter
            Assert.Equal("b", model.Adapters.Current());
            Assert.Equal("a", model.Adapters.Current("a"));
            Assert.Equal("AdapterNotFound", Fails(() => model.Adapters.Current("zz")).ErrorId);
            model.Adapters.SetActive(new[] { "a", "b" });
            var ambiguous = Fails(() => model.Adapters.Current());
            Assert.Equal(("AmbiguousAdapter", GraloraErrorKind.InvalidOperation), (ambiguous.ErrorId, ambiguous.Kind));
            Assert.Contains("a, b", ambiguous.Message);
            model.Adapters.SetActive(Array.Empty<string>());
            Assert.Equal("AmbiguousAdapter", Fails(() => model.Adapters.Current()).ErrorId);   // two, none active: no guess
            model.Adapters.Remove("b");
            Assert.Equal("a", model.Adapters.Current());                                        // the only one, even inactive
            using var plain = Model();
            var none = Fails(() => plain.Adapters.Current());
            Assert.Equal("NoActiveAdapter", none.ErrorId);
            Assert.Contains("Add-GraLoRAAdapter", none.Message);
        }

        [Fact]
        public void PrepareChecksAdapterAndSettingsBeforeReadingAnyData()
        {
            var missing = DatasetSource.FromFile(tmp.File("no-such.jsonl"));
            using var plain = Model();
            Assert.Equal("NoActiveAdapter", Fails(() => TrainingJob.Prepare(plain, missing, TrainingSettings.Default)).ErrorId);
            using var model = Model("default");
            foreach (var (settings, name) in new[]
            {
                (TrainingSettings.Default with { LearningRate = 0 }, "LearningRate"),
                (TrainingSettings.Default with { ValidationDataset = "v.jsonl", ValidationSplit = 0.1 }, "ValidationSplit"),
                (TrainingSettings.Default with { Resume = true, ResumeFrom = "x" }, "ResumeFrom"),
                (TrainingSettings.Default with { Resume = true }, "OutputPath"),
            })
            {
                var ex = Fails(() => TrainingJob.Prepare(model, missing, settings));
                Assert.Equal("InvalidTrainingOption", ex.ErrorId);
                Assert.Contains(name, ex.Message);
            }
            Assert.Equal("DatasetNotFound", Fails(() => TrainingJob.Prepare(model, missing, TrainingSettings.Default)).ErrorId);
        }

        [Fact]
        public void ResumingFromACheckpointWithoutAnOutputFolderWritesBesideIt()
        {
            string data = PromptCompletion(8);
            string run = tmp.File("run");
            using (var model = Model("default"))
                TrainingJob.Prepare(model, DatasetSource.FromFile(data), TrainingSettings.Default with { MaxSteps = 2, SaveSteps = 1, BatchSize = 4, OutputPath = run }).Run();
            Assert.Equal(run, TrainingCheckpoints.OutputFor(Path.Combine(run, "checkpoint-1")));
            Assert.Equal(run, TrainingCheckpoints.OutputFor(run));

            using var resumed = Model("default");
            var job = TrainingJob.Prepare(resumed, DatasetSource.FromFile(data), TrainingSettings.Default with { MaxSteps = 3, BatchSize = 4, ResumeFrom = Path.Combine(run, "checkpoint-1") });
            Assert.Equal(Path.Combine(run, "checkpoint-1"), job.ResumeFrom);
            var result = job.Run();
            Assert.Equal(3, result.Steps);
            Assert.Equal(Path.Combine(run, "checkpoint-3"), result.LastCheckpoint);
        }

        [Fact]
        public void TheSettingsReachTheLoadersAndTheTrainer()
        {
            using var model = Model("first", "second");
            var job = TrainingJob.Prepare(model, DatasetSource.FromFile(PromptCompletion(10)),
                TrainingSettings.Default with { Adapter = "first", BatchSize = 3, ValidationSplit = 0.2, GradientAccumulation = 2, Epochs = 2 });
            Assert.Equal("first", job.Adapter);
            Assert.Equal((8, 2), (job.Data.Train.Count, job.Data.Validation.Count));
            Assert.Equal(3, job.TrainLoader.BatchesPerEpoch);                    // 8 examples in batches of 3
            Assert.NotNull(job.ValidationLoader);
            Assert.Equal(2 * 2, job.TotalSteps);                                  // ceil(3 / 2) steps a epoch, 2 epochs
            Assert.Null(job.Task);
            Assert.Empty(job.Warnings);
        }

        [Fact]
        public void TextAndLabelDataGetAClassificationHeadThatTrainsWithTheAdapter()
        {
            string file = tmp.File("cls.jsonl");
            File.WriteAllLines(file, Enumerable.Range(0, 8).Select(i => $"{{\"text\": \"item {i}\", \"label\": \"{(i % 2 == 0 ? "even" : "odd")}\"}}"));
            using var model = Model("default");
            var job = TrainingJob.Prepare(model, DatasetSource.FromFile(file), TrainingSettings.Default with { BatchSize = 4 });
            Assert.Equal(DatasetFormat.Classification, job.Data.Format);
            Assert.Equal(2, model.Transformer.ClassificationLabels);
            Assert.Contains(DecoderForCausalLM.ClassificationHeadName, model.Adapters.Config("default").ModulesToSave!);
            Assert.Contains("Classification over 2 labels (even, odd)", job.Task);
        }

        [Fact]
        public void ACancelledTokenStopsTheDataPreparation()
        {
            // Start-GraLoRATraining and Train.runWith pass Ctrl+C / their token here, so a long data preparation (or a
            // chat template that renders for long) can be stopped before training starts.
            using var model = Model("default");
            using var cancel = new System.Threading.CancellationTokenSource();
            cancel.Cancel();
            Assert.ThrowsAny<OperationCanceledException>(() => { TrainingJob.Prepare(model, DatasetSource.FromFile(PromptCompletion(4)), TrainingSettings.Default, cancel.Token); });
        }

        [Fact]
        public void ValidationAskedForButEmptyIsAWarning()
        {
            // Validation prompts longer than MaxLength: the completions are cut away, so every example is dropped.
            string validation = tmp.File("long-prompts.jsonl");
            File.WriteAllLines(validation, Enumerable.Range(0, 3).Select(i => $"{{\"prompt\": \"{new string('x', 200)} {i}\", \"completion\": \" y\"}}"));
            using var model = Model("default");
            var job = TrainingJob.Prepare(model, DatasetSource.FromFile(PromptCompletion(2)), TrainingSettings.Default with { ValidationDataset = validation, MaxLength = 64 });
            Assert.Null(job.ValidationLoader);
            Assert.Contains("No validation example is left", Assert.Single(job.Warnings));
        }
    }
}
