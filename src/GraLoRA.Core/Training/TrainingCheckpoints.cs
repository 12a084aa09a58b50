using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.IO;
using GraLoRA.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Training
{
    /// <summary>Where a run stands, as trainer_state.json holds it (property names are the file's).</summary>
    internal sealed class TrainerState
    {
        public int Step { get; set; }
        public int Epoch { get; set; }
        public int MicroBatchesDone { get; set; }
        public double? BestValidationLoss { get; set; }
        public int? BestStep { get; set; }
        public int EvaluationsWithoutImprovement { get; set; }
        public long Seed { get; set; }
        public string Adapter { get; set; } = "";
    }

    /// <summary>
    /// The checkpoints of a run: checkpoint-N folders holding the adapter in PEFT's format, optimizer.bin,
    /// rng_state.safetensors and trainer_state.json, each staged in a hidden sibling and swapped in whole, so a
    /// checkpoint-N folder only ever appears complete; resuming from one; pruning old ones.
    /// </summary>
    public static class TrainingCheckpoints
    {
        /// <summary>The file that makes a folder a checkpoint.</summary>
        public const string StateFile = "trainer_state.json";

        /// <summary>Checkpoint folders under <paramref name="output"/>, oldest first.</summary>
        public static IReadOnlyList<(int Step, string Path)> List(string output) =>
            Directory.Exists(output)
                ? Directory.GetDirectories(output, "checkpoint-*")
                    .Select(d => (Ok: int.TryParse(Path.GetFileName(d)["checkpoint-".Length..], out int s), Step: s, Path: d))
                    .Where(c => c.Ok && File.Exists(Path.Combine(c.Path, StateFile))).OrderBy(c => c.Step).Select(c => (c.Step, c.Path)).ToList()
                : Array.Empty<(int, string)>();

        /// <summary>
        /// The folder new checkpoints go to when resuming from <paramref name="resumeFrom"/> without an output folder: a
        /// checkpoint-N folder writes on beside itself (its parent), a training folder into itself.
        /// </summary>
        public static string OutputFor(string resumeFrom)
        {
            string full = Path.GetFullPath(resumeFrom);
            return File.Exists(Path.Combine(full, StateFile)) ? Path.GetDirectoryName(full)! : full;
        }

        internal static string Save(BaseModel model, string adapter, string output, TrainerState state, AdamW optimizer)
        {
            string final = Path.Combine(output, $"checkpoint-{state.Step}");
            AtomicFile.WriteDirectory(final, staging =>
            {
                PeftAdapterFormat.WriteFiles(model.Adapters, adapter, staging);
                optimizer.save_state_dict(Path.Combine(staging, "optimizer.bin"));
                AtomicFile.SyncFile(Path.Combine(staging, "optimizer.bin"));
                using (var rng = get_rng_state())
                    Safetensors.Write(Path.Combine(staging, "rng_state.safetensors"), new Dictionary<string, Tensor> { ["cpu"] = rng });
                CheckpointWriter.WriteJson(Path.Combine(staging, StateFile), System.Text.Json.Nodes.JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(state))!);
            }, ex => new GraloraException("CheckpointWriteFailed", GraloraErrorKind.IOFailure, $"Could not write checkpoint '{final}': {ex.Message}", final, ex));
            return final;
        }

        // Keeps the newest checkpoint and the best one always, then as many of the newest others as the limit allows.
        internal static void Prune(string output, int? bestStep, int limit)
        {
            var all = List(output).ToList();
            if (all.Count == 0) return;
            int newest = all[^1].Step;
            var keep = new HashSet<int> { newest };
            if (bestStep is { } best) keep.Add(best);
            foreach (var (step, _) in all.AsEnumerable().Reverse())
                if (keep.Count < limit) keep.Add(step);
            foreach (var (step, path) in all)
                if (!keep.Contains(step)) AtomicFile.DeleteDirectory(path);
        }

        // What a run killed while saving or pruning leaves: hidden staging, backup and half-deleted folders (never a
        // checkpoint-N folder, which only ever appears complete).
        internal static void RemoveLeftovers(string output)
        {
            foreach (var dir in Directory.GetDirectories(output, ".checkpoint-*"))
                if (dir.EndsWith(".partial", StringComparison.Ordinal) || dir.EndsWith(".deleting", StringComparison.Ordinal) || dir.EndsWith(".previous", StringComparison.Ordinal))
                    try { Directory.Delete(dir, true); } catch (IOException) { }
        }

        /// <summary>
        /// Loads the checkpoint <paramref name="from"/> (or the latest one in the training folder <paramref name="from"/>)
        /// into <paramref name="adapter"/> of <paramref name="model"/>, the optimizer and the global RNG; returns its state.
        /// </summary>
        internal static TrainerState Resume(BaseModel model, string adapter, string from, AdamW optimizer)
        {
            string folder = Path.GetFullPath(from);
            if (!File.Exists(Path.Combine(folder, StateFile)))
            {
                var latest = List(folder).LastOrDefault();
                if (latest.Path is null)
                    throw new GraloraException("CheckpointNotFound", GraloraErrorKind.NotFound,
                        $"'{folder}' is neither a checkpoint ({StateFile}) nor a training folder with checkpoint-N subfolders.", folder);
                folder = latest.Path;
            }
            string statePath = Path.Combine(folder, StateFile);
            TrainerState state;
            try
            {
                state = System.Text.Json.JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(statePath))
                        ?? throw new GraloraException("InvalidCheckpoint", GraloraErrorKind.InvalidData, $"'{statePath}' is empty.", folder);
            }
            catch (System.Text.Json.JsonException ex)
            {
                throw new GraloraException("InvalidCheckpoint", GraloraErrorKind.InvalidData,
                    $"'{statePath}' is not a valid trainer state: field '{ex.Path ?? "$"}' {(ex.Path is null ? "is not valid JSON" : "has the wrong type")} ({ex.Message}).", statePath, ex);
            }
            if (state.Step < 0 || state.Epoch < 0 || state.MicroBatchesDone < 0)
                throw new GraloraException("InvalidCheckpoint", GraloraErrorKind.InvalidData, $"'{statePath}': Step, Epoch and MicroBatchesDone must be 0 or more.", statePath);
            var tensors = Safetensors.Read(Path.Combine(folder, PeftAdapterFormat.WeightsFile));
            try { model.Adapters.LoadStateDict(adapter, tensors, Path.Combine(folder, PeftAdapterFormat.WeightsFile)); }
            finally { foreach (var t in tensors.Values) t.Dispose(); }
            optimizer.load_state_dict(Path.Combine(folder, "optimizer.bin"));
            var rng = Safetensors.Read(Path.Combine(folder, "rng_state.safetensors"));
            set_rng_state(rng["cpu"]);
            rng["cpu"].Dispose();
            return state;
        }
    }
}
