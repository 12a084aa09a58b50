using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using GraLoRA.Text;

namespace GraLoRA.Data
{
    /// <summary>The whole data pipeline in one call: read, detect the format, split, tokenise with label masks, pack.</summary>
    public static class TrainingData
    {
        /// <summary>Prepares training (and validation) examples.</summary>
        /// <remarks>
        /// <list type="number">
        /// <item>All training records are read; the format is <see cref="DataOptions.Format"/> or detected from the first record.</item>
        /// <item>Validation: the records of <paramref name="validation"/> when given; else, with
        /// <see cref="DataOptions.ValidationFraction"/> above 0, <see cref="DatasetSplit.Split"/> of the training records
        /// with <see cref="DataOptions.Seed"/>; else none.</item>
        /// <item>Classification labels: <see cref="DataOptions.ClassLabels"/>, else the sorted labels of all training
        /// records (before any split); a validation label outside the set fails with <c>UnknownClassLabel</c>.</item>
        /// <item>Every record is encoded by an <see cref="ExampleEncoder"/>; examples with no label left are dropped
        /// (<see cref="DataOptions.DropExamplesWithoutTargets"/>) and counted.</item>
        /// <item>With <see cref="DataOptions.Packing"/>, the training examples are shuffled with
        /// <see cref="DataShuffle.Permutation"/>(count, Seed) and packed (<see cref="SequencePacker"/>).</item>
        /// </list>
        /// </remarks>
        /// <exception cref="GraloraException">Any reader, format or encoding error (naming the file and line or row); <c>InvalidDataOptions</c>.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled (checked between records and while chat templates render).</exception>
        public static PreparedDataset Prepare(HfTokenizer tokenizer, DatasetSource train, DatasetSource? validation = null, DataOptions? options = null,
            CancellationToken cancellation = default)
        {
            ArgumentNullException.ThrowIfNull(tokenizer);
            ArgumentNullException.ThrowIfNull(train);
            options ??= new DataOptions();
            options.Validate();
            if (options.Packing && options.Format == DatasetFormat.Classification)
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument, "Classification examples cannot be packed: turn Packing off.");

            List<DataRecord> records = train.Read().ToList();
            DatasetFormat format = options.Format ?? DatasetFormatDetector.Detect(records[0]);
            if (options.Packing && format == DatasetFormat.Classification)
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument,
                    $"'{train.Name}' holds classification records (text and label), which cannot be packed: turn Packing off.", train.Name);

            ClassLabelSet? labels = format == DatasetFormat.Classification
                ? options.ClassLabels != null ? new ClassLabelSet(options.ClassLabels) : ClassLabelSet.FromRecords(records)
                : null;

            List<DataRecord> trainRecords, validationRecords;
            if (validation != null)
            {
                trainRecords = records;
                validationRecords = validation.Read().ToList();
            }
            else
            {
                (trainRecords, validationRecords) = options.ValidationFraction > 0
                    ? DatasetSplit.Split(records, options.ValidationFraction, options.Seed)
                    : (records, new List<DataRecord>());
            }

            var encoder = new ExampleEncoder(tokenizer, format, options, labels, cancellation);
            var (trainExamples, trainStats) = Encode(encoder, trainRecords, options, cancellation);
            var (validationExamples, validationStats) = Encode(encoder, validationRecords, options, cancellation);
            if (trainExamples.Count == 0)
                throw new GraloraException("DatasetEmpty", GraloraErrorKind.InvalidData,
                    $"No training example of '{DataErrors.DisplayName(train.Name)}' has any token to learn ({trainStats.DroppedWithoutTargets} dropped): " +
                    "check that the records have responses (alpaca output, completion, assistant turns) and that MaxLength leaves room for them.", train.Name);

            if (options.Packing)
            {
                trainExamples = SequencePacker.Pack(DataShuffle.Shuffled(trainExamples, options.Seed), options.MaxLength);
                trainStats = trainStats with { PackedSequences = trainExamples.Count };
            }
            return new PreparedDataset(format, trainExamples, validationExamples, labels, DataCollator.PadIdOf(tokenizer), trainStats, validationStats);
        }

        static (List<TrainingExample>, DataPreparationStats) Encode(ExampleEncoder encoder, List<DataRecord> records, DataOptions options, CancellationToken cancellation)
        {
            var examples = new List<TrainingExample>(records.Count);
            int truncated = 0, dropped = 0;
            foreach (var r in records)
            {
                cancellation.ThrowIfCancellationRequested();
                var e = encoder.Encode(r, out bool cut);
                if (cut) truncated++;
                if (options.DropExamplesWithoutTargets && e.ClassLabel == null && e.TargetCount == 0)
                {
                    dropped++;
                    continue;
                }
                examples.Add(e);
            }
            return (examples, new DataPreparationStats(records.Count, examples.Count, truncated, dropped, 0));
        }
    }
}
