using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using GraLoRA.Distributed;

namespace GraLoRA.PowerShell
{
    /// <summary>
    /// The devices of Start-GraLoRATraining -Device: all "cpu" (one MPI rank each, started by mpirun) or distinct CUDA
    /// devices (one NCCL rank each, started as a torchrun-style group).
    /// </summary>
    internal sealed record DevicePlan(string Type, IReadOnlyList<int> CudaIndices, int Ranks)
    {
        public static DevicePlan Parse(string[] devices)
        {
            var names = devices.SelectMany(d => d.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Select(d => d.ToLowerInvariant()).ToList();
            GraloraException Bad(string rule) => new("InvalidDevice", GraloraErrorKind.InvalidArgument, $"-Device {string.Join(",", names)}: {rule}.", string.Join(",", names));
            if (names.Count < 2) throw Bad("give two or more devices, one per rank (e.g. cpu,cpu or cuda:0,cuda:1); for one device load the model there (Import-BaseModel -Device)");
            if (names.All(n => n == "cpu")) return new DevicePlan("cpu", Array.Empty<int>(), names.Count);
            var indices = new List<int>();
            foreach (string name in names)
            {
                if (!name.StartsWith("cuda:", StringComparison.Ordinal) || !int.TryParse(name.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int index))
                    throw Bad($"'{name}' is neither cpu nor cuda:N, or devices of both kinds are mixed; use only cpu or only cuda:N entries");
                indices.Add(index);
            }
            if (indices.Distinct().Count() != indices.Count) throw Bad("a GPU hosts one rank (NCCL cannot run two ranks on one device): name each cuda:N once");
            return new DevicePlan("cuda", indices, indices.Count);
        }
    }

    /// <summary>
    /// The rank processes of one job started on this machine, each in a session of its own (setsid), so Ctrl+C at the
    /// terminal reaches only the launching session, which then asks the ranks to stop at the next step (the stop file)
    /// rather than killing them mid-step. CPU ranks: one mpirun; CUDA ranks: one process per GPU with torchrun's
    /// variables; when one of those fails the others are ended, as torchrun does.
    /// </summary>
    internal sealed class WorkerGroup : IDisposable
    {
        readonly List<Process> _processes = new();
        readonly StringBuilder _log = new();
        readonly string _logFile;

        WorkerGroup(string folder)
        {
            Folder = folder;
            _logFile = Path.Combine(folder, "ranks.log");
        }

        /// <summary>The job folder.</summary>
        public string Folder { get; }
        /// <summary>Where rank 0 appends its events (progress, warnings, status, result).</summary>
        public string EventsFile => Path.Combine(Folder, "events.jsonl");
        /// <summary>Created to ask every rank to stop at the next step.</summary>
        public string StopFile => Path.Combine(Folder, "stop");
        /// <summary>What the ranks printed (stdout and stderr, each line tagged with its process).</summary>
        public string LogFile => _logFile;

        public static WorkerGroup Start(string folder, DevicePlan plan)
        {
            var group = new WorkerGroup(folder);
            var worker = JobFolder.WorkerCommand(folder);
            var common = new Dictionary<string, string>
            {
                ["GRALORA_EVENTS_FILE"] = group.EventsFile, ["GRALORA_STOP_FILE"] = group.StopFile, ["TERM"] = "dumb",
                ["GRALORA_RUN_ID"] = Path.GetFileName(folder),
            };
            try
            {
                if (plan.Type == "cpu")
                {
                    // Each rank gets an equal share of the cores for libtorch's threads.
                    common["OMP_NUM_THREADS"] = Math.Max(1, Environment.ProcessorCount / plan.Ranks).ToString(CultureInfo.InvariantCulture);
                    common["GRALORA_DEVICE"] = "cpu";
                    group.Launch("mpirun", Launchers.RequireMpirun(), Launchers.MpirunArguments(plan.Ranks, worker), common);
                }
                else
                    for (int rank = 0; rank < plan.Ranks; rank++)
                    {
                        var env = new Dictionary<string, string>(common)
                        {
                            ["RANK"] = rank.ToString(CultureInfo.InvariantCulture), ["LOCAL_RANK"] = rank.ToString(CultureInfo.InvariantCulture),
                            ["WORLD_SIZE"] = plan.Ranks.ToString(CultureInfo.InvariantCulture), ["LOCAL_WORLD_SIZE"] = plan.Ranks.ToString(CultureInfo.InvariantCulture),
                            ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = "29500", ["GRALORA_NCCL_ID_FILE"] = Path.Combine(folder, "nccl.id"),
                            ["GRALORA_DEVICE"] = $"cuda:{plan.CudaIndices[rank]}",
                        };
                        group.Launch($"rank {rank}", worker[0], worker.Skip(1).ToList(), env);
                    }
            }
            catch
            {
                group.Dispose();
                throw;
            }
            return group;
        }

        void Launch(string tag, string program, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment)
        {
            bool setsid = File.Exists("/usr/bin/setsid");
            var start = new ProcessStartInfo(setsid ? "/usr/bin/setsid" : program)
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Folder,
            };
            if (setsid) start.ArgumentList.Add(program);
            foreach (string a in arguments) start.ArgumentList.Add(a);
            foreach (var (k, v) in environment) start.Environment[k] = v;
            var process = Process.Start(start) ?? throw new GraloraException("RankStartFailed", GraloraErrorKind.NotAvailable, $"Could not start {program}.", program);
            void Line(string? text)
            {
                if (text is null) return;
                lock (_log)
                {
                    string line = $"[{tag}] {text}\n";
                    _log.Append(line);
                    File.AppendAllText(_logFile, line);
                }
            }
            process.OutputDataReceived += (_, e) => Line(e.Data);
            process.ErrorDataReceived += (_, e) => Line(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _processes.Add(process);
        }

        /// <summary>True once every process has exited.</summary>
        public bool Exited => _processes.All(p => p.HasExited);

        /// <summary>The first non-zero exit code among the processes that have exited, or null.</summary>
        public int? Failure => _processes.Where(p => p.HasExited && p.ExitCode != 0).Select(p => (int?)p.ExitCode).FirstOrDefault();

        /// <summary>Asks every rank to stop at its next step boundary (they agree on the step, save a checkpoint and exit).</summary>
        public void RequestStop() => File.WriteAllText(StopFile, "stop\n");

        /// <summary>Ends every process still running (and what it started).</summary>
        public void KillAll()
        {
            foreach (var p in _processes)
                try { if (!p.HasExited) p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        }

        /// <summary>Waits for the output readers to finish after the processes exited.</summary>
        public void WaitForOutput()
        {
            foreach (var p in _processes) p.WaitForExit();
        }

        /// <summary>The last <paramref name="lines"/> lines the ranks printed.</summary>
        public string Tail(int lines)
        {
            lock (_log)
                return string.Join("\n", _log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(lines));
        }

        public void Dispose()
        {
            KillAll();
            foreach (var p in _processes) p.Dispose();
        }
    }

    /// <summary>Reads the JSON lines a rank appends to an events file, as they arrive (a partial last line waits for its end).</summary>
    internal sealed class EventReader
    {
        readonly string _path;
        long _position;
        readonly StringBuilder _pending = new();

        public EventReader(string path) => _path = path;

        public IReadOnlyList<JsonNode> ReadNew()
        {
            var events = new List<JsonNode>();
            if (!File.Exists(_path)) return events;
            using (var stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                stream.Seek(_position, SeekOrigin.Begin);
                using var reader = new StreamReader(stream, Encoding.UTF8);
                _pending.Append(reader.ReadToEnd());
                _position = stream.Position;
            }
            string text = _pending.ToString();
            int end = text.LastIndexOf('\n');
            if (end < 0) return events;
            foreach (string line in text[..end].Split('\n', StringSplitOptions.RemoveEmptyEntries))
                if (JsonNode.Parse(line) is { } node) events.Add(node);
            _pending.Clear().Append(text[(end + 1)..]);
            return events;
        }

        /// <summary>Appends one event (a JSON object with "type") as one line.</summary>
        public static void Append(string path, string type, JsonNode? value)
        {
            var node = new JsonObject { ["type"] = type, ["value"] = value };
            File.AppendAllText(path, node.ToJsonString() + "\n");
        }
    }
}
