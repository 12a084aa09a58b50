using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>The predicted label of one input, with the probability of every label (softmax of the class logits).</summary>
    /// <param name="Text">The input text.</param>
    /// <param name="TextPair">The second text of a sentence pair, or null.</param>
    /// <param name="Label">The most probable label.</param>
    /// <param name="LabelId">Its class id.</param>
    /// <param name="Score">Its probability.</param>
    /// <param name="Probabilities">Every label's probability, in class-id order.</param>
    public sealed record ClassificationPrediction(string Text, string? TextPair, string Label, int LabelId, double Score, IReadOnlyDictionary<string, double> Probabilities);

    public sealed partial class BaseModel
    {
        static readonly Regex Placeholder = new(@"^LABEL_\d+$", RegexOptions.CultureInvariant);

        /// <summary>
        /// <see cref="ClassLabels"/> when they are real names (not transformers' LABEL_0, LABEL_1 … placeholders): the
        /// label set data must use; null when the model has no head or only placeholders (the data's labels then name it).
        /// </summary>
        public IReadOnlyList<string>? NamedClassLabels => ClassLabels is { } labels && !labels.All(l => Placeholder.IsMatch(l)) ? labels : null;

        /// <summary>
        /// Classifies <paramref name="texts"/> (with <paramref name="textPairs"/> as second texts of sentence pairs) with
        /// the model's classification head and active adapters, <paramref name="batchSize"/> at a time, each input cut to
        /// <paramref name="maxLength"/> tokens. Returns one prediction per input, in order.
        /// </summary>
        /// <exception cref="GraloraException"><c>NoClassificationHead</c>, <c>TokenizerNotFound</c>, <c>InvalidArgument</c> for mismatched pair counts.</exception>
        public IReadOnlyList<ClassificationPrediction> Classify(IReadOnlyList<string> texts, IReadOnlyList<string?>? textPairs = null, int batchSize = 16, int maxLength = 512)
        {
            ArgumentNullException.ThrowIfNull(texts);
            var network = Transformer;
            if (network.ClassificationLabels == 0)
                throw new GraloraException("NoClassificationHead", GraloraErrorKind.InvalidOperation,
                    $"Model '{Name}' has no classification head: load it with -Task SequenceClassification, load a classification adapter, or train on text + label data first.", Name);
            if (textPairs is not null && textPairs.Count != texts.Count)
                throw new GraloraException("TextPairCountMismatch", GraloraErrorKind.InvalidArgument,
                    $"{texts.Count} text(s) but {textPairs.Count} text pair(s): give one pair text per text (or none).", textPairs.Count);
            if (batchSize < 1 || maxLength < 2)
                throw new GraloraException("InvalidArgument", GraloraErrorKind.InvalidArgument, $"BatchSize {batchSize} must be at least 1 and MaxLength {maxLength} at least 2.", batchSize);
            var tokenizer = RequireTokenizer();
            int labels = network.ClassificationLabels;
            var names = ClassLabels is { } known && known.Count == labels ? known : Enumerable.Range(0, labels).Select(i => "LABEL_" + i).ToArray();
            int pad = tokenizer.PadTokenId ?? (tokenizer.EosTokenIds.Count > 0 ? tokenizer.EosTokenIds[0] : 0);
            var results = new List<ClassificationPrediction>(texts.Count);
            var module = Network;
            bool wasTraining = module.training;
            module.eval();
            try
            {
                for (int start = 0; start < texts.Count; start += batchSize)
                {
                    using var scope = NewDisposeScope();
                    using var _ = no_grad();
                    int count = Math.Min(batchSize, texts.Count - start);
                    var encoded = Enumerable.Range(start, count).Select(i =>
                    {
                        var (ids, types) = textPairs?[i] is { } pair ? tokenizer.EncodePair(texts[i], pair) : (tokenizer.Encode(texts[i]), null);
                        return (Ids: ids.Take(maxLength).ToArray(), Types: types?.Take(maxLength).ToArray());
                    }).ToArray();
                    int length = Math.Max(1, encoded.Max(e => e.Ids.Length));
                    var ids = new long[count * length];
                    var mask = new long[count * length];
                    var typeIds = new long[count * length];
                    Array.Fill(ids, pad);
                    for (int r = 0; r < count; r++)
                        for (int t = 0; t < encoded[r].Ids.Length; t++)
                        {
                            ids[r * length + t] = encoded[r].Ids[t];
                            mask[r * length + t] = 1;
                            typeIds[r * length + t] = encoded[r].Types?[t] ?? 0;
                        }
                    var shape = new long[] { count, length };
                    bool anyTypes = network.UsesTokenTypes && encoded.Any(e => e.Types is not null);
                    var logits = network.ClassificationLogits(tensor(ids, shape, device: network.Device), tensor(mask, shape, device: network.Device),
                        anyTypes ? tensor(typeIds, shape, device: network.Device) : null);
                    var probabilities = nn.functional.softmax(logits.to(ScalarType.Float32), -1).cpu().data<float>().ToArray();
                    for (int r = 0; r < count; r++)
                    {
                        var row = probabilities.AsSpan(r * labels, labels).ToArray();
                        int best = Array.IndexOf(row, row.Max());
                        var byName = new Dictionary<string, double>(StringComparer.Ordinal);
                        for (int c = 0; c < labels; c++) byName[names[c]] = row[c];
                        results.Add(new ClassificationPrediction(texts[start + r], textPairs?[start + r], names[best], best, row[best], byName));
                    }
                }
            }
            finally
            {
                if (wasTraining) module.train();
            }
            return results;
        }
    }
}
