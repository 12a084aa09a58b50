using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// PEFT's ModulesToSaveWrapper for a linear layer: the original ("original_module") stays untouched and each
    /// adapter trains its own full copy ("modules_to_save.&lt;adapter&gt;"); forward uses the active adapter's copy, or
    /// the original when adapters are disabled or none of its adapters is active.
    /// </summary>
    public sealed class ModulesToSaveLinear : nn.Module<Tensor, Tensor>, IAdapterTensors
    {
        /// <summary>The name the untouched layer is registered under (PEFT's).</summary>
        public const string OriginalName = "original_module";
        /// <summary>The name of the per-adapter copies' container (PEFT's).</summary>
        public const string CopiesName = "modules_to_save";

        readonly Linear original_module;
        readonly ModuleDict<Linear> modules_to_save = new();
        readonly Dictionary<string, Linear> _copies = new(StringComparer.Ordinal);

        /// <summary>Wraps <paramref name="original"/>.</summary>
        public ModulesToSaveLinear(Linear original) : base(nameof(ModulesToSaveLinear))
        {
            original_module = original;
            register_module(OriginalName, original_module);
            register_module(CopiesName, modules_to_save);
        }

        /// <summary>The untouched layer.</summary>
        public Linear Original => original_module;
        /// <summary>Adapters that have a copy here.</summary>
        public IReadOnlyCollection<string> AdapterNames => _copies.Keys;
        /// <summary>The adapter whose copy forward uses, or null for the original.</summary>
        public string? ActiveAdapter { get; private set; }

        /// <summary>Adds a trainable copy of the original for <paramref name="adapter"/>.</summary>
        public void AddCopy(string adapter)
        {
            using var _ = no_grad();
            var w = original_module.weight!;
            var copy = nn.Linear(new Parameter(w.detach().clone()), original_module.bias is { } b ? new Parameter(b.detach().clone()) : null);
            _copies[adapter] = copy;
            // ModuleDict registrations are fixed once registered, so its entry is added through register_module.
            modules_to_save.register_module(adapter, copy);
        }

        /// <summary>Drops <paramref name="adapter"/>'s copy.</summary>
        public void RemoveCopy(string adapter)
        {
            if (!_copies.Remove(adapter, out var copy)) return;
            modules_to_save.register_module(adapter, null!);
            if (ActiveAdapter == adapter) ActiveAdapter = null;
            copy.Dispose();
        }

        /// <summary>The copy belonging to <paramref name="adapter"/>.</summary>
        public Linear Copy(string adapter) => _copies[adapter];

        /// <inheritdoc />
        public bool HasAdapter(string adapter) => _copies.ContainsKey(adapter);

        /// <inheritdoc />
        public IEnumerable<(string Key, Parameter Tensor)> AdapterStateDict(string adapter) =>
            PeftKeys.AdapterParameters(this, adapter, OriginalName).Select(p => (PeftKeys.CopyKey(p.Path, adapter), p.Parameter)).ToList();

        /// <summary>Uses the first of <paramref name="activeAdapters"/> that has a copy (null or none: the original); only that copy trains.</summary>
        public void SetActive(IEnumerable<string>? activeAdapters)
        {
            ActiveAdapter = activeAdapters?.FirstOrDefault(_copies.ContainsKey);
            foreach (var (name, copy) in _copies)
                foreach (var p in copy.parameters()) p.requires_grad = name == ActiveAdapter;
            foreach (var p in original_module.parameters()) p.requires_grad = false;
        }

        /// <inheritdoc />
        public override Tensor forward(Tensor x) => (ActiveAdapter is null ? original_module : _copies[ActiveAdapter]).forward(x);
    }
}
