using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.IO;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>
    /// The result of one forward pass, copied to the CPU in float32: logits [B, L, vocab] and, when asked, the
    /// hidden states [B, L, hidden] (embeddings, each layer's output, final norm — transformers' order).
    /// </summary>
    public sealed class ForwardOutput : IDisposable
    {
        readonly Tensor _logits;
        readonly Tensor[] _hidden;

        internal ForwardOutput(DecoderOutput output)
        {
            _logits = output.Logits.detach().to(ScalarType.Float32, CPU).DetachFromDisposeScope();
            _hidden = output.HiddenStates.Select(h => h.detach().to(ScalarType.Float32, CPU).DetachFromDisposeScope()).ToArray();
        }

        /// <summary>Shape of the logits: batch, sequence length, vocabulary size.</summary>
        public long[] Shape => _logits.shape;

        /// <summary>Logits as nested arrays [batch][position][vocab].</summary>
        public float[][][] Logits => ToNested(_logits);

        /// <summary>Hidden states as nested arrays, one [batch][position][hidden] per entry; empty unless requested.</summary>
        public IReadOnlyList<float[][][]> HiddenStates => _hidden.Select(ToNested).ToArray();

        /// <summary>Number of hidden-state tensors held.</summary>
        public int HiddenStateCount => _hidden.Length;

        /// <summary>The logits tensor (owned by this object).</summary>
        public Tensor LogitsTensor => _logits;

        /// <summary>The hidden-state tensors (owned by this object).</summary>
        public IReadOnlyList<Tensor> HiddenStateTensors => _hidden;

        /// <summary>Writes `logits` and `hidden_states.&lt;i&gt;` to a safetensors file (atomically).</summary>
        public void Save(string path)
        {
            var tensors = new Dictionary<string, Tensor> { ["logits"] = _logits };
            for (int i = 0; i < _hidden.Length; i++) tensors[$"hidden_states.{i}"] = _hidden[i];
            Safetensors.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }

        static float[][][] ToNested(Tensor t)
        {
            long b = t.shape[0], l = t.shape[1], d = t.shape[2];
            var flat = t.contiguous().data<float>().ToArray();
            var result = new float[b][][];
            for (long i = 0; i < b; i++)
            {
                result[i] = new float[l][];
                for (long j = 0; j < l; j++)
                {
                    result[i][j] = new float[d];
                    Array.Copy(flat, (i * l + j) * d, result[i][j], 0, d);
                }
            }
            return result;
        }

        /// <inheritdoc />
        public void Dispose()
        {
            _logits.Dispose();
            foreach (var h in _hidden) h.Dispose();
        }
    }
}
