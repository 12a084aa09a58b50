using System;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>
    /// Keys and values of past positions for incremental decoding. Buffers [B, kv_heads, capacity, head_dim] are
    /// allocated once per layer and filled in place, so a generation step allocates nothing that grows with the
    /// sequence.
    /// </summary>
    public sealed class KeyValueCache : IDisposable
    {
        readonly Tensor[] _keys, _values;

        /// <summary>Positions already stored.</summary>
        public long Length { get; private set; }
        /// <summary>Positions the buffers hold.</summary>
        public long Capacity { get; }
        /// <summary>Sequences in the batch.</summary>
        public long BatchSize { get; }

        /// <summary>Allocates the buffers for <paramref name="model"/> in its dtype and on its device.</summary>
        public KeyValueCache(DecoderForCausalLM model, long batchSize, long capacity)
        {
            if (batchSize < 1 || capacity < 1)
                throw new GraloraException("InvalidCacheSize", GraloraErrorKind.InvalidArgument,
                    $"A key/value cache needs batch ≥ 1 and capacity ≥ 1 (got batch {batchSize}, capacity {capacity}).");
            var c = model.Config;
            BatchSize = batchSize;
            Capacity = capacity;
            _keys = new Tensor[c.NumLayers];
            _values = new Tensor[c.NumLayers];
            for (int i = 0; i < c.NumLayers; i++)
            {
                _keys[i] = zeros(new[] { batchSize, c.NumKeyValueHeads, capacity, c.HeadDim }, dtype: model.DType, device: model.Device).DetachFromDisposeScope();
                _values[i] = zeros(new[] { batchSize, c.NumKeyValueHeads, capacity, c.HeadDim }, dtype: model.DType, device: model.Device).DetachFromDisposeScope();
            }
        }

        /// <summary>Writes layer <paramref name="layer"/>'s new k, v [B, n_kv, L, D] after the stored positions; returns views of all of them.</summary>
        internal (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
        {
            long l = k.shape[2];
            using (no_grad())
            {
                _keys[layer].narrow(2, Length, l).copy_(k);
                _values[layer].narrow(2, Length, l).copy_(v);
            }
            return (_keys[layer].narrow(2, 0, Length + l), _values[layer].narrow(2, 0, Length + l));
        }

        /// <summary>Marks <paramref name="count"/> more positions as stored (after every layer has appended).</summary>
        internal void Advance(long count) => Length += count;

        /// <summary>Forgets every stored position (the buffers are kept).</summary>
        public void Reset() => Length = 0;

        /// <inheritdoc />
        public void Dispose()
        {
            foreach (var t in _keys) t.Dispose();
            foreach (var t in _values) t.Dispose();
        }
    }
}
