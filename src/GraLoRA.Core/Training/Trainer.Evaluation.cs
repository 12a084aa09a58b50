using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Data;
using GraLoRA.Models;
using static TorchSharp.torch;

namespace GraLoRA.Training
{
    // Evaluation: the loss (and classification metrics) of a model on held-out data, through the training loss site.
    public sealed partial class Trainer
    {
        /// <summary>Mean next-token loss and perplexity of <paramref name="model"/> (with its active adapters) on <paramref name="data"/> (epoch 0 order).</summary>
        public static EvaluationResult Evaluate(BaseModel model, IBatchSource data)
        {
            var module = model.Network;
            var network = model.Transformer;
            bool wasTraining = module.training;
            module.eval();
            try
            {
                double sum = 0;
                long tokens = 0;
                var actual = new List<int>();
                var predictions = new List<int>();
                bool classification = false;
                int classes = 0;
                using var _ = no_grad();
                foreach (var batch in data.Epoch(0))
                {
                    using var scope = NewDisposeScope();
                    sum += LossSum(network, batch, network.Device, out var classLogits).item<float>();
                    tokens += PredictedTokens(batch);
                    if (classLogits is not null)
                    {
                        classification = true;
                        classes = (int)classLogits.shape[1];
                        predictions.AddRange(classLogits.argmax(-1).cpu().data<long>().ToArray().Select(v => (int)v));
                        actual.AddRange(batch.ClassLabels!.Select(v => (int)v));
                    }
                }
                if (tokens == 0) throw NoTargets();
                double loss = sum / tokens;
                if (!classification) return new EvaluationResult(loss, Math.Exp(loss), tokens);
                var names = model.ClassLabels is { } known && known.Count == classes ? known : Enumerable.Range(0, classes).Select(i => "LABEL_" + i).ToArray();
                var metrics = ClassificationMetrics.Compute(actual, predictions, names);
                return new EvaluationResult(loss, Math.Exp(loss), tokens, metrics.Accuracy, metrics);
            }
            finally
            {
                if (wasTraining) module.train();
            }
        }
    }
}
