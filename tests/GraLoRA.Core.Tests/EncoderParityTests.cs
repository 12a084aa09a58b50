using System.IO;
using System.Linq;
using GraLoRA.IO;
using GraLoRA.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>BERT and RoBERTa hidden states, pooled outputs and classification logits against transformers' (shared/fixtures/models).</summary>
    public class EncoderParityTests
    {
        public static TheoryData<string, string> Cases()
        {
            var data = new TheoryData<string, string>();
            foreach (var c in new[] { "plain", "padded", "token_types" }) data.Add("bert", c);
            foreach (var c in new[] { "plain", "padded" }) data.Add("roberta", c);
            return data;
        }

        static string Folder(string name) => Path.Combine(TestEnvironment.Fixtures, "models", name);

        [Theory, MemberData(nameof(Cases))]
        public void BareEncoderMatchesTransformers(string modelName, string caseName)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(modelName), "reference.safetensors"));
            using var model = CheckpointLoader.LoadEncoder(Folder(modelName), EncoderTask.Auto, null, null, null, out bool newHead);
            Assert.False(newHead);
            Assert.False(model.IsSequenceClassification);
            reference.TryGetValue(caseName + ".attention_mask", out var mask);
            reference.TryGetValue(caseName + ".token_type_ids", out var types);
            var output = model.Forward(reference[caseName + ".input_ids"], mask, types, hiddenStates: true);

            // Positions where attention_mask == 0 are implementation-defined: compare valid ones only.
            var valid = mask is null ? ones(2, 7, dtype: ScalarType.Bool) : mask.to(ScalarType.Bool);
            Tensor Valid(Tensor t) => t[valid];
            Assert.Equal(model.Config.NumLayers + 1, output.HiddenStates.Count);
            for (int i = 0; i < output.HiddenStates.Count; i++)
                TensorAssert.Close(Valid(output.HiddenStates[i]), Valid(reference[$"{caseName}.hidden_states.{i}"]), 1e-4, $"{modelName}/{caseName} hidden_states.{i}");
            TensorAssert.Close(Valid(output.LastHiddenState), Valid(reference[caseName + ".last_hidden_state"]), 1e-4, $"{modelName}/{caseName} last_hidden_state");
            // The pooler reads token 0: rows whose first token is real.
            var rows = valid.select(1, 0);
            TensorAssert.Close(output.PoolerOutput![rows], reference[caseName + ".pooler_output"][rows], 1e-4, $"{modelName}/{caseName} pooler_output");
            Assert.Null(output.Logits);
        }

        [Theory, MemberData(nameof(Cases))]
        public void SequenceClassifierMatchesTransformers(string modelName, string caseName)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(modelName), "reference.safetensors"));
            using var model = CheckpointLoader.LoadEncoder(Folder(modelName + "_seqcls"), EncoderTask.Auto, null, null, null, out bool newHead);
            Assert.False(newHead);
            Assert.True(model.IsSequenceClassification);
            Assert.Equal(3, model.ClassificationLabels);
            Assert.Equal(modelName == "bert", model.HasPooler);          // RobertaForSequenceClassification has no pooler
            reference.TryGetValue(caseName + ".attention_mask", out var mask);
            reference.TryGetValue(caseName + ".token_type_ids", out var types);
            var logits = model.ClassificationLogits(reference[caseName + ".input_ids"], mask, types);
            var rows = mask is null ? ones(2, dtype: ScalarType.Bool) : mask.to(ScalarType.Bool).select(1, 0);
            TensorAssert.Close(logits[rows], reference[caseName + ".seqcls_logits"][rows], 1e-4, $"{modelName}/{caseName} seqcls_logits");
            Assert.Contains(model.named_parameters(), p => p.name == $"{modelName}.encoder.layer.0.attention.self.query.weight");
            // Exactly transformers' keys: every parameter is a checkpoint tensor, none registered twice.
            var stored = Safetensors.ReadHeader(Path.Combine(Folder(modelName + "_seqcls"), "model.safetensors")).Entries.Keys.OrderBy(k => k, System.StringComparer.Ordinal);
            Assert.Equal(stored, model.named_parameters().Select(p => p.name).OrderBy(k => k, System.StringComparer.Ordinal));
        }

        [Fact]
        public void PaddingRowsStillMatchAtTheirFirstRealToken()
        {
            // Row 1 of "padded" is right-padded: its pooled output and logits are defined and must match.
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder("roberta"), "reference.safetensors"));
            using var model = CheckpointLoader.LoadEncoder(Folder("roberta_seqcls"), EncoderTask.Auto, null, null, null, out _);
            var logits = model.ClassificationLogits(reference["padded.input_ids"], reference["padded.attention_mask"]);
            TensorAssert.Close(logits[1], reference["padded.seqcls_logits"][1], 1e-4, "right-padded row");
        }

        [Fact]
        public void CheckpointsLoadAcrossBareAndClassifierLayouts()
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder("bert"), "reference.safetensors"));
            var ids = reference["plain.input_ids"];

            // A classifier checkpoint loaded bare: "bert." keys strip, the head is ignored.
            using (var bare = CheckpointLoader.LoadEncoder(Folder("bert_seqcls"), EncoderTask.Base, null, null, null, out bool noHead))
            {
                Assert.False(noHead);
                Assert.Equal(0, bare.ClassificationLabels);
                TensorAssert.Close(bare.Forward(ids).LastHiddenState, reference["plain.last_hidden_state"], 1e-4, "bert_seqcls as base");
            }
            // A bare checkpoint loaded as a classifier: keys gain "bert.", the head is new (2 named labels).
            using (var classifier = CheckpointLoader.LoadEncoder(Folder("bert"), EncoderTask.SequenceClassification, new[] { "ham", "spam" }, null, null, out bool fresh))
            {
                Assert.True(fresh);
                Assert.Equal(2, classifier.ClassificationLabels);
                Assert.Equal(new[] { "ham", "spam" }, classifier.Config.Labels);
                var output = classifier.Forward(ids);
                TensorAssert.Close(output.PoolerOutput!, reference["plain.pooler_output"], 1e-4, "bert as classifier");
                var bias = classifier.named_parameters().Single(p => p.name == "classifier.bias").parameter;
                Assert.Equal(0.0, bias.abs().sum().item<float>());
            }
            // A head of another size than asked is an error naming the tensor.
            var ex = Assert.Throws<GraloraException>(() => CheckpointLoader.LoadEncoder(Folder("roberta_seqcls"), EncoderTask.Auto, new[] { "a", "b" }, null, null, out _));
            Assert.Equal("ClassificationHeadMismatch", ex.ErrorId);
            Assert.Contains("classifier.out_proj", ex.Message);
        }

        [Fact]
        public void BaseModelLoadsEncodersAndRunsThem()
        {
            var reference = Safetensors.Read(Path.Combine(Folder("bert"), "reference.safetensors"));
            using var model = BaseModel.Load(Folder("bert_seqcls"));
            Assert.True(model.IsEncoder);
            Assert.Equal("bert", model.Architecture);
            Assert.Equal(new[] { "LABEL_0", "LABEL_1", "LABEL_2" }, model.ClassLabels);
            int[][] Rows(Tensor t) => Enumerable.Range(0, (int)t.shape[0]).Select(r => t[r].data<long>().Select(v => (int)v).ToArray()).ToArray();
            using var output = model.ForwardEncoder(Rows(reference["token_types.input_ids"]), tokenTypeIds: Rows(reference["token_types.token_type_ids"]), hiddenStates: true);
            TensorAssert.Close(output.LogitsTensor!, reference["token_types.seqcls_logits"], 1e-4, "logits");
            TensorAssert.Close(output.PoolerOutputTensor!, reference["token_types.pooler_output"], 1e-4, "pooler");
            Assert.Equal(3, output.HiddenStateCount);
            Assert.Equal("NotADecoder", Assert.Throws<GraloraException>(() => model.Module).ErrorId);
            var typeError = Assert.Throws<GraloraException>(() => model.ForwardEncoder(new[] { new[] { 5, 6 } }, tokenTypeIds: new[] { new[] { 0, 2 } }));
            Assert.Equal("TokenTypeOutOfRange", typeError.ErrorId);
        }
    }
}
