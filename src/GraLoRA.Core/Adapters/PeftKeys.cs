using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// PEFT's checkpoint key names, derived from the names our modules register — the one place they are made.
    /// An adapter's parameters are registered per adapter inside a named container, as PEFT does
    /// (<c>gralora_A.default</c>, <c>lora_A.default.weight</c>, <c>modules_to_save.default.weight</c>); PEFT saves them with
    /// the adapter name removed (get_peft_model_state_dict). A new method only registers its containers
    /// (e.g. <c>lora_magnitude_vector</c>) and gets its keys from here.
    /// </summary>
    public static class PeftKeys
    {
        /// <summary>The prefix PEFT's tuner gives every key (tuner-level tensors, such as parameters shared across layers, sit right under it).</summary>
        public const string TunerPrefix = "base_model.";
        /// <summary>The prefix of every key of a module of the wrapped model: <c>base_model.model.&lt;module path&gt;</c>.</summary>
        public const string ModelPrefix = TunerPrefix + "model.";

        /// <summary>
        /// The parameters <paramref name="module"/> registers for adapter <paramref name="adapter"/>, with their registered
        /// paths: every <c>&lt;container&gt;.&lt;adapter&gt;[.rest]</c> outside the containers in <paramref name="exclude"/>
        /// (e.g. the wrapped base layer), in registration order.
        /// </summary>
        public static IEnumerable<(string Path, Parameter Parameter)> AdapterParameters(nn.Module module, string adapter, params string[] exclude)
        {
            foreach (var (path, parameter) in module.named_parameters())
            {
                var segments = path.Split('.');
                if (segments.Length >= 2 && segments[1] == adapter && !exclude.Contains(segments[0])) yield return (path, parameter);
            }
        }

        /// <summary>
        /// An adapter layer's key for registered path <paramref name="path"/>: the adapter-name segment removed
        /// (<c>gralora_A.default</c> → <c>gralora_A</c>, <c>lora_A.default.weight</c> → <c>lora_A.weight</c>).
        /// </summary>
        public static string LayerKey(string path, string adapter)
        {
            var segments = path.Split('.');
            if (segments.Length < 2 || segments[1] != adapter)
                throw new ArgumentException($"'{path}' is not a parameter of adapter '{adapter}'.", nameof(path));
            return string.Join('.', segments.Where((_, i) => i != 1));
        }

        /// <summary>
        /// A module to save's key for registered path <paramref name="path"/> (<c>modules_to_save.&lt;adapter&gt;.weight</c>):
        /// the copy's own parameter name (<c>weight</c>), so the saved copy replaces the module's weights under their names.
        /// </summary>
        public static string CopyKey(string path, string adapter)
        {
            var segments = path.Split('.');
            if (segments.Length < 3 || segments[1] != adapter)
                throw new ArgumentException($"'{path}' is not a parameter of adapter '{adapter}'.", nameof(path));
            return string.Join('.', segments.Skip(2));
        }

        /// <summary>The full key of a tensor <paramref name="relativeKey"/> of module <paramref name="module"/> (a full module path).</summary>
        public static string ModuleKey(string module, string relativeKey) => ModelPrefix + (module.Length == 0 ? relativeKey : module + "." + relativeKey);
    }

    /// <summary>Something in a linear slot that keeps tensors per adapter (adapter layers, modules-to-save wrappers).</summary>
    public interface IAdapterTensors
    {
        /// <summary>Whether adapter <paramref name="adapter"/> has tensors here.</summary>
        bool HasAdapter(string adapter);

        /// <summary>Adapter <paramref name="adapter"/>'s tensors, keyed relative to this module as PEFT saves them (see <see cref="PeftKeys"/>).</summary>
        IEnumerable<(string Key, Parameter Tensor)> AdapterStateDict(string adapter);
    }
}
