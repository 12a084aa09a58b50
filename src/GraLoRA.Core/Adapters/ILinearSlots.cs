using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// A module whose linear sub-layers can be swapped by name: where adapters are injected (PEFT's
    /// _replace_module). The slot names are the state-dict names (q_proj, down_proj, lm_head, …).
    /// Our architectures get it from <see cref="LinearSlotModule"/>; implement it by hand only for a module that cannot
    /// derive from that.
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

    /// <summary>
    /// Marks a field of a <see cref="LinearSlotModule"/> as a swappable linear slot. The slot's name is the field's
    /// name (as TorchSharp registers it) unless <see cref="Name"/> gives the registered name. Declare the field as
    /// <c>nn.Module&lt;Tensor, Tensor&gt;</c> so it can hold a Linear or anything that takes a Linear's place (adapter
    /// layers, modules-to-save wrappers, probes, quantised linears).
    /// </summary>
    [AttributeUsage(AttributeTargets.Field)]
    public sealed class LinearSlotAttribute : Attribute
    {
        /// <summary>A slot named as its field.</summary>
        public LinearSlotAttribute() { }
        /// <summary>A slot registered under <paramref name="name"/> (when the field's name differs).</summary>
        public LinearSlotAttribute(string name) => Name = name;
        /// <summary>The registered name, or null for the field's name.</summary>
        public string? Name { get; }
    }

    /// <summary>
    /// The one implementation of <see cref="ILinearSlots"/>: the slots are the fields marked <see cref="LinearSlotAttribute"/>,
    /// in declaration order. A slot exists while its field holds a layer — not null, and not a block with slots of its
    /// own (so a RoBERTa classification head in the "classifier" field is not itself a slot; its dense/out_proj are).
    /// Swapping a slot sets the field and re-registers the child under the same name.
    /// </summary>
    public abstract class LinearSlotModule : nn.Module<Tensor, Tensor>, ILinearSlots
    {
        /// <summary>Creates the module (TorchSharp's name).</summary>
        protected LinearSlotModule(string name) : base(name) { }

        /// <inheritdoc />
        public IReadOnlyList<string> LinearSlotNames => Filled().Select(s => s.Name).ToArray();

        /// <inheritdoc />
        public nn.Module<Tensor, Tensor> GetSlot(string name) => (nn.Module<Tensor, Tensor>)Find(name).Field.GetValue(this)!;

        /// <inheritdoc />
        public void SetSlot(string name, nn.Module<Tensor, Tensor> module)
        {
            ArgumentNullException.ThrowIfNull(module);
            var slot = Find(name);
            slot.Field.SetValue(this, module);
            register_module(slot.Name, null!);       // drops the old registration
            register_module(slot.Name, module);
        }

        IEnumerable<SlotField> Filled() =>
            SlotField.Of(GetType()).Where(s => s.Field.GetValue(this) is nn.Module<Tensor, Tensor> m and not ILinearSlots);

        SlotField Find(string name) =>
            Filled().FirstOrDefault(s => s.Name == name) ?? throw Slots.Unknown(name, LinearSlotNames);

        sealed record SlotField(string Name, FieldInfo Field)
        {
            static readonly ConcurrentDictionary<Type, SlotField[]> Cache = new();

            public static SlotField[] Of(Type type) => Cache.GetOrAdd(type, t =>
                t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                    .Select(f => (Field: f, Slot: f.GetCustomAttribute<LinearSlotAttribute>()))
                    .Where(f => f.Slot is not null)
                    .OrderBy(f => f.Field.MetadataToken)
                    .Select(f => new SlotField(f.Slot!.Name ?? f.Field.Name, f.Field))
                    .ToArray());
        }
    }

    /// <summary>Helpers around slot contents.</summary>
    internal static class Slots
    {
        /// <summary>
        /// The weight of the linear layer in a slot, through any wrapper (adapter layer, module to save); a quantised
        /// layer's dequantised (a new tensor: read it inside a dispose scope, as <see cref="FrozenLinear.Weight"/>).
        /// </summary>
        public static Tensor BaseWeight(nn.Module<Tensor, Tensor> module) => module switch
        {
            AdapterLayerBase a => a.BaseWeight(),
            ModulesToSaveLinear m => m.Original.weight!,
            _ when FrozenLinear.Is(module) => FrozenLinear.Weight(module),
            _ => throw new System.InvalidOperationException($"slot holds a {module.GetType().Name}"),
        };

        public static GraloraException Unknown(string name, IEnumerable<string> known) =>
            new("UnknownModuleSlot", GraloraErrorKind.InvalidArgument, $"No linear slot '{name}' here; slots are {string.Join(", ", known)}.", name);
    }
}
