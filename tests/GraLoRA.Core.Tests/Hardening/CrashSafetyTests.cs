using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Training;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>SIGKILL in the middle of saving, and a full disk while saving: the previous files always survive.</summary>
    public sealed class CrashSafetyTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        readonly ITestOutputHelper output;
        public CrashSafetyTests(ITestOutputHelper output) => this.output = output;
        public void Dispose() => tmp.Dispose();

        static string BenchDll => TestEnvironment.BenchDll;

        static int Trials => int.TryParse(Environment.GetEnvironmentVariable("GRALORA_KILL_TRIALS"), out int n) && n > 0 ? n : 4;

        sealed class Child : IDisposable
        {
            readonly Process process;
            readonly List<string> lines = new();
            public Child(string model, string output)
            {
                var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                foreach (var a in new[] { BenchDll, "crash-child", "--model", model, "--output", output }) start.ArgumentList.Add(a);
                process = Process.Start(start)!;
                process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
                process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add("stderr: " + e.Data); };
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
            }

            public string[] Lines { get { lock (lines) return lines.ToArray(); } }
            public bool Exited => process.HasExited;

            /// <summary>Waits (bounded) until the child has printed <paramref name="count"/> "step" lines.</summary>
            public void WaitForSteps(int count)
            {
                var deadline = DateTime.UtcNow.AddMinutes(3);
                while (Lines.Count(l => l.StartsWith("step ", StringComparison.Ordinal)) < count)
                {
                    if (process.HasExited) throw new Xunit.Sdk.XunitException("crash child exited early:\n" + string.Join("\n", Lines));
                    if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException("crash child made no progress:\n" + string.Join("\n", Lines));
                    Thread.Sleep(20);
                }
            }

            /// <summary>SIGKILL (Process.Kill sends SIGKILL on Unix): no handler, no finally block, no flush runs.</summary>
            public void Kill()
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }

            public void Dispose()
            {
                if (!process.HasExited) Kill();
                process.Dispose();
            }
        }

        [Fact]
        public void SigkillAtRandomPointsWhileSavingLeavesTheLastCheckpointLoadableAndResumable()
        {
            Assert.True(File.Exists(BenchDll), $"'{BenchDll}' is missing: build the solution (./build.sh build) first.");
            string model = TinyModelFactory.Save(tmp.File("tiny"), new TinyModelOptions { Seed = 5 });
            string run = tmp.File("run");
            var rng = new Random(20261129);
            var outcomes = new List<string>();
            int previousStep = 0, midSave = 0;
            for (int trial = 0; trial < Trials; trial++)
            {
                using (var child = new Child(model, run))
                {
                    child.WaitForSteps(2);                    // its first checkpoint is on disk (saved after step 1's report)
                    Thread.Sleep(rng.Next(0, 150));           // a random point in the save-every-step loop (a save follows each report)
                    child.Kill();
                    var first = child.Lines.FirstOrDefault(l => l is "fresh" || l.StartsWith("resumed ", StringComparison.Ordinal));
                    Assert.Equal(trial == 0 ? "fresh" : $"resumed {previousStep}", first);
                }
                // What the kill interrupted: hidden staging/backup/deleting folders or temp files mean it hit a save or a prune.
                var leftovers = Directory.GetFileSystemEntries(run, ".*", SearchOption.AllDirectories).Length;
                if (leftovers > 0) midSave++;

                var checkpoints = Trainer.Checkpoints(run);
                Assert.NotEmpty(checkpoints);
                var (step, path) = checkpoints[^1];
                Assert.True(step >= previousStep, $"trial {trial}: latest checkpoint went back from {previousStep} to {step}");
                foreach (var file in new[] { "adapter_config.json", "adapter_model.safetensors", "optimizer.bin", "rng_state.safetensors", "trainer_state.json" })
                    Assert.True(File.Exists(Path.Combine(path, file)), $"trial {trial}: {path} lacks {file}");
                using (var m = BaseModel.Load(model))
                    m.LoadAdapter(path, "restored");
                using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(path, "trainer_state.json"))))
                    Assert.Equal(step, doc.RootElement.GetProperty("Step").GetInt32());
                foreach (var line in File.ReadAllLines(Path.Combine(run, "metrics.jsonl")))
                    using (JsonDocument.Parse(line)) { }                               // no torn line
                outcomes.Add($"trial {trial}: killed after checkpoint-{step}{(leftovers > 0 ? $" mid-save ({leftovers} hidden leftovers)" : "")}; loads");
                previousStep = step;
            }

            // Resume in this process from the last checkpoint the kills left, for one more step.
            using (var m = BaseModel.Load(model))
            {
                manual_seed(1);
                m.AddAdapter("default", new AdapterConfig { Rank = 8, K = 2, Alpha = 16, TargetModules = new[] { AdapterConfig.AllLinear } });
                var trainer = new Trainer(m, "default", new TrainingOptions { LearningRate = 1e-3, MaxSteps = previousStep + 1, SaveSteps = 1, SaveTotalLimit = 2, OutputDirectory = run });
                var result = trainer.Train(new OneBatch(), resumeFrom: run);
                Assert.Equal(previousStep + 1, result.Steps);
                Assert.Equal(Path.Combine(Path.GetFullPath(run), $"checkpoint-{previousStep + 1}"), result.LastCheckpoint);
            }
            Assert.Empty(Directory.GetDirectories(run, ".checkpoint-*"));              // leftovers cleaned at the start of a run
            foreach (var o in outcomes) output.WriteLine(o);
            output.WriteLine($"{Trials} kill trials, {midSave} hit a save or prune in progress, all left a loadable, resumable checkpoint");
        }

        sealed class OneBatch : IBatchSource
        {
            public int BatchesPerEpoch => 1;
            public IEnumerable<DataBatch> Epoch(int epoch)
            {
                var ids = Enumerable.Range(0, 32).Select(j => (long)(100 + j % 16)).ToArray();
                yield return new DataBatch(2, 16, ids, ids.ToArray(), Enumerable.Repeat(1L, 32).ToArray(),
                    Enumerable.Range(0, 32).Select(j => (long)(j % 16)).ToArray(), null, null, new[] { 0, 1 });
            }
        }

        // ---- full disk ----

        /// <summary>A stream that fails like a full disk (ENOSPC) after <paramref name="room"/> bytes.</summary>
        sealed class FullDisk : Stream
        {
            readonly Stream inner;
            long room;
            public FullDisk(Stream inner, long room) => (this.inner, this.room) = (inner, room);
            public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
            public override void Write(ReadOnlySpan<byte> buffer)
            {
                if (buffer.Length > room) throw new IOException("No space left on device");
                room -= buffer.Length;
                inner.Write(buffer);
            }
            public override void Flush() => inner.Flush();
            public override bool CanRead => false;
            public override bool CanSeek => false;
            public override bool CanWrite => true;
            public override long Length => inner.Length;
            public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
            public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
            public override void SetLength(long value) => throw new NotSupportedException();
        }

        [Fact]
        public void DiskFullWhileReplacingAFileLeavesTheOldOneIntactAndNoTempFile()
        {
            string path = tmp.File("adapter_config.json");
            File.WriteAllText(path, "old content");
            AtomicFile.StreamHook = s => new FullDisk(s, 4);
            try
            {
                var ex = Assert.Throws<GraloraException>(() => AtomicFile.Write(path, s => s.Write(new byte[100])));
                Assert.Equal("WriteFailed", ex.ErrorId);
                Assert.Contains("No space left on device", ex.Message);
            }
            finally { AtomicFile.StreamHook = null; }
            Assert.Equal("old content", File.ReadAllText(path));
            Assert.Equal(new[] { path }, Directory.GetFiles(tmp.Path));
        }

        [Fact]
        public void DiskFullWhileSavingACheckpointKeepsThePreviousCheckpoint()
        {
            string model = TinyModelFactory.Save(tmp.File("tiny"), new TinyModelOptions { Seed = 5 });
            string run = tmp.File("run");
            using var m = BaseModel.Load(model);
            manual_seed(1);
            m.AddAdapter("default", new AdapterConfig { Rank = 8, K = 2, Alpha = 16, TargetModules = new[] { AdapterConfig.AllLinear } });
            var trainer = new Trainer(m, "default", new TrainingOptions { LearningRate = 1e-3, MaxSteps = 3, SaveSteps = 1, LoggingSteps = 1, OutputDirectory = run });
            bool full = false;
            trainer.FaultInjection = (step, phase, _) => { if (step == 2 && phase == "backward") full = true; };
            // The disk fills up while step 2's checkpoint writes its adapter weights (metrics.jsonl still fits).
            AtomicFile.StreamHook = s => full && s is FileStream f && f.Name.Contains("adapter_model") ? new FullDisk(s, 64) : s;
            GraloraException ex;
            try { ex = Assert.Throws<GraloraException>(() => trainer.Train(new OneBatch())); }
            finally { AtomicFile.StreamHook = null; }
            Assert.Contains("No space left on device", ex.Message);
            Assert.Equal(new[] { 1 }, Trainer.Checkpoints(run).Select(c => c.Step));
            Assert.DoesNotContain(Directory.GetFileSystemEntries(run, "*", SearchOption.AllDirectories), e => Path.GetFileName(e).StartsWith(".", StringComparison.Ordinal));
            using var again = BaseModel.Load(model);
            again.LoadAdapter(Path.Combine(run, "checkpoint-1"), "restored");
            Assert.Equal(2, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Count(l => JsonDocument.Parse(l) is not null));
        }

        [Fact]
        public void FoldersCanBeFsyncedAndAMissingOneIsAnError()
        {
            AtomicFile.SyncDirectory(tmp.Path);
            Assert.Throws<IOException>(() => AtomicFile.SyncDirectory(tmp.File("missing")));
        }

        [Fact]
        public void ReplaceDirectorySwapsInTheNewFolderAndDropsTheOld()
        {
            string target = Directory.CreateDirectory(tmp.File("target")).FullName;
            File.WriteAllText(Path.Combine(target, "a"), "old");
            string staging = Directory.CreateDirectory(tmp.File(".target.partial")).FullName;
            File.WriteAllText(Path.Combine(staging, "a"), "new");
            AtomicFile.ReplaceDirectory(staging, target);
            Assert.Equal("new", File.ReadAllText(Path.Combine(target, "a")));
            Assert.Equal(new[] { target }, Directory.GetDirectories(tmp.Path));
        }
    }
}
