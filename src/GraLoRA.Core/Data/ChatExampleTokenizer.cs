using System;
using System.Collections.Generic;
using System.Threading;
using GraLoRA.Text;
using GraLoRA.Text.Jinja;

namespace GraLoRA.Data
{
    /// <summary>
    /// Tokenises a conversation with the chat template and finds the tokens of every assistant turn, which get labels
    /// (everything else gets −100).
    /// </summary>
    /// <remarks>
    /// <para>
    /// The whole conversation is rendered (no generation prompt) and tokenised without added special tokens (the
    /// template writes them, as transformers' apply_chat_template(tokenize=True) does). For assistant message i, the
    /// messages before it are rendered with add_generation_prompt=true: its token count is where the response starts.
    /// The messages up to and including i are rendered without it: its token count, after dropping trailing whitespace
    /// of the rendered text (the newline ChatML writes after &lt;|im_end|&gt;), is where the response ends. The turn's
    /// end-of-turn token (&lt;|im_end|&gt;, &lt;|eot_id|&gt;, &lt;end_of_turn&gt;...) is thus part of the response, as in TRL's
    /// assistant-only loss; if the whitespace-trimmed prefix does not tokenise as a prefix, the untrimmed one is tried.
    /// </para>
    /// <para>
    /// Every prefix's tokens must be a prefix of the whole conversation's tokens; when they are not (a template that
    /// rewrites earlier turns depending on later ones, or a tokenizer that merges across the boundary) encoding fails
    /// with <c>ChatMaskMismatch</c> instead of masking wrongly.
    /// </para>
    /// </remarks>
    internal sealed class ChatExampleTokenizer
    {
        readonly HfTokenizer _tokenizer;
        readonly JinjaTemplate _template;
        readonly string? _bos, _eos;
        readonly IReadOnlyDictionary<string, object?>? _variables;
        readonly DateTime _now;
        readonly CancellationToken _cancellation;

        public ChatExampleTokenizer(HfTokenizer tokenizer, string template, IReadOnlyDictionary<string, object?>? variables, CancellationToken cancellation = default)
        {
            _cancellation = cancellation;
            _tokenizer = tokenizer;
            _template = JinjaTemplate.Parse(template);
            _bos = tokenizer.BosToken;
            _eos = tokenizer.EosToken;
            _variables = variables;
            // One clock for every rendering, so that templates printing today's date render prefixes consistently.
            _now = DateTime.Now;
        }

        /// <summary>Ids and labels of <paramref name="messages"/>; assistant turns from <paramref name="firstTrainable"/> on are learned.</summary>
        public (int[] Ids, int[] Labels) Encode(DataRecord record, IReadOnlyList<ChatMessage> messages, int firstTrainable, bool trainOnAll)
        {
            string full = Render(record, messages, messages.Count, addGenerationPrompt: false);
            int[] ids = Tokenize(record, full);
            var labels = new int[ids.Length];
            if (trainOnAll)
            {
                Array.Copy(ids, labels, ids.Length);
                return (ids, labels);
            }
            Array.Fill(labels, TrainingExample.IgnoreIndex);
            for (int i = firstTrainable; i < messages.Count; i++)
            {
                if (messages[i].Role != "assistant") continue;
                string before = Render(record, messages, i, addGenerationPrompt: true);
                int start = PrefixLength(record, ids, before)
                    ?? throw Mismatch(record, i, ids, Tokenize(record, before), "the conversation before it (with the generation prompt)");
                string through = Render(record, messages, i + 1, addGenerationPrompt: false);
                string trimmed = through.Substring(0, Math.Max(before.Length, through.TrimEnd().Length));
                int end = PrefixLength(record, ids, trimmed)
                    ?? PrefixLength(record, ids, through)
                    ?? throw Mismatch(record, i, ids, Tokenize(record, through), "the conversation through it");
                for (int t = start; t < end; t++) labels[t] = ids[t];
            }
            return (ids, labels);
        }

        /// <summary>The token count of <paramref name="text"/> when its tokens start <paramref name="full"/>, else null.</summary>
        int? PrefixLength(DataRecord record, int[] full, string text)
        {
            int[] prefix = Tokenize(record, text);
            if (prefix.Length > full.Length) return null;
            for (int k = 0; k < prefix.Length; k++)
                if (prefix[k] != full[k]) return null;
            return prefix.Length;
        }

        GraloraException Mismatch(DataRecord record, int message, int[] full, int[] prefix, string what)
        {
            int k = 0;
            while (k < prefix.Length && k < full.Length && prefix[k] == full[k]) k++;
            return DataErrors.Record(record,
                $"cannot locate assistant message {message} for the label mask: the tokens of {what} are not a prefix of the whole conversation's tokens " +
                $"(they differ at token {k} of {prefix.Length}). The chat template renders earlier turns differently once later turns follow " +
                "(e.g. it drops the reasoning of earlier turns), or the tokenizer merges text across the turn boundary. " +
                "Train on all tokens (TrainOnPrompt), or give a chat template that renders each turn independently.",
                "ChatMaskMismatch");
        }

        string Render(DataRecord record, IReadOnlyList<ChatMessage> messages, int count, bool addGenerationPrompt)
        {
            var slice = new List<ChatMessage>(count);
            for (int i = 0; i < count; i++) slice.Add(messages[i]);
            try
            {
                return ChatTemplate.Render(_template, slice, new ChatTemplateOptions
                {
                    AddGenerationPrompt = addGenerationPrompt,
                    BosToken = _bos,
                    EosToken = _eos,
                    Now = _now,
                    ExtraVariables = _variables,
                }, _cancellation);
            }
            catch (GraloraException ex) when (ex.ErrorId is "ChatTemplateTooDeep" or "ChatTemplateBudgetExceeded")
            {
                // The template's own limits: keep their ids (scripts catch them), add where it happened.
                throw new GraloraException(ex.ErrorId, ex.Kind, $"{record.Location}: {ex.Message}", record.Source, ex);
            }
            catch (GraloraException ex)
            {
                throw new GraloraException("ChatTemplateFailed", GraloraErrorKind.InvalidData,
                    $"{record.Location}: the chat template failed on the first {count} message{(count == 1 ? "" : "s")}: {ex.Message}", record.Source, ex);
            }
        }

        int[] Tokenize(DataRecord record, string text)
        {
            try { return _tokenizer.Encode(text, addSpecialTokens: false); }
            catch (GraloraException ex) when (ex.ErrorId == "InvalidText")
            {
                throw DataErrors.Record(record, ex.Message);
            }
        }
    }
}
