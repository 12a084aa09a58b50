using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// RaSA's shared ranks: per adapter and module type (e.g. self_attn__q_proj, every layer's q_proj), shared_A [k·L, in]
    /// and shared_B [out, k·L], used by all L layers of that type. The model holds them once, as the RaSA authors'
    /// RasaModel does (base_model.rasa_shared_A/B), so they count once, train once and are saved once; each
    /// <see cref="RasaLinear"/> only refers to its type's pair.
    /// </summary>
    public sealed class RasaSharedPool
    {
        /// <summary>The module attribute names (PEFT's RasaModel.rasa_shared_A / rasa_shared_B).</summary>
        public const string SharedAName = "rasa_shared_A", SharedBName = "rasa_shared_B";

        static readonly Regex LayerPattern = new(@"layers\.(\d+)\.(.+)", RegexOptions.CultureInvariant);

        /// <summary>"adapter.type.weight" -> shared_A [k·L, in].</summary>
        public ParameterDict SharedA { get; } = new();
        /// <summary>"adapter.type.weight" -> shared_B [out, k·L].</summary>
        public ParameterDict SharedB { get; } = new();

        /// <summary>
        /// The module type of a full module name, as the RaSA authors group them: what follows "layers.N." with dots
        /// replaced by "__" (model.layers.3.self_attn.q_proj → self_attn__q_proj); null for modules outside a layer list.
        /// </summary>
        public static string? ModuleType(string moduleName)
        {
            var match = LayerPattern.Match(moduleName);
            return match.Success ? match.Groups[2].Value.Replace(".", "__", StringComparison.Ordinal) : null;
        }

        /// <summary>Whether adapter <paramref name="adapter"/> has a pool for module type <paramref name="type"/>.</summary>
        public bool Contains(string adapter, string type) => SharedA.ContainsKey(Key(adapter, type));

        /// <summary>shared_A of adapter <paramref name="adapter"/> for module type <paramref name="type"/>: [k·L, in].</summary>
        public Parameter A(string adapter, string type) => SharedA.TryGetValue(Key(adapter, type), out var p) ? p : throw Missing(adapter, type);
        /// <summary>shared_B of adapter <paramref name="adapter"/> for module type <paramref name="type"/>: [out, k·L].</summary>
        public Parameter B(string adapter, string type) => SharedB.TryGetValue(Key(adapter, type), out var p) ? p : throw Missing(adapter, type);

        /// <summary>The module types adapter <paramref name="adapter"/> has a pool for, in the order added.</summary>
        public IReadOnlyList<string> Types(string adapter)
        {
            string prefix = adapter + ".";
            return SharedA.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Select(k => k[prefix.Length..^".weight".Length]).ToList();
        }

        /// <summary>Every shared parameter of adapter <paramref name="adapter"/>: (type, A, B).</summary>
        public IEnumerable<(string Type, Parameter A, Parameter B)> Parameters(string adapter) =>
            Types(adapter).Select(t => (t, A(adapter, t), B(adapter, t)));

        /// <summary>
        /// Creates the pool of adapter <paramref name="adapter"/> for module type <paramref name="type"/> (layers in → out):
        /// shared_A kaiming-uniform, shared_B zero (random too without <paramref name="initWeights"/>), as the authors do.
        /// </summary>
        public void Add(string adapter, string type, long inFeatures, long outFeatures, long sharedRank, bool initWeights, ScalarType dtype, Device device)
        {
            if (Contains(adapter, type))
                throw new GraloraException("AdapterExists", GraloraErrorKind.InvalidOperation, $"Adapter '{adapter}' already has a RaSA pool for '{type}'.", adapter);
            using var _ = no_grad();
            double boundA = 1.0 / Math.Sqrt(inFeatures), boundB = 1.0 / Math.Sqrt(sharedRank);
            var a = empty(new[] { sharedRank, inFeatures }, dtype: dtype, device: device).uniform_(-boundA, boundA);
            var b = initWeights
                ? zeros(new[] { outFeatures, sharedRank }, dtype: dtype, device: device)
                : empty(new[] { outFeatures, sharedRank }, dtype: dtype, device: device).uniform_(-boundB, boundB);
            SharedA.Add(Key(adapter, type), new Parameter(a));
            SharedB.Add(Key(adapter, type), new Parameter(b));
        }

        /// <summary>Deletes every pool of adapter <paramref name="adapter"/>.</summary>
        public void Remove(string adapter)
        {
            foreach (var type in Types(adapter))
                foreach (var dict in new[] { SharedA, SharedB })
                    if (dict.TryGetValue(Key(adapter, type), out var p))
                    {
                        dict.Remove(Key(adapter, type));
                        p.Dispose();
                    }
        }

        /// <summary>True when no adapter has a pool.</summary>
        public bool IsEmpty => SharedA.Count == 0;

        static string Key(string adapter, string type) => adapter + "." + type + ".weight";

        static GraloraException Missing(string adapter, string type) =>
            new("AdapterNotFound", GraloraErrorKind.NotFound, $"Adapter '{adapter}' has no RaSA pool for module type '{type}'.", adapter);
    }
}
