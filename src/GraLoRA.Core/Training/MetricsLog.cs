using System;
using System.IO;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace GraLoRA.Training
{
    /// <summary>
    /// metrics.jsonl (one JSON object per report, oldest first) and the TensorBoard events under runs/. The file is only
    /// ever appended to: each line goes out in one write and is flushed to disk, so a killed run leaves whole lines.
    /// Opening it repairs what the previous run may have left and keeps the file consistent with the run that continues:
    /// <list type="bullet">
    /// <item>a torn last line (no line end: a crash mid-write on a file system that splits writes) is cut off;</item>
    /// <item>resuming from the checkpoint of step S cuts off the trailing lines of steps after S (and any unreadable
    /// trailing line) — those steps are trained and logged again — so the file holds each step once, in order. Lines
    /// earlier in the file (an older run in the same folder) stay as they are;</item>
    /// <item>a fresh run appends after whatever the file holds.</item>
    /// </list>
    /// </summary>
    internal sealed class MetricsLog : IDisposable
    {
        /// <summary>The file's name in the output folder.</summary>
        public const string FileName = "metrics.jsonl";

        readonly FileStream _file;
        readonly TorchSharp.Modules.SummaryWriter _tensorboard;

        public MetricsLog(string output, int? resumedAtStep)
        {
            string path = Path.Combine(output, FileName);
            bool created = !File.Exists(path);
            // No buffering: each line reaches the file in one write call, never in pieces.
            _file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 1);
            if (created) IO.AtomicFile.SyncDirectory(output);              // the new name survives a power loss too
            long keep = KeptLength(_file, resumedAtStep);
            if (keep < _file.Length)
            {
                _file.SetLength(keep);
                _file.Flush(flushToDisk: true);
            }
            _file.Seek(0, SeekOrigin.End);
            _tensorboard = utils.tensorboard.SummaryWriter(Path.Combine(output, "runs"));
        }

        /// <summary>How many bytes of the file stay: up to the end of the last whole line a continuing run keeps.</summary>
        static long KeptLength(FileStream file, int? resumedAtStep)
        {
            var bytes = new byte[file.Length];
            file.Seek(0, SeekOrigin.Begin);
            file.ReadExactly(bytes);
            long end = Array.LastIndexOf(bytes, (byte)'\n') + 1;           // drops a torn last line
            if (resumedAtStep is not { } resumed) return end;
            while (end > 0)
            {
                int start = end >= 2 ? Array.LastIndexOf(bytes, (byte)'\n', (int)end - 2) + 1 : 0;
                var line = Encoding.UTF8.GetString(bytes, start, (int)end - start).TrimEnd('\n', '\r');
                if (line.Length > 0 && StepOf(line) is { } step && step <= resumed) break;
                end = start;
            }
            return end;
        }

        static int? StepOf(string line)
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("step", out var s) && s.TryGetInt32(out int step) ? step : null;
            }
            catch (JsonException) { return null; }
        }

        /// <summary>Appends the report as one line (and to TensorBoard).</summary>
        public void Write(TrainingProgress p)
        {
            string line = JsonSerializer.Serialize(new
            {
                step = p.Step, epoch = p.Epoch, loss = double.IsFinite(p.Loss) ? p.Loss : (double?)null, learning_rate = p.LearningRate,
                grad_norm = double.IsFinite(p.GradNorm) ? p.GradNorm : (double?)null,
                tokens_per_second = p.TokensPerSecond, memory_bytes = p.MemoryBytes, eval_loss = p.ValidationLoss,
            });
            byte[] bytes = Encoding.UTF8.GetBytes(line + "\n");
            try
            {
                _file.Write(bytes);
                _file.Flush(flushToDisk: true);
            }
            catch (IOException ex)
            {
                throw new GraloraException("WriteFailed", GraloraErrorKind.IOFailure, $"Could not append to '{_file.Name}': {ex.Message}", _file.Name, ex);
            }
            _tensorboard.add_scalar("train/loss", (float)p.Loss, p.Step);
            _tensorboard.add_scalar("train/learning_rate", (float)p.LearningRate, p.Step);
            _tensorboard.add_scalar("train/grad_norm", (float)p.GradNorm, p.Step);
            if (p.ValidationLoss is { } v) _tensorboard.add_scalar("eval/loss", (float)v, p.Step);
        }

        public void Dispose() => _file.Dispose();
    }
}
