using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>RaSA's shared pool on the host: planned per module type, registered once on the model, released with its last adapter.</summary>
    public sealed partial class AdapterHost
    {
        RasaSharedPool? _rasaPool;                 // registered on the root while a RaSA adapter exists

        /// <summary>
        /// RaSA's grouping, as its authors' RasaModel does it: the targets by module type (the name after "layers.N."), each
        /// type's L layers sharing one pool, so all must have the same shape. Returns type → (L, one of its base layers).
        /// </summary>
        static Dictionary<string, (int Layers, nn.Module<Tensor, Tensor> Base)> PlanRasaPools(IReadOnlyList<(string Name, nn.Module<Tensor, Tensor> Base)> targets)
        {
            var pools = new Dictionary<string, (int Layers, nn.Module<Tensor, Tensor> Base)>(StringComparer.Ordinal);
            foreach (var (full, baseLinear) in targets)
            {
                string type = RasaSharedPool.ModuleType(full) ?? throw new GraloraException("RasaNeedsLayers", GraloraErrorKind.InvalidArgument,
                    $"RaSA shares ranks among the layers of a layer list (names like model.layers.N.self_attn.q_proj), but '{full}' is not in one: exclude it (-ExcludeModule) or choose other targets.", full);
                if (pools.TryGetValue(type, out var seen))
                {
                    long[] a = { FrozenLinear.OutFeatures(seen.Base), FrozenLinear.InFeatures(seen.Base) };
                    long[] b = { FrozenLinear.OutFeatures(baseLinear), FrozenLinear.InFeatures(baseLinear) };
                    if (a[0] != b[0] || a[1] != b[1])
                        throw new GraloraException("RasaShapeMismatch", GraloraErrorKind.InvalidArgument,
                            $"RaSA shares one pool among every '{type}', but '{full}' is [{b[0]}, {b[1]}] while another is [{a[0]}, {a[1]}]: target modules of one shape per type.", full);
                    pools[type] = (seen.Layers + 1, seen.Base);
                }
                else pools[type] = (1, baseLinear);
            }
            return pools;
        }

        // The pool, registered on the root under PEFT's attribute names so it moves, trains and counts with the model, once.
        RasaSharedPool RasaPool()
        {
            if (_rasaPool is null)
            {
                _rasaPool = new RasaSharedPool();
                _root.register_module(RasaSharedPool.SharedAName, _rasaPool.SharedA);
                _root.register_module(RasaSharedPool.SharedBName, _rasaPool.SharedB);
            }
            return _rasaPool;
        }

        /// <summary>Each pool of adapter <paramref name="adapter"/> in turn: the module type, shared A and shared B (none for other methods).</summary>
        IEnumerable<(string Type, Parameter A, Parameter B)> RasaPoolParameters(string adapter) =>
            _rasaPool?.Parameters(adapter) ?? Enumerable.Empty<(string, Parameter, Parameter)>();

        /// <summary>Adds adapter <paramref name="adapter"/>'s shared ranks, k·L per module type, to the model's pool.</summary>
        void AddRasaPools(string adapter, AdapterConfig config, Dictionary<string, (int Layers, nn.Module<Tensor, Tensor> Base)> pools)
        {
            var pool = RasaPool();
            foreach (var (type, (layers, baseLinear)) in pools)
            {
                pool.Add(adapter, type, FrozenLinear.InFeatures(baseLinear), FrozenLinear.OutFeatures(baseLinear), (long)config.EffectiveRasaK * layers,
                    config.InitWeights, AdapterLayerBase.WidenHalf(FrozenLinear.DType(baseLinear)), FrozenLinear.Device(baseLinear));
            }
        }

        void ReleaseRasaPool(string adapter)
        {
            if (_rasaPool is null) return;
            _rasaPool.Remove(adapter);
            if (!_rasaPool.IsEmpty) return;
            _root.register_module(RasaSharedPool.SharedAName, null!);
            _root.register_module(RasaSharedPool.SharedBName, null!);
            _rasaPool = null;
        }
    }
}
