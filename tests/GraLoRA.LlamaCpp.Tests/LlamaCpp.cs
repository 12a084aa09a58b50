using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace GraLoRA.Tests
{
    /// <summary>
    /// A GGUF file loaded by the real llama.cpp (LLamaSharp's CPU build): its tokenizer, the logits of every position of
    /// a prompt (optionally with a GGUF LoRA adapter applied), and greedy decoding. float32 key/value cache, so
    /// attention is not rounded to float16 on the way.
    /// </summary>
    internal sealed class LlamaCpp : IDisposable
    {
        static readonly StringBuilder Log = new();
        static readonly object LogLock = new();

        static LlamaCpp()
        {
            // Keep llama.cpp's chatter out of the test output, but at hand when a load fails.
            NativeLibraryConfig.All.WithLogCallback((level, message) => { lock (LogLock) Log.Append(message); });
        }

        readonly LLamaWeights _weights;
        readonly ModelParams _params;

        LlamaCpp(LLamaWeights weights, ModelParams parameters)
        {
            _weights = weights;
            _params = parameters;
        }

        /// <summary>The log llama.cpp wrote so far (the end of it).</summary>
        public static string RecentLog
        {
            get { lock (LogLock) { string s = Log.ToString(); return s.Length > 4000 ? s[^4000..] : s; } }
        }

        public static LlamaCpp Load(string path, uint contextSize = 64)
        {
            var parameters = new ModelParams(path)
            {
                ContextSize = contextSize,
                BatchSize = contextSize,
                UBatchSize = contextSize,
                GpuLayerCount = 0,
                Threads = 2,
                BatchThreads = 2,
                TypeK = GGMLType.GGML_TYPE_F32,
                TypeV = GGMLType.GGML_TYPE_F32,
                FlashAttention = false,
            };
            try { return new LlamaCpp(LLamaWeights.LoadFromFile(parameters), parameters); }
            catch (Exception ex) { throw new InvalidOperationException($"llama.cpp could not load '{path}': {ex.Message}\n{RecentLog}", ex); }
        }

        /// <summary>llama.cpp's metadata value for <paramref name="key"/> as text, or null.</summary>
        public string? Metadata(string key) => _weights.Metadata.TryGetValue(key, out var v) ? v : null;

        /// <summary>Token ids as llama.cpp encodes <paramref name="text"/> (special tokens in the text parsed as such).</summary>
        public int[] Tokenize(string text, bool addSpecial) =>
            _weights.NativeHandle.Tokenize(text, addSpecial, true, Encoding.UTF8).Select(t => (int)t).ToArray();

        /// <summary>Loads a GGUF LoRA adapter made for this model.</summary>
        public LoraAdapter LoadLora(string path)
        {
            try { return _weights.NativeHandle.LoadLoraFromFile(path); }
            catch (Exception ex) { throw new InvalidOperationException($"llama.cpp could not load adapter '{path}': {ex.Message}\n{RecentLog}", ex); }
        }

        /// <summary>Logits [position][vocab] for <paramref name="tokens"/> in one fresh context.</summary>
        public float[][] Logits(IReadOnlyList<int> tokens, LoraAdapter? lora = null, float loraScale = 1f)
        {
            using var context = _weights.CreateContext(_params);
            if (lora is { } adapter) context.NativeHandle.SetLoraAdapters(new[] { (adapter, loraScale) });
            var batch = new LLamaBatch();
            for (int i = 0; i < tokens.Count; i++) batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, true);
            var result = context.NativeHandle.Decode(batch);
            if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {result}\n{RecentLog}");
            return Enumerable.Range(0, tokens.Count).Select(i => context.NativeHandle.GetLogitsIth(i).ToArray()).ToArray();
        }

        /// <summary>Greedy decoding: <paramref name="count"/> tokens after <paramref name="prompt"/>, one decode step each.</summary>
        public int[] Greedy(IReadOnlyList<int> prompt, int count)
        {
            using var context = _weights.CreateContext(_params);
            var batch = new LLamaBatch();
            for (int i = 0; i < prompt.Count; i++) batch.Add((LLamaToken)prompt[i], i, LLamaSeqId.Zero, i == prompt.Count - 1);
            var output = new List<int>();
            int position = prompt.Count;
            for (int step = 0; step < count; step++)
            {
                var result = context.NativeHandle.Decode(batch);
                if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {result}\n{RecentLog}");
                var logits = context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
                int next = ArgMax(logits);
                output.Add(next);
                batch.Clear();
                batch.Add((LLamaToken)next, position++, LLamaSeqId.Zero, true);
            }
            return output.ToArray();
        }

        public static int ArgMax(ReadOnlySpan<float> values)
        {
            int best = 0;
            for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
            return best;
        }

        public void Dispose() => _weights.Dispose();
    }
}
