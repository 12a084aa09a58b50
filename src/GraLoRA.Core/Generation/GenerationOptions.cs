using System;
using System.Collections.Generic;
using System.Linq;

namespace GraLoRA.Generation
{
    /// <summary>
    /// How to continue prompts, with transformers' generate() semantics: greedy unless <see cref="DoSample"/>;
    /// when sampling, logits pass repetition penalty, temperature, top-k, then top-p before the draw.
    /// </summary>
    public sealed record GenerationOptions
    {
        /// <summary>Most tokens added to each prompt.</summary>
        public int MaxNewTokens { get; init; } = 64;
        /// <summary>Sample from the (processed) distribution instead of taking the most likely token.</summary>
        public bool DoSample { get; init; }
        /// <summary>Divides logits before sampling (sampling only); &lt; 1 sharpens, &gt; 1 flattens.</summary>
        public double Temperature { get; init; } = 1.0;
        /// <summary>Keep only the k most likely tokens (0 = off; sampling only).</summary>
        public int TopK { get; init; }
        /// <summary>Keep the smallest set of tokens whose probability reaches p (1 = off; sampling only).</summary>
        public double TopP { get; init; } = 1.0;
        /// <summary>Penalises tokens already in the sequence (1 = off), as in CTRL and transformers.</summary>
        public double RepetitionPenalty { get; init; } = 1.0;
        /// <summary>Token ids that end a sequence (kept in the output).</summary>
        public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();
        /// <summary>Id used for left padding and after a sequence has finished (default: the first EOS id, else 0).</summary>
        public int? PadTokenId { get; init; }
        /// <summary>Strings that end a sequence once its generated text contains one (needs a decoder).</summary>
        public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();
        /// <summary>Seed of the sampling generator, for reproducible samples; null draws a fresh seed.</summary>
        public long? Seed { get; init; }
        /// <summary>Reuse past keys and values (on by default; off recomputes the whole sequence every step).</summary>
        public bool UseCache { get; init; } = true;

        /// <summary>The padding id in effect.</summary>
        public int EffectivePadTokenId => PadTokenId ?? (EosTokenIds.Count > 0 ? EosTokenIds[0] : 0);

        /// <summary>Checks every value (the one place they are checked); the message names the value and its range.</summary>
        public void Validate(int vocabSize)
        {
            static GraloraException Bad(string name, object value, string rule) =>
                new("InvalidGenerationOption", GraloraErrorKind.InvalidArgument, $"{name} = {value} is invalid: {rule}.", name);
            if (MaxNewTokens < 1) throw Bad(nameof(MaxNewTokens), MaxNewTokens, "generate at least 1 token");
            if (!(Temperature > 0) || double.IsInfinity(Temperature)) throw Bad(nameof(Temperature), Temperature, "use a finite value > 0 (for greedy decoding leave DoSample off)");
            if (TopK < 0) throw Bad(nameof(TopK), TopK, "use 0 (off) or a positive count");
            if (!(TopP > 0 && TopP <= 1)) throw Bad(nameof(TopP), TopP, "use a value in (0, 1]");
            if (!(RepetitionPenalty > 0) || double.IsInfinity(RepetitionPenalty)) throw Bad(nameof(RepetitionPenalty), RepetitionPenalty, "use a finite value > 0 (1 = off)");
            foreach (var id in EosTokenIds.Append(EffectivePadTokenId))
                if (id < 0 || id >= vocabSize) throw Bad("token id", id, $"EOS and pad ids must lie in [0, {vocabSize})");
            if (StopStrings.Any(string.IsNullOrEmpty)) throw Bad(nameof(StopStrings), "''", "stop strings must not be empty");
        }
    }

    /// <summary>Why a sequence stopped.</summary>
    public enum FinishReason
    {
        /// <summary>It reached MaxNewTokens.</summary>
        Length,
        /// <summary>It produced an EOS token.</summary>
        EndOfSequence,
        /// <summary>Its text came to contain a stop string.</summary>
        StopString,
        /// <summary>The caller cancelled.</summary>
        Cancelled,
    }

    /// <summary>The tokens generated for one prompt (prompt not included) and why it stopped.</summary>
    public sealed record GeneratedSequence(int[] Tokens, FinishReason FinishReason);
}
