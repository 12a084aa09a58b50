using GraLoRA.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>The one slot mechanism (<see cref="LinearSlotModule"/>): which linears can be swapped, and how a swap happens.</summary>
    public sealed class LinearSlotTests
    {
        static string Folder(string name) => Path.Combine(TestEnvironment.Fixtures, "models", name);

        // The reference: the Linear weights transformers saved (2-D ".weight" tensors that are not embeddings), plus a tied
        // lm_head, which transformers leaves out of the file.
        [Theory]
        [InlineData("llama")]
        [InlineData("qwen2")]
        [InlineData("bert")]
        [InlineData("bert_seqcls")]
        [InlineData("roberta_seqcls")]
        [InlineData("decoders/gemma2")]
        [InlineData("decoders/phi3_longrope")]                   // fused qkv_proj and gate_up_proj
        public void TheSlotsAreExactlyTheCheckpointsLinearLayers(string name)
        {
            string folder = name.StartsWith("decoders/", StringComparison.Ordinal) ? DecoderFamilyParityTests.Folder(name["decoders/".Length..]) : Folder(name);
            using var model = BaseModel.Load(folder);
            var header = Safetensors.ReadHeader(Path.Combine(folder, "model.safetensors"));
            var expected = header.Entries.Where(e => e.Key.EndsWith(".weight", StringComparison.Ordinal) && e.Value.Shape.Length == 2 && !e.Key.Contains("embed"))
                .Select(e => e.Key[..^".weight".Length]).ToHashSet();
            if (model.Transformer is DecoderForCausalLM && model.Config.TieWordEmbeddings) expected.Add("lm_head");
            var slots = model.Adapters.SlotsOf().Select(s => s.Name).ToList();
            Assert.Equal(expected.OrderBy(s => s, StringComparer.Ordinal), slots.OrderBy(s => s, StringComparer.Ordinal));
            Assert.Equal(slots.Count, slots.Distinct().Count());
            Assert.All(model.Adapters.SlotsOf(), s => Assert.IsType<Linear>(s.Owner.GetSlot(s.Slot)));
        }

        [Fact]
        public void SlotsFollowTheDeclarationOrderAndASwapKeepsIt()
        {
            using var model = BaseModel.Load(Folder("llama"));
            var attention = model.Module.model.layers[0].self_attn;
            Assert.Equal(new[] { "q_proj", "k_proj", "v_proj", "o_proj" }, attention.LinearSlotNames);
            Assert.Equal(new[] { "gate_proj", "up_proj", "down_proj" }, model.Module.model.layers[0].mlp.LinearSlotNames);

            var original = (Linear)attention.GetSlot("k_proj");
            using var replacement = nn.Linear(original.weight!.shape[1], original.weight!.shape[0]);
            attention.SetSlot("k_proj", replacement);
            Assert.Same(replacement, attention.GetSlot("k_proj"));
            Assert.Same(replacement, attention.k_proj);                                                  // the field forward uses
            Assert.Same(replacement, attention.named_children().Single(c => c.name == "k_proj").module); // the registration
            Assert.Equal(new[] { "q_proj", "k_proj", "v_proj", "o_proj" }, attention.LinearSlotNames);
            Assert.Contains("model.layers.0.self_attn.k_proj.weight", model.Module.named_parameters().Select(p => p.name));
            attention.SetSlot("k_proj", original);
            Assert.Same(original, attention.k_proj);
        }

        [Fact]
        public void AnUnknownOrEmptySlotIsRefusedByName()
        {
            using var model = BaseModel.Load(Folder("llama"));
            var ex = Assert.Throws<GraloraException>(() => model.Module.GetSlot("score"));     // no classification head yet
            Assert.Equal("UnknownModuleSlot", ex.ErrorId);
            Assert.Contains("slots are lm_head", ex.Message);
            ex = Assert.Throws<GraloraException>(() => model.Module.model.layers[0].mlp.SetSlot("q_proj", nn.Linear(4, 4)));
            Assert.Equal("UnknownModuleSlot", ex.ErrorId);
            Assert.Contains("gate_proj, up_proj, down_proj", ex.Message);

            model.Module.AttachClassificationHead(3);
            Assert.Equal(new[] { "lm_head", "score" }, model.Module.LinearSlotNames);
            Assert.Equal(3, model.Module.ClassificationLabels);
        }

        [Fact]
        public void ARobertaHeadIsABlockWithSlotsNotASlot()
        {
            using var model = BaseModel.Load(Folder("roberta_seqcls"));
            var encoder = (EncoderModel)model.Network;
            Assert.Empty(encoder.LinearSlotNames);                                    // "classifier" holds a block
            Assert.Throws<GraloraException>(() => encoder.GetSlot(EncoderModel.ClassificationHeadName));
            using var bert = BaseModel.Load(Folder("bert_seqcls"));
            Assert.Equal(new[] { EncoderModel.ClassificationHeadName }, ((EncoderModel)bert.Network).LinearSlotNames);
        }

        sealed class Custom : LinearSlotModule
        {
            [LinearSlot("renamed")] internal nn.Module<Tensor, Tensor> field;
            [LinearSlot] internal nn.Module<Tensor, Tensor>? absent = null;
            internal nn.Module<Tensor, Tensor> notASlot;

            public Custom() : base(nameof(Custom))
            {
                field = nn.Linear(4, 4);
                notASlot = nn.Linear(4, 4);
                register_module("renamed", field);
                register_module("notASlot", notASlot);
            }

            public override Tensor forward(Tensor x) => field.forward(x);
        }

        [Fact]
        public void TheAttributeNamesTheSlotAndUnmarkedOrNullFieldsAreNoSlots()
        {
            using var custom = new Custom();
            Assert.Equal(new[] { "renamed" }, custom.LinearSlotNames);
            using var swapped = nn.Linear(4, 4);
            custom.SetSlot("renamed", swapped);
            Assert.Same(swapped, custom.field);
            Assert.Equal(new[] { "renamed", "notASlot" }.OrderBy(s => s), custom.named_children().Select(c => c.name).OrderBy(s => s));
        }
    }
}
