using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Data;
using GraLoRA.Generation;
using GraLoRA.Models;
using GraLoRA.Text;

namespace GraLoRA.Training
{
    /// <summary>One held-out sample of an exact-match evaluation.</summary>
    public sealed record ExactMatchSample(string Location, string Expected, string Generated, bool Correct);

    /// <summary>Greedy generations compared with the reference answers (whitespace at the ends ignored).</summary>
    public sealed record ExactMatchResult(int Total, int Correct, double Accuracy, IReadOnlyList<ExactMatchSample> Samples);

    /// <summary>Generation-based exact match for prompt/completion, alpaca and chat data (the last assistant turn is the answer).</summary>
    public static class ExactMatch
    {
        /// <summary>
        /// Generates greedily for each record's prompt (up to the reference's token count plus 8 new tokens) and counts
        /// answers equal to the reference. <paramref name="limit"/> caps the number of records.
        /// </summary>
        public static ExactMatchResult Evaluate(BaseModel model, DatasetSource data, DatasetFormat? format = null, int? limit = null)
        {
            var tokenizer = model.Tokenizer ?? throw new GraloraException("TokenizerNotFound", GraloraErrorKind.NotFound,
                $"Exact match needs the model's tokenizer, and '{model.Path}' has no tokenizer.json.", model.Path);
            var samples = new List<ExactMatchSample>();
            foreach (var record in data.Read().Take(limit ?? int.MaxValue))
            {
                var kind = format ?? DatasetFormatDetector.Detect(record);
                string expected;
                Func<GenerationOptions, GenerationResult> generate;
                switch (kind)
                {
                    case DatasetFormat.PromptCompletion:
                        expected = RecordFields.Text(record, "completion", kind);
                        string prompt = RecordFields.Text(record, "prompt", kind);
                        generate = o => model.Generate(new[] { prompt }, o)[0];
                        break;
                    case DatasetFormat.Alpaca:
                        expected = RecordFields.Text(record, "output", kind);
                        string alpaca = AlpacaPrompt.Render(RecordFields.Text(record, "instruction", kind), RecordFields.OptionalText(record, "input"));
                        generate = o => model.Generate(new[] { alpaca }, o)[0];
                        break;
                    case DatasetFormat.Chat:
                        var messages = RecordFields.Messages(record, "messages", kind);
                        int last = messages.FindLastIndex(m => m.Role == "assistant");
                        if (last < 0)
                            throw new GraloraException("DatasetFieldMissing", GraloraErrorKind.InvalidData, $"{record.Location}: the conversation has no assistant turn to compare with.", record.Location);
                        expected = messages[last].Content ?? "";
                        var history = messages.Take(last).ToList();
                        generate = o => model.Chat(history, o);
                        break;
                    default:
                        throw new GraloraException("ExactMatchNotSupported", GraloraErrorKind.InvalidArgument,
                            $"Exact match compares generated answers, so it needs prompt/completion, alpaca or chat data; '{data.Name}' is {kind}.", kind);
                }
                int budget = tokenizer.Encode(expected, addSpecialTokens: false).Length + 8;
                var options = model.EffectiveGenerationOptions() with { DoSample = false, MaxNewTokens = budget, RepetitionPenalty = 1.0 };
                string generated = generate(options).Text;
                samples.Add(new ExactMatchSample(record.Location, expected, generated, generated.Trim() == expected.Trim()));
            }
            if (samples.Count == 0)
                throw new GraloraException("DatasetEmpty", GraloraErrorKind.InvalidData, $"'{data.Name}' has no records to evaluate.", data.Name);
            int correct = samples.Count(s => s.Correct);
            return new ExactMatchResult(samples.Count, correct, (double)correct / samples.Count, samples);
        }
    }
}
