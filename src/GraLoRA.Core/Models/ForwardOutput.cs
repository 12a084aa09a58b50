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
        public float[][][] Logits => ForwardArrays.Nested3(_logits);

        /// <summary>Hidden states as nested arrays, one [batch][position][hidden] per entry; empty unless requested.</summary>
        public IReadOnlyList<float[][][]> HiddenStates => _hidden.Select(ForwardArrays.Nested3).ToArray();

        /// <summary>Number of hidden-state tensors held.</summary>
        public int HiddenStateCount => _hidden.Length;

        /// <summary>The logits tensor (owned by this object).</summary>
        public Tensor LogitsTensor => _logits;

        /// <summary>The hidden-state tensors (owned by this object).</summary>
        public IReadOnlyList<Tensor> HiddenStateTensors => _hidden;

        /// <summary>
        /// Writes `logits` and `hidden_states.&lt;i&gt;` to a safetensors file (atomically); an existing non-empty file is
        /// replaced only with <paramref name="overwrite"/> (<see cref="OutputTarget"/>).
        /// </summary>
        public void Save(string path, bool overwrite = false)
        {
            OutputTarget.CheckFile(path, overwrite);
            var tensors = new Dictionary<string, Tensor> { ["logits"] = _logits };
            for (int i = 0; i < _hidden.Length; i++) tensors[$"hidden_states.{i}"] = _hidden[i];
            Safetensors.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }

        /// <inheritdoc />
        public void Dispose()
        {
            _logits.Dispose();
            foreach (var h in _hidden) h.Dispose();
        }
    }
}

namespace GraLoRA.Models
{
    /// <summary>
    /// The result of one encoder pass, copied to the CPU in float32: last_hidden_state [B, L, hidden], pooler_output
    /// [B, hidden] (models with a pooler), logits [B, labels] (classification models) and, when asked, the hidden
    /// states (embeddings output, then each layer's output — transformers' order).
    /// </summary>
    public sealed class EncoderForwardOutput : IDisposable
    {
        readonly Tensor _last;
        readonly Tensor? _pooled, _logits;
        readonly Tensor[] _hidden;

        static Tensor Copy(Tensor t) => t.detach().to(ScalarType.Float32, CPU).DetachFromDisposeScope();

        internal EncoderForwardOutput(EncoderOutput output)
        {
            _last = Copy(output.LastHiddenState);
            _pooled = output.PoolerOutput is null ? null : Copy(output.PoolerOutput);
            _logits = output.Logits is null ? null : Copy(output.Logits);
            _hidden = output.HiddenStates.Select(Copy).ToArray();
        }

        /// <summary>last_hidden_state as nested arrays [batch][position][hidden].</summary>
        public float[][][] LastHiddenState => ForwardArrays.Nested3(_last);
        /// <summary>pooler_output [batch][hidden], or null when the model has no pooler (RobertaForSequenceClassification).</summary>
        public float[][]? PoolerOutput => _pooled is null ? null : ForwardArrays.Nested2(_pooled);
        /// <summary>Class logits [batch][label], or null for a model without classification head.</summary>
        public float[][]? Logits => _logits is null ? null : ForwardArrays.Nested2(_logits);
        /// <summary>Hidden states, one [batch][position][hidden] per entry; empty unless requested.</summary>
        public IReadOnlyList<float[][][]> HiddenStates => _hidden.Select(ForwardArrays.Nested3).ToArray();
        /// <summary>Number of hidden-state tensors held.</summary>
        public int HiddenStateCount => _hidden.Length;
        /// <summary>The last_hidden_state tensor (owned by this object).</summary>
        public Tensor LastHiddenStateTensor => _last;
        /// <summary>The pooler_output tensor or null (owned by this object).</summary>
        public Tensor? PoolerOutputTensor => _pooled;
        /// <summary>The logits tensor or null (owned by this object).</summary>
        public Tensor? LogitsTensor => _logits;
        /// <summary>The hidden-state tensors (owned by this object).</summary>
        public IReadOnlyList<Tensor> HiddenStateTensors => _hidden;

        /// <summary>
        /// Writes last_hidden_state, pooler_output, logits and hidden_states.&lt;i&gt; (those present) to a safetensors file
        /// (atomically); an existing non-empty file is replaced only with <paramref name="overwrite"/> (<see cref="OutputTarget"/>).
        /// </summary>
        public void Save(string path, bool overwrite = false)
        {
            OutputTarget.CheckFile(path, overwrite);
            var tensors = new Dictionary<string, Tensor> { ["last_hidden_state"] = _last };
            if (_pooled is not null) tensors["pooler_output"] = _pooled;
            if (_logits is not null) tensors["logits"] = _logits;
            for (int i = 0; i < _hidden.Length; i++) tensors[$"hidden_states.{i}"] = _hidden[i];
            Safetensors.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }

        /// <inheritdoc />
        public void Dispose()
        {
            _last.Dispose();
            _pooled?.Dispose();
            _logits?.Dispose();
            foreach (var h in _hidden) h.Dispose();
        }
    }

    static class ForwardArrays
    {
        public static float[][] Nested2(Tensor t)
        {
            long b = t.shape[0], d = t.shape[1];
            var flat = t.contiguous().data<float>().ToArray();
            var result = new float[b][];
            for (long i = 0; i < b; i++)
            {
                result[i] = new float[d];
                Array.Copy(flat, i * d, result[i], 0, d);
            }
            return result;
        }

        public static float[][][] Nested3(Tensor t)
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
    }
}
