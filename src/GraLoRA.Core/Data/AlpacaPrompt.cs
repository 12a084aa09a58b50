using System;

namespace GraLoRA.Data
{
    /// <summary>
    /// The prompt template of Stanford Alpaca (tatsu-lab/stanford_alpaca, <c>PROMPT_DICT</c>), used for alpaca records
    /// unless the chat template is asked for. With an input:
    /// <code>
    /// Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.
    ///
    /// ### Instruction:
    /// {instruction}
    ///
    /// ### Input:
    /// {input}
    ///
    /// ### Response:
    /// </code>
    /// Without one (input absent, null or empty):
    /// <code>
    /// Below is an instruction that describes a task. Write a response that appropriately completes the request.
    ///
    /// ### Instruction:
    /// {instruction}
    ///
    /// ### Response:
    /// </code>
    /// Lines end with "\n" and the prompt ends with the newline after "### Response:"; the output follows directly.
    /// </summary>
    public static class AlpacaPrompt
    {
        /// <summary>The opening sentence when there is an input.</summary>
        public const string WithInputPreamble =
            "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.";

        /// <summary>The opening sentence when there is no input.</summary>
        public const string NoInputPreamble =
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

        /// <summary>The prompt for <paramref name="instruction"/> and an optional <paramref name="input"/>.</summary>
        public static string Render(string instruction, string? input)
        {
            ArgumentNullException.ThrowIfNull(instruction);
            return string.IsNullOrEmpty(input)
                ? $"{NoInputPreamble}\n\n### Instruction:\n{instruction}\n\n### Response:\n"
                : $"{WithInputPreamble}\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
        }

        /// <summary>
        /// The user message used when alpaca records go through the chat template: the instruction, then a blank line and
        /// the input when there is one.
        /// </summary>
        public static string UserMessage(string instruction, string? input) =>
            string.IsNullOrEmpty(input) ? instruction : instruction + "\n\n" + input;
    }
}
