using System;
using System.Collections.Generic;
using System.Linq;

namespace GraLoRA.Data
{
    /// <summary>What a dataset's records hold, and so how they become training examples.</summary>
    public enum DatasetFormat
    {
        /// <summary><c>text</c>: plain text; the model learns every token (continued pre-training).</summary>
        Text,
        /// <summary>
        /// <c>instruction</c>, optional <c>input</c>, <c>output</c> (Stanford Alpaca): the prompt is rendered with
        /// <see cref="AlpacaPrompt"/> (or the chat template when asked) and the model learns the output.
        /// </summary>
        Alpaca,
        /// <summary><c>prompt</c>, <c>completion</c>: the model learns the completion. Both may also be lists of chat messages.</summary>
        PromptCompletion,
        /// <summary><c>messages</c>: a list of {role, content}, rendered with the model's chat template; the model learns every assistant turn.</summary>
        Chat,
        /// <summary><c>text</c> and <c>label</c>: sequence classification; the example carries the label's index.</summary>
        Classification,
        /// <summary>
        /// <c>input_ids</c>, optional <c>labels</c> and <c>attention_mask</c>: records already tokenised for language
        /// modelling (a Hugging Face dataset after <c>map(tokenizer)</c>, TRL's pre-tokenized datasets). The ids are used as
        /// they are (nothing is added); labels default to the ids (every token learned, as transformers' language-modelling
        /// collator does) and −100 marks tokens without loss; positions the attention mask sets to 0 (padding, at either
        /// end) are dropped. See <see cref="TokenizedRecords"/> for what is checked.
        /// </summary>
        Tokenized,
    }

    /// <summary>Tells a record's <see cref="DatasetFormat"/> from its field names.</summary>
    public static class DatasetFormatDetector
    {
        /// <summary>
        /// The format the fields imply, checked in this order: <c>input_ids</c> → Tokenized (as TRL treats a dataset with
        /// input_ids as already processed); <c>messages</c> → Chat; <c>instruction</c> → Alpaca;
        /// <c>prompt</c> → PromptCompletion; <c>text</c> with <c>label</c> → Classification; <c>text</c> → Text.
        /// Other fields are ignored.
        /// </summary>
        /// <exception cref="GraloraException"><c>UnknownDatasetFormat</c> (InvalidData) when none of these fields is there; the message names the record and its fields.</exception>
        public static DatasetFormat Detect(DataRecord record)
        {
            ArgumentNullException.ThrowIfNull(record);
            return TryDetect(record.Fields.Keys) ?? throw new GraloraException("UnknownDatasetFormat", GraloraErrorKind.InvalidData,
                $"{record.Location}: cannot tell the dataset format from the fields {Describe(record.Fields.Keys)}. Use 'messages' (chat), " +
                "'instruction'/'input'/'output' (alpaca), 'prompt'/'completion', 'text' (plain text), 'text'/'label' (classification) or " +
                "'input_ids' (already tokenized; optional 'labels', 'attention_mask'), or name the format.",
                record.Source);
        }

        /// <summary>The format <paramref name="fieldNames"/> imply (see <see cref="Detect"/>), or null.</summary>
        public static DatasetFormat? TryDetect(IEnumerable<string> fieldNames)
        {
            ArgumentNullException.ThrowIfNull(fieldNames);
            var names = new HashSet<string>(fieldNames, StringComparer.Ordinal);
            if (names.Contains("input_ids")) return DatasetFormat.Tokenized;
            if (names.Contains("messages")) return DatasetFormat.Chat;
            if (names.Contains("instruction")) return DatasetFormat.Alpaca;
            if (names.Contains("prompt")) return DatasetFormat.PromptCompletion;
            if (names.Contains("text")) return names.Contains("label") ? DatasetFormat.Classification : DatasetFormat.Text;
            return null;
        }

        internal static string Describe(IEnumerable<string> names)
        {
            var list = names.Select(n => "'" + n + "'").ToList();
            return list.Count == 0 ? "(none)" : string.Join(", ", list);
        }
    }
}
