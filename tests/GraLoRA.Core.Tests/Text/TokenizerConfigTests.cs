using System;
using System.IO;
using System.Linq;
using GraLoRA.Text;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>tokenizer_config.json / generation_config.json parsing, and HfTokenizer's load errors.</summary>
    public class TokenizerConfigTests
    {
        [Theory]
        [InlineData("\"<s>\"", "<s>")]
        [InlineData("{\"__type\": \"AddedToken\", \"content\": \"<|begin_of_text|>\", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false}", "<|begin_of_text|>")]
        [InlineData("{\"content\": \"<bos>\"}", "<bos>")]
        [InlineData("null", null)]
        public void SpecialTokensAreStringsOrAddedTokenObjects(string json, string? expected)
        {
            var config = TokenizerConfig.Parse($"{{\"bos_token\": {json}, \"eos_token\": {json}, \"pad_token\": {json}, \"unk_token\": {json}}}");
            Assert.Equal(expected, config.BosToken);
            Assert.Equal(expected, config.EosToken);
            Assert.Equal(expected, config.PadToken);
            Assert.Equal(expected, config.UnkToken);
        }

        [Fact]
        public void AbsentKeysGiveNulls()
        {
            var config = TokenizerConfig.Parse("{}");
            Assert.Null(config.BosToken);
            Assert.Null(config.EosToken);
            Assert.Null(config.AddBosToken);
            Assert.Null(config.AddEosToken);
            Assert.Null(config.ModelMaxLength);
            Assert.Null(config.ChatTemplate);
            Assert.Null(config.CleanUpTokenizationSpaces);
            Assert.Empty(config.NamedChatTemplates);
            Assert.Empty(config.AdditionalSpecialTokens);
        }

        [Fact]
        public void FlagsLengthAndClassAreRead()
        {
            var config = TokenizerConfig.Parse("""
                {"add_bos_token": true, "add_eos_token": false, "model_max_length": 32768, "clean_up_tokenization_spaces": true,
                 "tokenizer_class": "GemmaTokenizer", "additional_special_tokens": ["<a>", {"content": "<b>"}]}
                """);
            Assert.True(config.AddBosToken);
            Assert.False(config.AddEosToken);
            Assert.Equal(32768, config.ModelMaxLength);
            Assert.True(config.CleanUpTokenizationSpaces);
            Assert.Equal("GemmaTokenizer", config.TokenizerClass);
            Assert.Equal(new[] { "<a>", "<b>" }, config.AdditionalSpecialTokens);
        }

        [Fact]
        public void TransformersNoLimitSentinelReadsAsNoLimit()
        {
            Assert.Null(TokenizerConfig.Parse("{\"model_max_length\": 1000000000000000019884624838656}").ModelMaxLength);
        }

        [Fact]
        public void StringChatTemplateIsTheDefault()
        {
            var config = TokenizerConfig.Parse("{\"chat_template\": \"{{ messages[0]['content'] }}\"}");
            Assert.Equal("{{ messages[0]['content'] }}", config.ChatTemplate);
            Assert.Empty(config.NamedChatTemplates);
        }

        [Fact]
        public void ListChatTemplatesAreNamedAndDefaultIsPicked()
        {
            var config = TokenizerConfig.Parse("""
                {"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}, {"name": "rag", "template": "R"}]}
                """);
            Assert.Equal("D", config.ChatTemplate);
            Assert.Equal(3, config.NamedChatTemplates.Count);
            Assert.Equal("T", config.NamedChatTemplates["tool_use"]);
            Assert.Equal("R", config.NamedChatTemplates["rag"]);
        }

        [Fact]
        public void ListWithoutDefaultHasNoDefaultTemplate()
        {
            var config = TokenizerConfig.Parse("{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}]}");
            Assert.Null(config.ChatTemplate);
            Assert.Equal("T", Assert.Single(config.NamedChatTemplates).Value);
        }

        [Theory]
        [InlineData("{\"eos_token_id\": 2}", new[] { 2 })]
        [InlineData("{\"eos_token_id\": [128001, 128008, 128009]}", new[] { 128001, 128008, 128009 })]
        [InlineData("{\"eos_token_id\": null}", new int[0])]
        [InlineData("{\"bos_token_id\": 1}", new int[0])]
        public void GenerationConfigEosIsAnIntOrAList(string json, int[] expected)
        {
            Assert.Equal(expected, TokenizerConfig.ParseGenerationEosTokenIds(json));
        }

        [Theory]
        [InlineData("{\"eos_token_id\": \"</s>\"}", "eos_token_id")]
        [InlineData("{\"eos_token_id\": [1, -3]}", "eos_token_id")]
        [InlineData("{\"chat_template\": 5}", "chat_template")]
        [InlineData("{\"chat_template\": [{\"name\": \"x\"}]}", "chat_template")]
        [InlineData("{\"bos_token\": 7}", "bos_token")]
        [InlineData("{\"add_bos_token\": \"yes\"}", "add_bos_token")]
        [InlineData("{\"model_max_length\": \"big\"}", "model_max_length")]
        [InlineData("[1, 2]", "not a JSON object")]
        [InlineData("{\"bos_token\": ", "not valid JSON")]
        public void BadValuesAreNamedInTheError(string json, string named)
        {
            var ex = Assert.Throws<GraloraException>(() =>
            {
                if (json.Contains("eos_token_id")) TokenizerConfig.ParseGenerationEosTokenIds(json, "gen.json");
                else TokenizerConfig.Parse(json, "cfg.json");
            });
            Assert.Equal("InvalidTokenizer", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidData, ex.Kind);
            Assert.Contains(named, ex.Message);
            Assert.Contains(json.Contains("eos_token_id") ? "gen.json" : "cfg.json", ex.Message);
        }

        static string WriteTiny(TempDirectory dir, string? pad = "<|pad|>")
        {
            ByteLevelTokenizerFactory.Write(dir.Path, new ByteLevelTokenizerOptions { PadToken = pad, ChatTemplate = "{{ bos_token }}" });
            return dir.Path;
        }

        [Fact]
        public void LoadMergesGenerationConfigEosIds()
        {
            using var dir = new TempDirectory();
            WriteTiny(dir);
            // 257 = <|end_of_text|> (the config's EOS) is listed once; 260 = <|im_end|> is added after it.
            File.WriteAllText(dir.File("generation_config.json"), "{\"bos_token_id\": 256, \"eos_token_id\": [260, 257]}");
            using var tokenizer = HfTokenizer.Load(dir.Path);
            Assert.Equal(new[] { 257, 260 }, tokenizer.EosTokenIds);
            Assert.Equal("<|end_of_text|>", tokenizer.EosToken);
            Assert.Equal(258, tokenizer.PadTokenId);
            Assert.Equal("{{ bos_token }}", tokenizer.Config.ChatTemplate);
        }

        [Fact]
        public void PadFallsBackToTheFirstEos()
        {
            using var dir = new TempDirectory();
            WriteTiny(dir, pad: null);
            File.WriteAllText(dir.File("generation_config.json"), "{\"eos_token_id\": 260}");
            using var tokenizer = HfTokenizer.Load(dir.Path);
            Assert.Null(tokenizer.PadToken);
            Assert.Equal(new[] { 257, 260 }, tokenizer.EosTokenIds);
            Assert.Equal(257, tokenizer.PadTokenId);
        }

        [Fact]
        public void ChatTemplateFilesReplaceTheConfigTemplate()
        {
            using var dir = new TempDirectory();
            WriteTiny(dir);
            File.WriteAllText(dir.File("chat_template.jinja"), "FROM FILE");
            Directory.CreateDirectory(dir.File("additional_chat_templates"));
            File.WriteAllText(Path.Combine(dir.File("additional_chat_templates"), "tool_use.jinja"), "TOOLS");
            using var tokenizer = HfTokenizer.Load(dir.Path);
            Assert.Equal("FROM FILE", tokenizer.Config.ChatTemplate);
            Assert.Equal("TOOLS", tokenizer.Config.NamedChatTemplates["tool_use"]);
        }

        [Fact]
        public void FromFilesTakesAParsedConfig()
        {
            using var dir = new TempDirectory();
            WriteTiny(dir);
            var config = TokenizerConfig.Parse("{\"eos_token\": \"<|im_end|>\"}");
            using var tokenizer = HfTokenizer.FromFiles(dir.File("tokenizer.json"), config, new[] { 257 });
            Assert.Equal(new[] { 260, 257 }, tokenizer.EosTokenIds);
            Assert.Null(tokenizer.BosToken);
        }

        [Fact]
        public void MissingFolderIsNotFound()
        {
            string missing = Path.Combine(Path.GetTempPath(), "gralora-no-such-" + Guid.NewGuid().ToString("N"));
            var ex = Assert.Throws<GraloraException>(() => HfTokenizer.Load(missing));
            Assert.Equal("TokenizerNotFound", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.NotFound, ex.Kind);
            Assert.Contains(missing, ex.Message);
        }

        [Fact]
        public void FolderWithoutTokenizerJsonIsNotFound()
        {
            using var dir = new TempDirectory();
            File.WriteAllText(dir.File("tokenizer_config.json"), "{}");
            var ex = Assert.Throws<GraloraException>(() => HfTokenizer.Load(dir.Path));
            Assert.Equal("TokenizerNotFound", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.NotFound, ex.Kind);
            Assert.Contains("tokenizer.json", ex.Message);
        }

        [Theory]
        [InlineData("tokenizer.json", "{\"model\": {\"vocab\": ")]
        [InlineData("tokenizer.json", "[]")]
        [InlineData("tokenizer.json", "{\"added_tokens\": []}")]
        [InlineData("tokenizer_config.json", "{not json")]
        [InlineData("generation_config.json", "{\"eos_token_id\": ")]
        public void CorruptFilesAreInvalidDataNamingTheFile(string file, string content)
        {
            using var dir = new TempDirectory();
            WriteTiny(dir);
            File.WriteAllText(dir.File(file), content);
            var ex = Assert.Throws<GraloraException>(() => HfTokenizer.Load(dir.Path));
            Assert.Equal("InvalidTokenizer", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidData, ex.Kind);
            Assert.Contains(dir.File(file), ex.Message);
        }

        [Fact]
        public void NativeRejectionIsWrappedWithTheFileName()
        {
            using var dir = new TempDirectory();
            WriteTiny(dir);
            string path = dir.File("tokenizer.json");
            File.WriteAllText(path, File.ReadAllText(path).Replace("\"type\": \"BPE\"", "\"type\": \"NoSuchModel\""));
            var ex = Assert.Throws<GraloraException>(() => HfTokenizer.Load(dir.Path));
            Assert.Equal("InvalidTokenizer", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidData, ex.Kind);
            Assert.Contains(path, ex.Message);
            Assert.Contains("Hugging Face tokenizers rejected", ex.Message);
            Assert.NotNull(ex.InnerException);
        }

        [Fact]
        public void UnknownPostProcessorIsNamed()
        {
            using var dir = new TempDirectory();
            WriteTiny(dir);
            string path = dir.File("tokenizer.json");
            File.WriteAllText(path, File.ReadAllText(path).Replace("\"type\": \"TemplateProcessing\"", "\"type\": \"Mystery\""));
            var ex = Assert.Throws<GraloraException>(() => HfTokenizer.Load(dir.Path));
            Assert.Equal("InvalidTokenizer", ex.ErrorId);
            Assert.Contains("Mystery", ex.Message);
        }

        [Fact]
        public void BadInputsAreRefusedClearly()
        {
            using var dir = new TempDirectory();
            WriteTiny(dir);
            var tokenizer = HfTokenizer.Load(dir.Path);
            var text = Assert.Throws<GraloraException>(() => tokenizer.Encode("ok \uD83D then"));
            Assert.Equal("InvalidText", text.ErrorId);
            Assert.Contains("index 3", text.Message);
            var id = Assert.Throws<GraloraException>(() => tokenizer.Decode(new[] { 65, -1 }));
            Assert.Equal("InvalidTokenId", id.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidArgument, id.Kind);
            tokenizer.Dispose();
            tokenizer.Dispose();
            Assert.Throws<ObjectDisposedException>(() => tokenizer.Encode("x"));
            Assert.Throws<ObjectDisposedException>(() => tokenizer.Decode(new[] { 65 }));
        }

        [Fact]
        public void ConcurrentCallsAgreeWithSequentialOnes()
        {
            using var dir = new TempDirectory();
            WriteTiny(dir);
            using var tokenizer = HfTokenizer.Load(dir.Path);
            var texts = Enumerable.Range(0, 200).Select(i => $"text {i} é中😀 <|im_end|> {new string('x', i % 17)}").ToArray();
            var expected = tokenizer.EncodeBatch(texts);
            var ids = new int[texts.Length][];
            var decoded = new string[texts.Length];
            System.Threading.Tasks.Parallel.For(0, texts.Length, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            {
                ids[i] = tokenizer.Encode(texts[i]);
                decoded[i] = tokenizer.Decode(ids[i], skipSpecialTokens: false);
            });
            for (int i = 0; i < texts.Length; i++)
            {
                Assert.Equal(expected[i], ids[i]);
                Assert.Equal("<|begin_of_text|>" + texts[i], decoded[i]);
            }
        }

        [Fact]
        public void NoTemporaryCopiesAreLeftBehind()
        {
            using var dir = new TempDirectory();
            WriteTiny(dir);
            int before = Directory.GetFiles(Path.GetTempPath(), "gralora-tokenizer-*.json").Length;
            using (HfTokenizer.Load(dir.Path)) { }
            Assert.Equal(before, Directory.GetFiles(Path.GetTempPath(), "gralora-tokenizer-*.json").Length);
            Assert.Equal(new[] { "tokenizer.json", "tokenizer_config.json" }, Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray());
        }
    }
}
