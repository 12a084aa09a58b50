using System;
using System.Collections.Generic;

namespace GraLoRA.Data
{
    /// <summary>How records become training examples, and how the training data is split and packed.</summary>
    public sealed record DataOptions
    {
        /// <summary>The record format; null: detected from the first training record (<see cref="DatasetFormatDetector.Detect"/>).</summary>
        public DatasetFormat? Format { get; init; }

        /// <summary>Longest example in tokens (default 1024); longer ones are cut on the <see cref="Truncation"/> side. Also the length of packed sequences.</summary>
        public int MaxLength { get; init; } = 1024;

        /// <summary>Which end of an over-long example is cut off (default <see cref="TruncationSide.Right"/>: the end).</summary>
        public TruncationSide Truncation { get; init; } = TruncationSide.Right;

        /// <summary>
        /// Learn every token, prompts and user turns included (default false: only responses: alpaca output, completion,
        /// assistant turns; plain text always learns everything; tokenized records learn what their labels say, or with
        /// this every token the attention mask keeps).
        /// </summary>
        public bool TrainOnPrompt { get; init; }

        /// <summary>
        /// Append the tokenizer's EOS token (the first of <see cref="Text.HfTokenizer.EosTokenIds"/>) after text, alpaca
        /// outputs and completions that do not already end with an EOS id (default true). Chats are not changed: their
        /// template ends each turn (e.g. &lt;|im_end|&gt;); nor are tokenized records, whose ids are used as they are.
        /// </summary>
        public bool AppendEos { get; init; } = true;

        /// <summary>Render alpaca records through the chat template as a user turn (instruction, blank line, input) and an assistant turn (output), instead of <see cref="AlpacaPrompt"/>.</summary>
        public bool AlpacaUseChatTemplate { get; init; }

        /// <summary>Jinja chat template to use instead of the tokenizer's (<c>tokenizer.Config.ChatTemplate</c>).</summary>
        public string? ChatTemplate { get; init; }

        /// <summary>More variables for the chat template (e.g. enable_thinking=false for Qwen3).</summary>
        public IReadOnlyDictionary<string, object?>? ChatTemplateVariables { get; init; }

        /// <summary>The classification label set, in index order; null: the distinct labels of the training data, sorted (numerically when all are integers, else ordinally).</summary>
        public IReadOnlyList<string>? ClassLabels { get; init; }

        /// <summary>Fraction of the training records held out for validation when no validation dataset is given (0 = none, default).</summary>
        public double ValidationFraction { get; init; }

        /// <summary>Seed of the shuffle before the split and before packing (default 42); see <see cref="DataShuffle"/>.</summary>
        public int Seed { get; init; } = 42;

        /// <summary>Concatenate examples into sequences of up to <see cref="MaxLength"/> tokens (see <see cref="SequencePacker"/>); validation data stays unpacked.</summary>
        public bool Packing { get; init; }

        /// <summary>Drop examples left without any label (e.g. a response truncated away, a chat with no assistant turn) instead of keeping them (default true); they are counted.</summary>
        public bool DropExamplesWithoutTargets { get; init; } = true;

        internal void Validate()
        {
            if (MaxLength < 2)
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument, $"MaxLength {MaxLength} is too small: use at least 2 tokens (typically 512 to 4096).", MaxLength);
            if (!(ValidationFraction >= 0 && ValidationFraction < 1))
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument, $"ValidationFraction {ValidationFraction} is out of range: use a value from 0 (no split) up to, not including, 1 (e.g. 0.1).", ValidationFraction);
            if (!Enum.IsDefined(Truncation))
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument, $"Truncation {Truncation} is not a truncation side: use Right or Left.", Truncation);
        }
    }
}
