using System;
using System.Collections.Generic;

namespace GraLoRA.Data
{
    /// <summary>
    /// Reads a <see cref="DatasetFormat.Tokenized"/> record (<c>input_ids</c>, optional <c>labels</c> and
    /// <c>attention_mask</c>, as Hugging Face datasets and TRL store them) into ids and labels, checking every value: each
    /// error names the record's file and line or row, the field and the position in it.
    /// </summary>
    /// <remarks>
    /// <list type="bullet">
    /// <item><c>input_ids</c>: a non-empty list of integers from 0 to the tokenizer's vocabulary size − 1.</item>
    /// <item><c>labels</c> (optional): a list as long as <c>input_ids</c> of −100 (no loss) or token ids; without it every
    /// token is learned (the labels are the ids, as transformers' DataCollatorForLanguageModeling makes them). Labels that
    /// are all −100 leave nothing to learn and are an error. A single number (a classification label) is refused:
    /// classification data is text and label.</item>
    /// <item><c>attention_mask</c> (optional): a list as long as <c>input_ids</c> of 0 and 1 whose 1s form one run;
    /// the 0s before and after it (left or right padding) are dropped with their ids and labels, since batches are padded
    /// again. A 0 between 1s cannot be represented and is an error, as is a mask of only 0s.</item>
    /// <item><c>position_ids</c> and <c>token_type_ids</c> would change what transformers computes, and are refused rather
    /// than ignored. Other fields (ids, metadata) are ignored, as for every format.</item>
    /// </list>
    /// Numbers must be integers: JSON integers, Parquet integer columns, or floating-point values with no fractional part.
    /// </remarks>
    public static class TokenizedRecords
    {
        /// <summary>The label of a token without loss (PyTorch's ignore_index).</summary>
        const int Ignore = TrainingExample.IgnoreIndex;

        static readonly string[] Refused = { "position_ids", "token_type_ids" };

        /// <summary>Ids and labels of <paramref name="record"/> (see the remarks); with <paramref name="trainOnPrompt"/> every kept token is learned.</summary>
        /// <exception cref="GraloraException"><c>DatasetFieldMissing</c> without input_ids; <c>InvalidDatasetRecord</c> for any value that breaks the rules above.</exception>
        public static (int[] Ids, int[] Labels) Read(DataRecord record, int vocabSize, bool trainOnPrompt)
        {
            ArgumentNullException.ThrowIfNull(record);
            foreach (string name in Refused)
                if (record.Has(name))
                    throw DataErrors.Record(record, $"field '{name}' is not supported in tokenized records (positions and token types follow from input_ids here): remove it.");
            int[] ids = Integers(record, "input_ids") ?? throw DataErrors.Record(record,
                $"field 'input_ids' is missing ({RecordFields.Needs(DatasetFormat.Tokenized)}); the record has {DatasetFormatDetector.Describe(record.Fields.Keys)}.", "DatasetFieldMissing");
            if (ids.Length == 0) throw DataErrors.Record(record, "input_ids is empty: a tokenized record needs at least one token id.");
            for (int i = 0; i < ids.Length; i++)
                if (ids[i] < 0 || ids[i] >= vocabSize)
                    throw DataErrors.Record(record, $"input_ids[{i}] = {ids[i]} is not a token id of the model's tokenizer (0 to {vocabSize - 1}): was the dataset tokenized with another tokenizer?");

            int[]? labels = Integers(record, "labels");
            if (labels is not null)
            {
                SameLength(record, "labels", labels, ids);
                for (int i = 0; i < labels.Length; i++)
                    if (labels[i] != Ignore && (labels[i] < 0 || labels[i] >= vocabSize))
                        throw DataErrors.Record(record, $"labels[{i}] = {labels[i]} is neither -100 (no loss) nor a token id of the model's tokenizer (0 to {vocabSize - 1}).");
            }

            int[]? mask = Integers(record, "attention_mask");
            if (mask is not null)
            {
                SameLength(record, "attention_mask", mask, ids);
                int first = -1, last = -1;
                for (int i = 0; i < mask.Length; i++)
                {
                    if (mask[i] is not (0 or 1))
                        throw DataErrors.Record(record, $"attention_mask[{i}] = {mask[i]}: an attention mask holds 0 (padding) and 1 (token) only.");
                    if (mask[i] == 1) { if (first < 0) first = i; last = i; }
                }
                if (first < 0) throw DataErrors.Record(record, "attention_mask is all 0: the record has no token to attend to.");
                int hole = Array.IndexOf(mask, 0, first, last - first + 1);
                if (hole >= 0)
                    throw DataErrors.Record(record, $"attention_mask[{hole}] = 0 lies between 1s (positions {first} to {last}): only padding at the start or the end can be dropped; split such a record into separate ones.");
                ids = ids[first..(last + 1)];
                labels = labels?[first..(last + 1)];
            }

            if (trainOnPrompt || labels is null) return (ids, (int[])ids.Clone());
            if (Array.TrueForAll(labels, l => l == Ignore))
                throw DataErrors.Record(record, $"labels are all -100{(mask is null ? "" : " where the attention mask is 1")}: the record has no token to learn; give the tokens to learn their ids as labels, or drop the record.");
            return (ids, labels);
        }

        static void SameLength(DataRecord record, string name, int[] values, int[] ids)
        {
            if (values.Length != ids.Length)
                throw DataErrors.Record(record, $"{name} has {values.Length} values and input_ids {ids.Length}: they must be as long as each other.");
        }

        /// <summary>A list of integers, or null when the field is absent or null.</summary>
        static int[]? Integers(DataRecord record, string name)
        {
            object? value = record[name];
            if (value is null) return null;
            if (value is not IReadOnlyList<object?> list)
                throw DataErrors.Record(record, name == "labels" && value is long or double
                    ? $"labels is a single number ({DataRecord.FormatValue(value)}): tokenized records are for language modelling, with one label per token; for classification use text and label records."
                    : $"field '{name}' must be a list of integers, not {RecordFields.Kind(value)}.");
            var result = new int[list.Count];
            for (int i = 0; i < list.Count; i++)
            {
                object? item = list[i] is int or short or sbyte or byte or ushort or uint ? System.Convert.ToInt64(list[i], System.Globalization.CultureInfo.InvariantCulture) : list[i];
                result[i] = item switch
                {
                    long l when l is >= int.MinValue and <= int.MaxValue => (int)l,
                    double d when Math.Floor(d) == d && d is >= int.MinValue and <= int.MaxValue => (int)d,
                    _ => throw DataErrors.Record(record, $"{name}[{i}] = {(item is string s ? "\"" + s + "\"" : DataRecord.FormatValue(item))} is not an integer{(item is long or double ? " in range" : "")}."),
                };
            }
            return result;
        }
    }
}
