using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using GraLoRA.Text;

namespace GraLoRA.Data
{
    /// <summary>
    /// Turns records of one <see cref="DatasetFormat"/> into <see cref="TrainingExample"/>s: token ids, labels masked to
    /// the response (−100 elsewhere), truncated to <see cref="DataOptions.MaxLength"/>.
    /// </summary>
    /// <remarks>
    /// <list type="bullet">
    /// <item><b>Text</b>: <c>Encode(text, addSpecialTokens: true)</c> (BOS when the tokenizer adds it), then EOS; every token is learned.</item>
    /// <item><b>Alpaca</b>: the prompt <see cref="AlpacaPrompt.Render"/> encoded with special tokens, then the output encoded
    /// without, then EOS; only the output and EOS are learned. With <see cref="DataOptions.AlpacaUseChatTemplate"/>:
    /// a chat of a user turn (<see cref="AlpacaPrompt.UserMessage"/>) and an assistant turn (the output).</item>
    /// <item><b>PromptCompletion</b>: as alpaca with the prompt as given. When prompt and completion are both lists of
    /// messages, the chat of prompt then completion, learning the assistant turns of the completion.</item>
    /// <item><b>Chat</b>: see <see cref="ChatExampleTokenizer"/>-style masking: every assistant turn (with its end-of-turn
    /// token) is learned; system, user and tool turns and the template's headers are not.</item>
    /// <item><b>Tokenized</b>: <see cref="TokenizedRecords.Read"/>: the record's ids as they are (no BOS or EOS added, so
    /// <see cref="DataOptions.AppendEos"/> does not apply), its labels or the ids, padding the attention mask marks dropped.</item>
    /// <item><b>Classification</b>: <c>Encode(text, addSpecialTokens: true)</c>, no EOS, every label −100, and
    /// <see cref="TrainingExample.ClassLabel"/> set to the label's index. A record with a <c>text_pair</c> field is a
    /// sentence pair: <see cref="HfTokenizer.EncodePair"/> joins the texts and sets <see cref="TrainingExample.TokenTypeIds"/>.</item>
    /// </list>
    /// Prompt and response are tokenised separately (so no token straddles the boundary). EOS is the first of the
    /// tokenizer's EOS ids; nothing is appended when it has none, when the response already ends with an EOS id, or
    /// when <see cref="DataOptions.AppendEos"/> is off. <see cref="DataOptions.TrainOnPrompt"/> gives every token its label.
    /// Truncation happens last and cuts the side <see cref="DataOptions.Truncation"/> names.
    /// </remarks>
    public sealed class ExampleEncoder
    {
        readonly HfTokenizer _tokenizer;
        readonly DataOptions _options;
        readonly ChatExampleTokenizer? _chat;
        readonly int? _eos;

        /// <summary>Creates an encoder for <paramref name="format"/> records.</summary>
        /// <param name="tokenizer">The model's tokenizer.</param>
        /// <param name="format">The record format.</param>
        /// <param name="options">Tokenisation options (null: defaults).</param>
        /// <param name="classLabels">The label set; required for <see cref="DatasetFormat.Classification"/>.</param>
        /// <param name="cancellation">Stops chat-template rendering (OperationCanceledException from Encode).</param>
        /// <exception cref="GraloraException">
        /// <c>ChatTemplateMissing</c> (InvalidArgument) when chat rendering is needed and neither the options nor the
        /// tokenizer have a chat template; <c>InvalidDataOptions</c> for bad options or a missing label set.
        /// </exception>
        public ExampleEncoder(HfTokenizer tokenizer, DatasetFormat format, DataOptions? options = null, ClassLabelSet? classLabels = null,
            CancellationToken cancellation = default)
        {
            _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
            _options = options ?? new DataOptions();
            _options.Validate();
            Format = format;
            ClassLabels = classLabels;
            if (format == DatasetFormat.Classification && classLabels == null)
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument, "Classification needs a label set: pass ClassLabels (or let the pipeline take them from the training data).");
            _eos = tokenizer.EosTokenIds.Count > 0 ? tokenizer.EosTokenIds[0] : null;
            bool needsChat = format == DatasetFormat.Chat || format == DatasetFormat.PromptCompletion
                || (format == DatasetFormat.Alpaca && _options.AlpacaUseChatTemplate);
            string? template = _options.ChatTemplate ?? tokenizer.Config.ChatTemplate;
            if (needsChat && template != null)
                _chat = new ChatExampleTokenizer(tokenizer, template, _options.ChatTemplateVariables, cancellation);
            else if (needsChat && format != DatasetFormat.PromptCompletion)
                throw new GraloraException("ChatTemplateMissing", GraloraErrorKind.InvalidArgument,
                    $"The tokenizer has no chat template, which {format} records need{(format == DatasetFormat.Alpaca ? " with AlpacaUseChatTemplate" : "")}: " +
                    "use the tokenizer of an instruct model, pass a Jinja template as ChatTemplate" +
                    (format == DatasetFormat.Alpaca ? ", or use the Alpaca prompt (AlpacaUseChatTemplate off)." : "."));
        }

        /// <summary>The record format this encoder reads.</summary>
        public DatasetFormat Format { get; }

        /// <summary>The classification label set, or null.</summary>
        public ClassLabelSet? ClassLabels { get; }

        /// <summary>Encodes one record.</summary>
        /// <exception cref="GraloraException">
        /// <c>DatasetFieldMissing</c>, <c>InvalidDatasetRecord</c>, <c>UnknownClassLabel</c>, <c>ChatTemplateFailed</c>,
        /// <c>ChatMaskMismatch</c>, <c>ChatTemplateMissing</c>: each names the record's file and line or row.
        /// </exception>
        public TrainingExample Encode(DataRecord record) => Encode(record, out _);

        /// <summary>Encodes one record; <paramref name="truncated"/> tells whether it was cut to MaxLength.</summary>
        /// <exception cref="GraloraException">As <see cref="Encode(DataRecord)"/>.</exception>
        public TrainingExample Encode(DataRecord record, out bool truncated)
        {
            ArgumentNullException.ThrowIfNull(record);
            int[] ids, labels;
            int[]? types = null;
            int? classLabel = null;
            switch (Format)
            {
                case DatasetFormat.Text:
                    ids = AppendEos(Tokenize(record, RecordFields.Text(record, "text", Format), true));
                    labels = (int[])ids.Clone();
                    break;
                case DatasetFormat.Alpaca:
                {
                    string instruction = RecordFields.Text(record, "instruction", Format);
                    string? input = RecordFields.OptionalText(record, "input");
                    string output = RecordFields.Text(record, "output", Format);
                    (ids, labels) = _options.AlpacaUseChatTemplate
                        ? _chat!.Encode(record, new[] { new ChatMessage("user", AlpacaPrompt.UserMessage(instruction, input)), new ChatMessage("assistant", output) }, 0, _options.TrainOnPrompt)
                        : PromptResponse(record, AlpacaPrompt.Render(instruction, input), output);
                    break;
                }
                case DatasetFormat.PromptCompletion:
                    (ids, labels) = PromptCompletion(record);
                    break;
                case DatasetFormat.Chat:
                    (ids, labels) = _chat!.Encode(record, RecordFields.Messages(record, "messages", Format), 0, _options.TrainOnPrompt);
                    break;
                case DatasetFormat.Tokenized:
                    (ids, labels) = TokenizedRecords.Read(record, _tokenizer.VocabSize, _options.TrainOnPrompt);
                    break;
                case DatasetFormat.Classification:
                    string text = RecordFields.Text(record, "text", Format);
                    if (RecordFields.OptionalText(record, "text_pair") is { } pair)
                    {
                        try { (ids, types) = _tokenizer.EncodePair(text, pair); }
                        catch (GraloraException ex) when (ex.ErrorId == "InvalidText") { throw DataErrors.Record(record, ex.Message); }
                    }
                    else ids = Tokenize(record, text, true);
                    labels = new int[ids.Length];
                    Array.Fill(labels, TrainingExample.IgnoreIndex);
                    classLabel = ClassLabels!.IndexOf(record);
                    break;
                default:
                    throw new InvalidOperationException("Unknown dataset format " + Format);
            }
            truncated = ids.Length > _options.MaxLength;
            if (truncated)
            {
                int start = _options.Truncation == TruncationSide.Left ? ids.Length - _options.MaxLength : 0;
                ids = ids.AsSpan(start, _options.MaxLength).ToArray();
                labels = labels.AsSpan(start, _options.MaxLength).ToArray();
                if (types != null) types = types.AsSpan(start, _options.MaxLength).ToArray();
            }
            return new TrainingExample(ids, labels, classLabel, tokenTypeIds: types);
        }

        (int[], int[]) PromptCompletion(DataRecord record)
        {
            object? prompt = record["prompt"], completion = record["completion"];
            if (prompt is IReadOnlyList<object?> || completion is IReadOnlyList<object?>)
            {
                if (prompt is not IReadOnlyList<object?> || completion is not IReadOnlyList<object?>)
                    throw DataErrors.Record(record, "prompt and completion must both be text or both be lists of messages.");
                if (_chat == null)
                    throw new GraloraException("ChatTemplateMissing", GraloraErrorKind.InvalidArgument,
                        $"{record.Location}: conversational prompt/completion records need a chat template, and the tokenizer has none: pass one as ChatTemplate.", record.Source);
                var promptMessages = RecordFields.Messages(record, "prompt", Format);
                var all = promptMessages.Concat(RecordFields.Messages(record, "completion", Format)).ToList();
                return _chat.Encode(record, all, promptMessages.Count, _options.TrainOnPrompt);
            }
            return PromptResponse(record, RecordFields.Text(record, "prompt", Format), RecordFields.Text(record, "completion", Format));
        }

        /// <summary>Prompt with special tokens, response without, then EOS; labels on the response (everything with TrainOnPrompt).</summary>
        (int[], int[]) PromptResponse(DataRecord record, string prompt, string response)
        {
            int[] p = Tokenize(record, prompt, true);
            int[] r = AppendEos(Tokenize(record, response, false));
            var ids = new int[p.Length + r.Length];
            p.CopyTo(ids, 0);
            r.CopyTo(ids, p.Length);
            var labels = (int[])ids.Clone();
            if (!_options.TrainOnPrompt) Array.Fill(labels, TrainingExample.IgnoreIndex, 0, p.Length);
            return (ids, labels);
        }

        int[] AppendEos(int[] ids)
        {
            if (!_options.AppendEos || _eos is not int eos) return ids;
            if (ids.Length > 0 && _tokenizer.EosTokenIds.Contains(ids[^1])) return ids;
            var result = new int[ids.Length + 1];
            ids.CopyTo(result, 0);
            result[^1] = eos;
            return result;
        }

        int[] Tokenize(DataRecord record, string text, bool addSpecialTokens)
        {
            try { return _tokenizer.Encode(text, addSpecialTokens); }
            catch (GraloraException ex) when (ex.ErrorId == "InvalidText")
            {
                throw DataErrors.Record(record, ex.Message);
            }
        }
    }
}
