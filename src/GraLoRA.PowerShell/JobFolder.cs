using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using GraLoRA.IO;
using GraLoRA.Models;

namespace GraLoRA.PowerShell
{
    /// <summary>What one data-parallel training job runs on every rank: the model, the adapter to train, the data and the settings.</summary>
    /// <param name="ModulePath">GraLoRA.psd1 as this session imported it (every rank imports the same).</param>
    /// <param name="Model">The model with the adapter; every rank loads <see cref="BaseModel.Path"/> again.</param>
    /// <param name="Adapter">The adapter to train (its current weights are every rank's start).</param>
    /// <param name="DeviceType">"cpu" (ranks all-reduce over MPI) or "cuda" (over NCCL, each rank on cuda:LOCAL_RANK).</param>
    /// <param name="Dataset">The training data file, or null with <paramref name="Records"/>.</param>
    /// <param name="Records">Training records (written into the job folder as JSON lines), or null.</param>
    /// <param name="Settings">The training settings (New-GraLoRATrainingConfig's keys), paths already absolute.</param>
    /// <param name="ResumeFrom">A checkpoint or training folder to continue from, or null.</param>
    internal sealed record JobSpec(string ModulePath, BaseModel Model, string Adapter, string DeviceType, string? Dataset,
        IReadOnlyList<object?>? Records, OrderedDictionary Settings, string? ResumeFrom);

    /// <summary>
    /// A folder holding one data-parallel job: train.ps1 (the script every rank runs), settings.json, the adapter's
    /// starting weights and, for records, the data. Written by New-GraLoRAJobScript (with a launcher script beside it)
    /// and by Start-GraLoRATraining -Device (which then starts the ranks itself).
    /// </summary>
    internal static class JobFolder
    {
        public const string WorkerScript = "train.ps1", SettingsFile = "settings.json", AdapterFolder = "adapter", ResultFolder = "result", RecordsFile = "data.jsonl";

        /// <summary>Writes the job into <paramref name="folder"/> (created; existing job files are replaced).</summary>
        public static void Write(string folder, JobSpec spec)
        {
            var model = spec.Model;
            if (!File.Exists(Path.Combine(model.Path, "config.json")))
                throw new GraloraException("ModelFolderNeeded", GraloraErrorKind.InvalidOperation,
                    $"Every rank loads the base model from its folder, and '{model.Path}' has no config.json: save the model with Export-BaseModel and import that folder.", model.Path);
            if (model.Adapters.List().FirstOrDefault(a => a.Merged) is { } merged)
                throw new GraloraException("AdapterMerged", GraloraErrorKind.InvalidOperation,
                    $"Adapter '{merged.Name}' is merged into this session's weights, which the ranks (loading '{model.Path}') would not have: unmerge it (Split-GraLoRAAdapter), or export the merged model with Export-BaseModel and train on that folder.", merged.Name);
            Directory.CreateDirectory(folder);
            string adapter = Path.Combine(folder, AdapterFolder);
            model.SaveAdapter(spec.Adapter, adapter, overwrite: true);
            string? dataset = spec.Dataset;
            if (spec.Records is not null)
            {
                dataset = Path.Combine(folder, RecordsFile);
                AtomicFile.Write(dataset, stream =>
                {
                    using var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
                    foreach (var record in spec.Records) writer.WriteLine(JsonSerializer.Serialize(DatasetInput.Plain(record)));
                });
            }
            var settings = new JsonObject();
            foreach (DictionaryEntry entry in spec.Settings) settings[(string)entry.Key] = JsonSerializer.SerializeToNode(entry.Value);
            var job = new JsonObject
            {
                ["Module"] = spec.ModulePath,
                ["Model"] = model.Path,
                ["DType"] = model.DType,
                ["Labels"] = model.ClassLabels is { } labels && model.IsEncoder ? new JsonArray(labels.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()) : null,
                ["Device"] = spec.DeviceType,
                ["Adapter"] = spec.Adapter,
                ["Dataset"] = dataset,
                ["ResumeFrom"] = spec.ResumeFrom,
                ["Settings"] = settings,
            };
            CheckpointWriter.WriteJson(Path.Combine(folder, SettingsFile), job);
            AtomicFile.Write(Path.Combine(folder, WorkerScript), stream => stream.Write(new UTF8Encoding(false).GetBytes(WorkerText)));
        }

        /// <summary>The manifest (GraLoRA.psd1) of the module <paramref name="module"/> came from, which every rank imports; ModuleNotImported without one.</summary>
        public static string ModuleManifest(System.Management.Automation.PSModuleInfo? module)
        {
            string? manifest = module is null ? null : Path.Combine(module.ModuleBase, module.Name + ".psd1");
            return manifest is not null && File.Exists(manifest) ? manifest
                : throw new GraloraException("ModuleNotImported", GraloraErrorKind.InvalidOperation,
                    "Every rank imports the GraLoRA module from its manifest: import it with Import-Module GraLoRA (or the path of GraLoRA.psd1), not its DLL.");
        }

        /// <summary>This session's pwsh as a command: [pwsh] for an installed PowerShell, [dotnet, …/pwsh.dll] for the .NET tool.</summary>
        public static IReadOnlyList<string> PwshCommand()
        {
            string host = Environment.ProcessPath ?? "pwsh";
            string entry = Environment.GetCommandLineArgs()[0];
            return Path.GetFileNameWithoutExtension(host) == "dotnet" && entry.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
                ? new[] { host, entry }
                : new[] { host };
        }

        /// <summary>The rank command: this pwsh running train.ps1 non-interactively.</summary>
        public static IReadOnlyList<string> WorkerCommand(string folder) =>
            PwshCommand().Concat(new[] { "-NoProfile", "-NonInteractive", "-File", Path.Combine(folder, WorkerScript) }).ToList();

        // Every rank runs the whole script; Start-GraLoRATraining finds its rank from the launcher's variables.
        const string WorkerText = """
            #Requires -Version 7.4
            # One rank of a GraLoRA data-parallel training job (written by New-GraLoRAJobScript or Start-GraLoRATraining -Device).
            # Every rank runs this whole script. Start-GraLoRATraining finds its rank from the launcher's variables (mpirun,
            # srun, torchrun), trains on its rows of every global batch and all-reduces the gradients; rank 0 alone writes
            # checkpoints, metrics and, at the end, the trained adapter (into result/ beside this script).
            $ErrorActionPreference = 'Stop'
            $ProgressPreference = 'SilentlyContinue'            # a launcher's log is no terminal: rank 0's status lines say how it goes
            $InformationPreference = 'Continue'
            $job = Get-Content -Raw -LiteralPath (Join-Path $PSScriptRoot 'settings.json') | ConvertFrom-Json -AsHashtable
            Import-Module $job.Module
            # GRALORA_DEVICE pins a device (Start-GraLoRATraining -Device sets it); cuda:local is cuda:<this rank's LOCAL_RANK>.
            $device = if ($env:GRALORA_DEVICE) { $env:GRALORA_DEVICE } elseif ($job.Device -eq 'cuda') { 'cuda:local' } else { 'cpu' }
            $load = @{ Device = $device; DType = $job.DType }
            if ($job.Labels) { $load.Task = 'SequenceClassification'; $load.Labels = $job.Labels }
            $model = Import-BaseModel -Path $job.Model @load
            $model | Import-GraLoRAAdapter (Join-Path $PSScriptRoot 'adapter') -Name $job.Adapter | Out-Null
            $train = @{ Adapter = $job.Adapter; Config = $job.Settings }
            if ($job.ResumeFrom) { $train.ResumeFrom = $job.ResumeFrom }
            $run = $model | Start-GraLoRATraining -Dataset $job.Dataset @train
            if ($run.Rank -eq 0) { $run | Save-GraLoRAAdapter (Join-Path $PSScriptRoot 'result') -Name $job.Adapter -Force | Out-Null }
            """;
    }
}
