using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using GraLoRA.Generation;
using GraLoRA.Text;

namespace GraLoRA.Models
{
    /// <summary>Text generated for one prompt.</summary>
    /// <param name="Prompt">The prompt text (after the chat template, for chats).</param>
    /// <param name="Text">The generated text, special tokens removed (a stop string that ended it is included, as in transformers).</param>
    /// <param name="PromptTokens">The prompt's token ids.</param>
    /// <param name="Tokens">The generated token ids (EOS included when it ended the sequence).</param>
    /// <param name="FinishReason">Why generation stopped.</param>
    public sealed record GenerationResult(string Prompt, string Text, int[] PromptTokens, int[] Tokens, FinishReason FinishReason);

    public sealed partial class BaseModel
    {
        /// <summary>The tokenizer from tokenizer.json / tokenizer_config.json, or null when the folder has none.</summary>
        public HfTokenizer? Tokenizer { get; private set; }

        partial void AttachTokenizer()
        {
            if (!File.Exists(System.IO.Path.Combine(Path, "tokenizer.json"))) return;
            Tokenizer = HfTokenizer.Load(Path);
            int largest = Tokenizer.VocabSize - 1;
            // Special tokens past the embedding that text never needs are allowed (Gemma 3 1B's tokenizer has
            // <image_soft_token> at its vocab_size, as in transformers; the forward refuses such an id if it is ever
            // fed); ordinary tokens and bos/eos/pad/unk are not.
            var needed = new[] { Tokenizer.BosTokenId, Tokenizer.PadTokenId, Tokenizer.UnkTokenId }.Concat(Tokenizer.EosTokenIds.Select(i => (int?)i)).ToHashSet();
            bool fits = Enumerable.Range(Transformer.VocabSize, Math.Max(0, largest + 1 - Transformer.VocabSize)).All(id => Tokenizer.IsSpecial(id) && !needed.Contains(id));
            if (!fits)
                throw new GraloraException("TokenizerVocabularyMismatch", GraloraErrorKind.InvalidData,
                    $"'{Path}': the tokenizer has ids up to {largest} but the model's vocab_size is {Transformer.VocabSize}: tokenizer.json does not belong to this model.", Path);
        }

        partial void DisposeTokenizer() => Tokenizer?.Dispose();

        HfTokenizer RequireTokenizer() => Tokenizer ?? throw new GraloraException("TokenizerNotFound", GraloraErrorKind.NotFound,
            $"Model '{Name}' has no tokenizer.json in '{Path}': add the tokenizer files, or work with token ids (Invoke-BaseModel -InputIds).", Path);

        /// <summary>
        /// <paramref name="options"/> (default: the model's generation defaults) with EOS and padding completed from
        /// the tokenizer when the options do not name them.
        /// </summary>
        public GenerationOptions EffectiveGenerationOptions(GenerationOptions? options = null)
        {
            options ??= GenerationDefaults;
            if (Tokenizer is null) return options;
            return options with
            {
                EosTokenIds = options.EosTokenIds.Count > 0 ? options.EosTokenIds : Tokenizer.EosTokenIds,
                PadTokenId = options.PadTokenId ?? Tokenizer.PadTokenId,
            };
        }

        /// <summary>Renders the tokenizer's chat template for <paramref name="messages"/> (named template when <paramref name="templateName"/> is given).</summary>
        /// <exception cref="GraloraException">ChatTemplateNotFound; the template's errors (see <see cref="ChatTemplate.Render(string, IReadOnlyList{ChatMessage}, ChatTemplateOptions?, CancellationToken)"/>).</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled while rendering.</exception>
        public string ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, IReadOnlyDictionary<string, object?>? extraVariables = null, string? templateName = null,
            CancellationToken cancellation = default)
        {
            var tokenizer = RequireTokenizer();
            string? template = templateName is null ? tokenizer.Config.ChatTemplate
                : tokenizer.Config.NamedChatTemplates.TryGetValue(templateName, out var named) ? named
                : throw new GraloraException("ChatTemplateNotFound", GraloraErrorKind.NotFound,
                    $"Model '{Name}' has no chat template named '{templateName}'; it has: {string.Join(", ", tokenizer.Config.NamedChatTemplates.Keys.DefaultIfEmpty("(none)"))}.", templateName);
            if (template is null)
                throw new GraloraException("ChatTemplateNotFound", GraloraErrorKind.NotFound,
                    $"Model '{Name}' has no chat_template in tokenizer_config.json: use -Prompt with your own formatting, or a model with a chat template (instruct models ship one).", Path);
            return ChatTemplate.Render(template, messages, new ChatTemplateOptions
            {
                AddGenerationPrompt = addGenerationPrompt,
                BosToken = tokenizer.BosToken,
                EosToken = tokenizer.EosToken,
                ExtraVariables = extraVariables,
            }, cancellation);
        }

        /// <summary>
        /// Continues each prompt (encoded with the tokenizer's special tokens, e.g. BOS). <paramref name="onText"/>
        /// receives (prompt index, text) as soon as each piece of text is complete.
        /// </summary>
        public IReadOnlyList<GenerationResult> Generate(IReadOnlyList<string> prompts, GenerationOptions? options = null,
            Action<int, string>? onText = null, CancellationToken cancellation = default) =>
            GenerateFromText(prompts, addSpecialTokens: true, options, onText, cancellation);

        /// <summary>Answers a conversation: renders the chat template with the generation prompt, then generates; <paramref name="cancellation"/> stops either.</summary>
        /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled while the template rendered (once generating, it returns what was generated).</exception>
        public GenerationResult Chat(IReadOnlyList<ChatMessage> messages, GenerationOptions? options = null, Action<string>? onText = null,
            CancellationToken cancellation = default, IReadOnlyDictionary<string, object?>? extraVariables = null)
        {
            string prompt = ApplyChatTemplate(messages, addGenerationPrompt: true, extraVariables, cancellation: cancellation);
            // The template already wrote BOS and the role markers, so no special tokens are added on encoding (as transformers does).
            return GenerateFromText(new[] { prompt }, addSpecialTokens: false, options, onText is null ? null : (_, text) => onText(text), cancellation)[0];
        }

        IReadOnlyList<GenerationResult> GenerateFromText(IReadOnlyList<string> prompts, bool addSpecialTokens, GenerationOptions? options,
            Action<int, string>? onText, CancellationToken cancellation)
        {
            var tokenizer = RequireTokenizer();
            var effective = EffectiveGenerationOptions(options);
            var promptIds = prompts.Select(p => tokenizer.Encode(p, addSpecialTokens)).ToArray();
            var streams = prompts.Select(_ => tokenizer.CreateStreamDecoder()).ToArray();
            var sequences = TextGenerator.Generate(Module, promptIds, effective,
                ids => tokenizer.Decode(ids, skipSpecialTokens: false),
                onText is null ? null : (i, token) =>
                {
                    string piece = streams[i].Push(token);
                    if (piece.Length > 0) onText(i, piece);
                },
                cancellation);
            if (onText is not null)
                for (int i = 0; i < streams.Length; i++)
                {
                    string rest = streams[i].Flush();
                    if (rest.Length > 0) onText(i, rest);
                }
            return sequences.Select((s, i) => new GenerationResult(prompts[i], tokenizer.Decode(s.Tokens), promptIds[i], s.Tokens, s.FinishReason)).ToArray();
        }
    }
}
