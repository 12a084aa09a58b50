using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// A module whose linear sub-layers can be swapped by name: where adapters are injected (PEFT's
    /// _replace_module). The slot names are the state-dict names (q_proj, down_proj, lm_head, …).
    /// </summary>
    public interface ILinearSlots
    {
        /// <summary>Names of the replaceable linear children.</summary>
        IReadOnlyList<string> LinearSlotNames { get; }
        /// <summary>The module currently in slot <paramref name="name"/> (a Linear, or a wrapper around one).</summary>
        nn.Module<Tensor, Tensor> GetSlot(string name);
        /// <summary>Puts <paramref name="module"/> in slot <paramref name="name"/> (field and registration).</summary>
        void SetSlot(string name, nn.Module<Tensor, Tensor> module);
    }

    /// <summary>Slot bookkeeping shared by the models: a field per slot, re-registered under the same name when swapped.</summary>
    internal static class Slots
    {
        public static void Replace(nn.Module owner, string name, nn.Module<Tensor, Tensor> module, Action<nn.Module<Tensor, Tensor>> assignField)
        {
            assignField(module);
            owner.register_module(name, null!);       // drops the old registration
            owner.register_module(name, module);
        }

        /// <summary>The weight of the Linear in a slot, through any wrapper (adapter layer, module to save).</summary>
        public static Tensor BaseWeight(nn.Module<Tensor, Tensor> module) => module switch
        {
            TorchSharp.Modules.Linear l => l.weight!,
            AdapterLayerBase a => a.BaseLayer.weight!,
            ModulesToSaveLinear m => m.Original.weight!,
            _ => throw new System.InvalidOperationException($"slot holds a {module.GetType().Name}"),
        };

        public static GraloraException Unknown(string name, IEnumerable<string> known) =>
            new("UnknownModuleSlot", GraloraErrorKind.InvalidArgument, $"No linear slot '{name}' here; slots are {string.Join(", ", known)}.", name);
    }
}
