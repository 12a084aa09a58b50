using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using GraLoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Generation
{
    /// <summary>
    /// Autoregressive generation for a batch of token-id prompts, left-padded as transformers does, with a
    /// key/value cache. Works on ids only; text (decoding, stop strings, streaming) comes through delegates.
    /// </summary>
    public static class TextGenerator
    {
        /// <summary>
        /// Continues each prompt. <paramref name="decode"/> turns generated ids into text (required for stop
        /// strings); <paramref name="onToken"/> receives (prompt index, token) as each token is chosen. The model
        /// runs in eval mode (adapter dropout off) and is returned to its previous mode afterwards.
        /// </summary>
        public static IReadOnlyList<GeneratedSequence> Generate(DecoderForCausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options,
            Func<IReadOnlyList<int>, string>? decode = null, Action<int, int>? onToken = null, CancellationToken cancellation = default)
        {
            int vocab = model.Config.VocabSize;
            options.Validate(vocab);
            if (prompts.Count == 0)
                throw new GraloraException("EmptyPrompt", GraloraErrorKind.InvalidArgument, "No prompts were given: pass at least one.");
            for (int i = 0; i < prompts.Count; i++)
            {
                if (prompts[i].Count == 0)
                    throw new GraloraException("EmptyPrompt", GraloraErrorKind.InvalidArgument, $"Prompt {i} has no tokens: every prompt needs at least one (e.g. the BOS token).", i);
                foreach (var id in prompts[i])
                    if (id < 0 || id >= vocab)
                        throw new GraloraException("TokenOutOfRange", GraloraErrorKind.InvalidArgument, $"Prompt {i} has token id {id}, outside the model's vocabulary [0, {vocab}).", id);
            }
            if (options.StopStrings.Count > 0 && decode is null)
                throw new GraloraException("StopStringsNeedTokenizer", GraloraErrorKind.InvalidArgument, "Stop strings need a decoder (a tokenizer) to read the generated text.");

            int batch = prompts.Count, promptLength = prompts.Max(p => p.Count), pad = options.EffectivePadTokenId;
            var device = model.Device;
            // Rows of the whole sequence so far (left padding, prompt, generated) and its attention mask.
            var rows = prompts.Select(p => Enumerable.Repeat(pad, promptLength - p.Count).Concat(p).ToList()).ToArray();
            var maskRows = prompts.Select(p => Enumerable.Repeat(0, promptLength - p.Count).Concat(Enumerable.Repeat(1, p.Count)).ToList()).ToArray();
            var generated = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
            var reasons = new FinishReason?[batch];

            bool wasTraining = model.training;
            model.eval();
            using var cache = options.UseCache ? new KeyValueCache(model, batch, promptLength + options.MaxNewTokens) : null;
            using var sampler = options.DoSample ? new Generator((ulong)(options.Seed ?? Random.Shared.NextInt64()), device) : null;
            try
            {
                using var _ = no_grad();
                for (int step = 0; step < options.MaxNewTokens; step++)
                {
                    if (cancellation.IsCancellationRequested)
                    {
                        for (int i = 0; i < batch; i++) reasons[i] ??= FinishReason.Cancelled;
                        break;
                    }
                    int[] next;
                    using (NewDisposeScope())
                    {
                        var all = Matrix(rows, device);
                        var mask = Matrix(maskRows, device);
                        // transformers' positions for left padding: count of real tokens so far, minus one (pads get 1).
                        var positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1);
                        // Phi-3's longrope switches frequencies past the pretrained context: like transformers'
                        // Phi3ForCausalLM, drop the cache once and recompute the whole sequence at that step.
                        if (cache is not null && step > 0 && model.Config.CacheStaleAt(cache.Length, all.shape[1])) cache.Reset();
                        long fresh = cache is null || cache.Length == 0 ? all.shape[1] : 1;
                        var input = all.narrow(1, all.shape[1] - fresh, fresh);
                        var logits = model.Forward(input, mask, positions.narrow(1, positions.shape[1] - fresh, fresh), cache: cache).Logits;
                        var scores = logits.select(1, -1).to(ScalarType.Float32);            // [B, vocab]
                        next = ChooseNext(scores, all, options, sampler);
                    }
                    for (int i = 0; i < batch; i++)
                    {
                        int token = reasons[i] is null ? next[i] : pad;
                        rows[i].Add(token);
                        maskRows[i].Add(1);
                        if (reasons[i] is not null) continue;
                        generated[i].Add(token);
                        onToken?.Invoke(i, token);
                        if (options.EosTokenIds.Contains(token)) reasons[i] = FinishReason.EndOfSequence;
                        else if (options.StopStrings.Count > 0)
                        {
                            string text = decode!(generated[i]);
                            if (options.StopStrings.Any(s => text.Contains(s, StringComparison.Ordinal))) reasons[i] = FinishReason.StopString;
                        }
                    }
                    if (reasons.All(r => r is not null)) break;
                }
            }
            finally
            {
                if (wasTraining) model.train();
            }
            return generated.Select((g, i) => new GeneratedSequence(g.ToArray(), reasons[i] ?? FinishReason.Length)).ToArray();
        }

        static Tensor Matrix(List<int>[] rows, Device device)
        {
            long width = rows[0].Count;
            var flat = rows.SelectMany(r => r.Select(v => (long)v)).ToArray();
            return tensor(flat, new[] { rows.Length, width }, device: device);
        }

        /// <summary>One token per row: penalty, then argmax, or temperature, top-k, top-p and a draw.</summary>
        static int[] ChooseNext(Tensor scores, Tensor previous, GenerationOptions options, Generator? sampler)
        {
            if (options.RepetitionPenalty != 1.0) scores = LogitsProcessing.RepetitionPenalty(scores, previous, options.RepetitionPenalty);
            Tensor chosen;
            if (!options.DoSample) chosen = scores.argmax(-1);
            else
            {
                if (options.Temperature != 1.0) scores = scores / options.Temperature;
                if (options.TopK > 0) scores = LogitsProcessing.TopK(scores, options.TopK);
                if (options.TopP < 1.0) scores = LogitsProcessing.TopP(scores, options.TopP);
                chosen = scores.softmax(-1).multinomial(1, generator: sampler).squeeze(1);
            }
            return chosen.cpu().data<long>().Select(v => (int)v).ToArray();
        }
    }
}
