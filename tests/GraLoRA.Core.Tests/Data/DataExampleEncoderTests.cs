using System.Collections.Generic;
using System.Linq;
using System.Text;
using GraLoRA.Data;
using Xunit;
using static GraLoRA.Tests.ByteTokenizerFixture;
using static GraLoRA.Tests.DataTestUtil;

namespace GraLoRA.Tests
{
    /// <summary>Label masks checked by hand: with the byte-level tokenizer every UTF-8 byte is one token, every special token one id.</summary>
    public class DataExampleEncoderTests : IClassFixture<ByteTokenizerFixture>
    {
        readonly ByteTokenizerFixture _fx;
        public DataExampleEncoderTests(ByteTokenizerFixture fx) => _fx = fx;

        /// <summary>Expected ids and labels from parts (special id or text) each marked learned or not.</summary>
        static (int[] Ids, int[] Labels) Expect(params (object Part, bool Learned)[] parts)
        {
            var ids = new List<int>();
            var labels = new List<int>();
            foreach (var (part, learned) in parts)
            {
                var p = Ids(part);
                ids.AddRange(p);
                labels.AddRange(learned ? p : Ignored(p.Count));
            }
            return (ids.ToArray(), labels.ToArray());
        }

        ExampleEncoder Encoder(DatasetFormat format, DataOptions? options = null, ClassLabelSet? labels = null) =>
            new(_fx.Tokenizer, format, options, labels);

        static void AssertExample((int[] Ids, int[] Labels) expected, TrainingExample actual)
        {
            Assert.Equal(expected.Ids, actual.InputIds);
            Assert.Equal(expected.Labels, actual.Labels);
        }

        [Fact]
        public void AlpacaWithoutInputLearnsOnlyOutputAndEos()
        {
            const string prompt = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
                                  "### Instruction:\nAdd 2 and 3.\n\n### Response:\n";
            var e = Encoder(DatasetFormat.Alpaca).Encode(Record(("instruction", "Add 2 and 3."), ("input", ""), ("output", "2 + 3 = 5.")));
            AssertExample(Expect((Bos, false), (prompt, false), ("2 + 3 = 5.", true), (Eos, true)), e);
            Assert.Equal(1 + prompt.Length + 10 + 1, e.Length);
            Assert.Equal(11, e.TargetCount);
            Assert.Null(e.ClassLabel);
        }

        [Fact]
        public void AlpacaWithInputUsesTheInputTemplate()
        {
            const string prompt = "Below is an instruction that describes a task, paired with an input that provides further context. " +
                                  "Write a response that appropriately completes the request.\n\n" +
                                  "### Instruction:\nTranslate to French.\n\n### Input:\ncat\n\n### Response:\n";
            var e = Encoder(DatasetFormat.Alpaca).Encode(Record(("instruction", "Translate to French."), ("input", "cat"), ("output", "chat")));
            AssertExample(Expect((Bos, false), (prompt, false), ("chat", true), (Eos, true)), e);
        }

        [Fact]
        public void AlpacaTrainOnPromptLearnsEverything()
        {
            var e = Encoder(DatasetFormat.Alpaca, new DataOptions { TrainOnPrompt = true }).Encode(Record(("instruction", "Say hi."), ("output", "hi")));
            Assert.Equal(e.InputIds, e.Labels);
        }

        [Fact]
        public void AlpacaThroughChatTemplate()
        {
            var e = Encoder(DatasetFormat.Alpaca, new DataOptions { AlpacaUseChatTemplate = true })
                .Encode(Record(("instruction", "Add:"), ("input", "1 2"), ("output", "3")));
            AssertExample(Expect(
                (Bos, false), (ImStart, false), ("user\nAdd:\n\n1 2", false), (ImEnd, false), ("\n", false),
                (ImStart, false), ("assistant\n", false), ("3", true), (ImEnd, true), ("\n", false)), e);
        }

        [Fact]
        public void MultiTurnChatLearnsEveryAssistantTurnWithItsEndOfTurnToken()
        {
            var record = Record(("messages", new List<object?>
            {
                Message("system", "Be brief."),
                Message("user", "What is 2 + 2?"),
                Message("assistant", "2 + 2 = 4."),
                Message("user", "And 3 + 3?"),
                Message("assistant", "3 + 3 = 6."),
            }));
            var e = Encoder(DatasetFormat.Chat).Encode(record);
            AssertExample(Expect(
                (Bos, false),
                (ImStart, false), ("system\nBe brief.", false), (ImEnd, false), ("\n", false),
                (ImStart, false), ("user\nWhat is 2 + 2?", false), (ImEnd, false), ("\n", false),
                (ImStart, false), ("assistant\n", false), ("2 + 2 = 4.", true), (ImEnd, true), ("\n", false),
                (ImStart, false), ("user\nAnd 3 + 3?", false), (ImEnd, false), ("\n", false),
                (ImStart, false), ("assistant\n", false), ("3 + 3 = 6.", true), (ImEnd, true), ("\n", false)), e);
            // Both turns, each content plus <|im_end|>.
            Assert.Equal(("2 + 2 = 4.".Length + 1) + ("3 + 3 = 6.".Length + 1), e.TargetCount);
            // The learned tokens decode to the two responses.
            var learned = e.Labels.Where(l => l >= 0).ToArray();
            Assert.Equal("2 + 2 = 4.<|im_end|>3 + 3 = 6.<|im_end|>", _fx.Tokenizer.Decode(learned, skipSpecialTokens: false));
        }

        [Fact]
        public void ChatWithMultiByteTextCountsBytes()
        {
            var record = Record(("messages", new List<object?> { Message("user", "Café?"), Message("assistant", "Oui — ☕") }));
            var e = Encoder(DatasetFormat.Chat).Encode(record);
            AssertExample(Expect(
                (Bos, false), (ImStart, false), ("user\nCafé?", false), (ImEnd, false), ("\n", false),
                (ImStart, false), ("assistant\n", false), ("Oui — ☕", true), (ImEnd, true), ("\n", false)), e);
            Assert.Equal(Encoding.UTF8.GetByteCount("Oui — ☕") + 1, e.TargetCount);
        }

        [Fact]
        public void ChatTrainOnPromptLearnsEverything()
        {
            var record = Record(("messages", new List<object?> { Message("user", "a"), Message("assistant", "b") }));
            var e = Encoder(DatasetFormat.Chat, new DataOptions { TrainOnPrompt = true }).Encode(record);
            Assert.Equal(e.InputIds, e.Labels);
            Assert.Equal(Expect((Bos, true), (ImStart, true), ("user\na", true), (ImEnd, true), ("\n", true), (ImStart, true), ("assistant\nb", true), (ImEnd, true), ("\n", true)).Ids, e.InputIds);
        }

        [Fact]
        public void ChatWithoutAssistantTurnHasNoTargets()
        {
            var e = Encoder(DatasetFormat.Chat).Encode(Record(("messages", new List<object?> { Message("user", "a") })));
            Assert.Equal(0, e.TargetCount);
            Assert.True(e.Length > 0);
        }

        [Fact]
        public void TemplateThatRewritesEarlierTurnsFailsInsteadOfMisMasking()
        {
            // Starts with the number of messages, so a prefix never renders like the start of the whole conversation.
            const string template = "{{ messages|length }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}" +
                                    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
            var record = Record(("messages", new List<object?> { Message("user", "a"), Message("assistant", "b") }));
            var ex = Fails(() => Encoder(DatasetFormat.Chat, new DataOptions { ChatTemplate = template }).Encode(record));
            Assert.Equal("ChatMaskMismatch", ex.ErrorId);
            Assert.StartsWith("'test.jsonl' line 1: cannot locate assistant message 1", ex.Message);
            // Learning everything needs no prefix and works.
            var all = Encoder(DatasetFormat.Chat, new DataOptions { ChatTemplate = template, TrainOnPrompt = true }).Encode(record);
            Assert.Equal(Ids("2", ImStart, "user\na", ImEnd, "\n", ImStart, "assistant\nb", ImEnd, "\n"), all.InputIds);
        }

        [Fact]
        public void TemplateThatRaisesNamesTheRecord()
        {
            const string template = "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}{{ m['content'] }}{% endfor %}";
            var record = Record(("messages", new List<object?> { Message("system", "s"), Message("user", "u"), Message("assistant", "a") }));
            var ex = Fails(() => Encoder(DatasetFormat.Chat, new DataOptions { ChatTemplate = template }).Encode(record));
            Assert.Equal("ChatTemplateFailed", ex.ErrorId);
            Assert.StartsWith("'test.jsonl' line 1: the chat template failed", ex.Message);
            Assert.Contains("no system role", ex.Message);
        }

        [Fact]
        public void PromptCompletionLearnsCompletionAndEos()
        {
            var e = Encoder(DatasetFormat.PromptCompletion).Encode(Record(("prompt", "Q: 1 + 1\nA:"), ("completion", " 2")));
            AssertExample(Expect((Bos, false), ("Q: 1 + 1\nA:", false), (" 2", true), (Eos, true)), e);
        }

        [Fact]
        public void ConversationalPromptCompletionLearnsOnlyCompletionAssistantTurns()
        {
            var record = Record(
                ("prompt", new List<object?> { Message("user", "hi"), Message("assistant", "yo"), Message("user", "2?") }),
                ("completion", new List<object?> { Message("assistant", "two") }));
            var e = Encoder(DatasetFormat.PromptCompletion).Encode(record);
            AssertExample(Expect(
                (Bos, false), (ImStart, false), ("user\nhi", false), (ImEnd, false), ("\n", false),
                (ImStart, false), ("assistant\nyo", false), (ImEnd, false), ("\n", false),
                (ImStart, false), ("user\n2?", false), (ImEnd, false), ("\n", false),
                (ImStart, false), ("assistant\n", false), ("two", true), (ImEnd, true), ("\n", false)), e);
        }

        [Fact]
        public void TextLearnsEverythingWithEos()
        {
            var e = Encoder(DatasetFormat.Text).Encode(Record(("text", "hello")));
            AssertExample(Expect((Bos, true), ("hello", true), (Eos, true)), e);
        }

        [Fact]
        public void EosIsNotDoubledAndCanBeTurnedOff()
        {
            var already = Encoder(DatasetFormat.Text).Encode(Record(("text", "hi<|end_of_text|>")));
            Assert.Equal(Ids(Bos, "hi", Eos), already.InputIds);
            var off = Encoder(DatasetFormat.Text, new DataOptions { AppendEos = false }).Encode(Record(("text", "hi")));
            Assert.Equal(Ids(Bos, "hi"), off.InputIds);
        }

        [Fact]
        public void NumbersInTextFieldsAreWrittenInvariantly()
        {
            var e = Encoder(DatasetFormat.PromptCompletion).Encode(Record(("prompt", 12L), ("completion", 2.5)));
            Assert.Equal(Ids(Bos, "12", "2.5", Eos), e.InputIds);
        }

        [Theory]
        [InlineData(TruncationSide.Right)]
        [InlineData(TruncationSide.Left)]
        public void TruncationCutsTheNamedSide(TruncationSide side)
        {
            var full = Expect((Bos, false), ("Q?", false), ("abcdefgh", true), (Eos, true));
            var e = Encoder(DatasetFormat.PromptCompletion, new DataOptions { MaxLength = 6, Truncation = side })
                .Encode(Record(("prompt", "Q?"), ("completion", "abcdefgh")), out bool truncated);
            Assert.True(truncated);
            Assert.Equal(6, e.Length);
            if (side == TruncationSide.Right)
            {
                Assert.Equal(full.Ids.Take(6), e.InputIds);
                Assert.Equal(full.Labels.Take(6), e.Labels);
                Assert.Equal(Ids(Bos, "Q?abc"), e.InputIds);
            }
            else
            {
                Assert.Equal(full.Ids.TakeLast(6), e.InputIds);
                Assert.Equal(full.Labels.TakeLast(6), e.Labels);
                Assert.Equal(Ids("defgh", Eos), e.InputIds);
            }
        }

        [Fact]
        public void ShortExampleIsNotTruncated()
        {
            Encoder(DatasetFormat.Text, new DataOptions { MaxLength = 4 }).Encode(Record(("text", "ab")), out bool truncated);
            Assert.False(truncated);
        }

        [Fact]
        public void ClassificationCarriesTheLabelIndexAndNoTokenLabels()
        {
            var labels = new ClassLabelSet(new[] { "neg", "pos" });
            var e = Encoder(DatasetFormat.Classification, labels: labels).Encode(Record(("text", "great"), ("label", "pos")));
            Assert.Equal(Ids(Bos, "great"), e.InputIds);
            Assert.Equal(Ignored(6), e.Labels);
            Assert.Equal(1, e.ClassLabel);
        }

        [Fact]
        public void ClassificationLabelOutsideTheSetNamesRecordAndLabel()
        {
            var labels = new ClassLabelSet(new[] { "neg", "pos" });
            var ex = Fails(() => Encoder(DatasetFormat.Classification, labels: labels).Encode(Record(("text", "meh"), ("label", "neutral"))));
            Assert.Equal("UnknownClassLabel", ex.ErrorId);
            Assert.StartsWith("'test.jsonl' line 1: label 'neutral' is not one of the 2 training labels ('neg', 'pos')", ex.Message);
        }

        [Theory]
        [InlineData(DatasetFormat.Alpaca, "output", "alpaca records need instruction and output")]
        [InlineData(DatasetFormat.PromptCompletion, "completion", "prompt/completion records need prompt and completion")]
        public void MissingFieldNamesRecordFieldAndNeeds(DatasetFormat format, string missing, string needs)
        {
            var fields = new List<(string, object?)> { ("instruction", "i"), ("prompt", "p") };
            var ex = Fails(() => Encoder(format).Encode(Record(fields.ToArray())));
            Assert.Equal("DatasetFieldMissing", ex.ErrorId);
            Assert.StartsWith($"'test.jsonl' line 1: field '{missing}' is missing ({needs}", ex.Message);
        }

        [Fact]
        public void MalformedMessagesNameTheProblem()
        {
            var enc = Encoder(DatasetFormat.Chat);
            Assert.Contains("must be a list of messages", Fails(() => enc.Encode(Record(("messages", "hi")))).Message);
            Assert.Contains("messages[1] has no text 'role'", Fails(() => enc.Encode(Record(("messages", new List<object?> { Message("user", "a"), new Dictionary<string, object?> { ["content"] = "b" } })))).Message);
            Assert.Contains("messages[0] must be an object", Fails(() => enc.Encode(Record(("messages", new List<object?> { "user: a" })))).Message);
            Assert.Contains("is an empty list", Fails(() => enc.Encode(Record(("messages", new List<object?>())))).Message);
        }

        [Fact]
        public void ChatNeedsATemplate()
        {
            using var dir = new TempDirectory();
            GraLoRA.Text.ByteLevelTokenizerFactory.Write(dir.Path, new GraLoRA.Text.ByteLevelTokenizerOptions());
            using var plain = GraLoRA.Text.HfTokenizer.Load(dir.Path);
            var ex = Fails(() => new ExampleEncoder(plain, DatasetFormat.Chat));
            Assert.Equal("ChatTemplateMissing", ex.ErrorId);
            // The Alpaca prompt needs none.
            Assert.True(new ExampleEncoder(plain, DatasetFormat.Alpaca).Encode(Record(("instruction", "i"), ("output", "o"))).TargetCount > 0);
        }
    }
}
