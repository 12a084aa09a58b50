using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Completion
{
    /// <summary>Shared helpers: turning candidate strings into completions and finding the bound -Model.</summary>
    internal static class CompletionHelpers
    {
        /// <summary>The candidates starting with the typed word (case-insensitive), quoted where needed.</summary>
        public static IEnumerable<CompletionResult> Complete(IEnumerable<string> candidates, string wordToComplete)
        {
            string word = (wordToComplete ?? "").Trim('\'', '"');
            foreach (string candidate in candidates.Distinct(StringComparer.Ordinal))
            {
                if (!candidate.StartsWith(word, StringComparison.OrdinalIgnoreCase)) continue;
                string text = candidate.IndexOfAny(new[] { ' ', '$', '\'', '"', '`', ';', '(', ')', '{', '}', ',', '@', '#' }) >= 0
                    ? "'" + candidate.Replace("'", "''") + "'" : candidate;
                yield return new CompletionResult(text, candidate, CompletionResultType.ParameterValue, candidate);
            }
        }

        /// <summary>
        /// The model of -Model when the command line binds it to a value completion can see (a variable such as
        /// $m): a BaseModel, or an object with a Model property (Start-GraLoRATraining's result). Null otherwise.
        /// </summary>
        public static BaseModel? BoundModel(IDictionary fakeBoundParameters)
        {
            if (fakeBoundParameters is null) return null;
            object? value = null;
            foreach (DictionaryEntry entry in fakeBoundParameters)
                if (string.Equals(entry.Key as string, "Model", StringComparison.OrdinalIgnoreCase)) value = entry.Value;
            return AsModel(value);
        }

        static BaseModel? AsModel(object? value)
        {
            if (value is PSObject pso) value = pso.BaseObject;
            if (value is BaseModel model) return model;
            if (value is object[] { Length: 1 } single) return AsModel(single[0]);
            if (value is null) return null;
            var property = PSObject.AsPSObject(value).Properties["Model"];
            return property?.Value is { } inner && !ReferenceEquals(inner, value) && inner is not string ? AsModel(inner) : null;
        }
    }

    /// <summary>Completes -Device: cpu, cuda, cuda:0… (the CUDA devices libtorch sees) and auto.</summary>
    public sealed class DeviceCompleter : IArgumentCompleter
    {
        static string[]? _devices;

        internal static IReadOnlyList<string> Devices()
        {
            if (_devices is not null) return _devices;
            var names = new List<string> { "cpu" };
            try
            {
                var cuda = TorchRuntime.GetDeviceInfo().Devices.Where(d => d.Type == "CUDA").Select(d => d.Name).ToList();
                if (cuda.Count > 0)
                {
                    names.Add("cuda");
                    names.AddRange(cuda);
                }
            }
            catch (GraloraException)
            {
                // libtorch failed to load: only the CPU and auto can be named (and the command will say why).
            }
            names.Add("auto");
            return _devices = names.ToArray();
        }

        /// <inheritdoc />
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters) => CompletionHelpers.Complete(Devices(), wordToComplete);
    }

    /// <summary>Completes adapter names (-Name, -Adapter, -Active) from the model bound to -Model.</summary>
    public sealed class AdapterNameCompleter : IArgumentCompleter
    {
        /// <inheritdoc />
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var model = CompletionHelpers.BoundModel(fakeBoundParameters);
            if (model is null) return Array.Empty<CompletionResult>();
            try
            {
                return CompletionHelpers.Complete(model.Adapters.Names, wordToComplete).ToList();
            }
            catch (ObjectDisposedException)
            {
                return Array.Empty<CompletionResult>();
            }
        }
    }

    /// <summary>
    /// Completes module names (-TargetModule, -ExcludeModule, -ModulesToSave): the distinct last segments of the bound
    /// model's linear layer names (q_proj, v_proj, lm_head…), plus all-linear for -TargetModule.
    /// </summary>
    public sealed class TargetModuleCompleter : IArgumentCompleter
    {
        /// <inheritdoc />
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var candidates = new List<string>();
            var model = CompletionHelpers.BoundModel(fakeBoundParameters);
            if (model is not null)
            {
                try
                {
                    candidates.AddRange(model.Adapters.SlotsOf().Select(s => s.Slot).Distinct(StringComparer.Ordinal));
                }
                catch (ObjectDisposedException)
                {
                }
            }
            if (string.Equals(parameterName, "TargetModule", StringComparison.OrdinalIgnoreCase)) candidates.Add("all-linear");
            return CompletionHelpers.Complete(candidates, wordToComplete).ToList();
        }
    }

    /// <summary>
    /// Completes -Quantize with the schemes Core implements (nf4, int8). A completer, not ValidateSet, so that any other
    /// name reaches Core's refusal, which names the schemes that are not implemented (GPTQ, AWQ, FP8, fp4).
    /// </summary>
    public sealed class QuantizationSchemeCompleter : IArgumentCompleter
    {
        /// <inheritdoc />
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters) =>
            CompletionHelpers.Complete(Enum.GetValues<GraLoRA.Quantization.QuantizationScheme>().Select(GraLoRA.Quantization.QuantizationOptions.Name), wordToComplete).ToList();
    }
}
