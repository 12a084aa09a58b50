using System;
using System.IO;
using System.Linq;
using System.Text;
using GraLoRA.Adapters;
using GraLoRA.IO;
using GraLoRA.Models;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    public sealed class ZzParityNumbers
    {
        [Fact]
        public void Write()
        {
            var sb = new StringBuilder();
            foreach (var name in new[] { "dora_llama_r8", "mora_llama_r8_t6", "rasa_llama_r16_k2" })
            {
                using var scope = NewDisposeScope();
                string folder = Path.Combine(TestEnvironment.Fixtures, "baselines", name);
                var reference = Safetensors.Read(Path.Combine(folder, "reference.safetensors"));
                using var model = BaseModel.Load(Path.Combine(TestEnvironment.Fixtures, "models", "llama"));
                model.LoadAdapter(folder);
                double worstLogits = 0, worstDelta = 0, worstMerged = 0, worstMergedLogits = 0, worstNorm = 0;
                foreach (var c in new[] { "plain", "padded", "padded_posids" })
                {
                    reference.TryGetValue(c + ".attention_mask", out var mask);
                    reference.TryGetValue(c + ".position_ids", out var pos);
                    Tensor logits;
                    using (no_grad()) logits = model.Module.Forward(reference[c + ".input_ids"], mask, pos).Logits;
                    var valid = mask is null ? ones(logits.shape[0], logits.shape[1], dtype: ScalarType.Bool) : mask.to(ScalarType.Bool);
                    worstLogits = Math.Max(worstLogits, TensorAssert.RelativeError(logits[valid], reference[c + ".logits"][valid]));
                }
                var layers = model.Adapters.Layers().ToDictionary(l => l.Name, l => l.Layer);
                foreach (var key in reference.Keys.Where(k => k.StartsWith("delta.")))
                {
                    string module = key["delta.".Length..^".weight".Length];
                    var d = layers[module] is DoraLinear dora ? dora.DirectionUpdate("default") : layers[module].GetDeltaWeight("default");
                    worstDelta = Math.Max(worstDelta, (d - reference[key]).abs().max().item<float>());
                    if (layers[module] is DoraLinear dl) worstNorm = Math.Max(worstNorm, (dl.WeightNorm("default") - reference["weight_norm." + module + ".weight"]).abs().max().item<float>());
                }
                model.Adapters.Merge();
                foreach (var key in reference.Keys.Where(k => k.StartsWith("merged.")))
                {
                    string module = key["merged.".Length..^".weight".Length];
                    worstMerged = Math.Max(worstMerged, (layers[module].BaseLayer.weight! - reference[key]).abs().max().item<float>());
                }
                string mergedKey = reference.ContainsKey("plain.logits_merged") ? "logits_merged" : "logits";
                foreach (var c in new[] { "plain", "padded", "padded_posids" })
                {
                    reference.TryGetValue(c + ".attention_mask", out var mask);
                    reference.TryGetValue(c + ".position_ids", out var pos);
                    Tensor logits;
                    using (no_grad()) logits = model.Module.Forward(reference[c + ".input_ids"], mask, pos).Logits;
                    var valid = mask is null ? ones(logits.shape[0], logits.shape[1], dtype: ScalarType.Bool) : mask.to(ScalarType.Bool);
                    worstMergedLogits = Math.Max(worstMergedLogits, TensorAssert.RelativeError(logits[valid], reference[c + "." + mergedKey][valid]));
                }
                sb.AppendLine($"{name}: logits rel {worstLogits:E2}; delta max abs {worstDelta:E2}; weight_norm max abs {worstNorm:E2}; merged max abs {worstMerged:E2}; merged logits ({mergedKey}) rel {worstMergedLogits:E2}");
            }
            File.WriteAllText("/tmp/wt23-parity.txt", sb.ToString());
        }
    }
}
