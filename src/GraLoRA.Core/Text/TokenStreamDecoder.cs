using System;
using System.Collections.Generic;
using System.Text;

namespace GraLoRA.Text
{
    /// <summary>
    /// Turns token ids that arrive one at a time (generation) into text as soon as it is complete: a character split
    /// over several byte-level tokens (emoji, CJK, accents) is held back until its last byte arrives, so no piece ends in
    /// U+FFFD, and a token's leading space is kept even where decoding a token alone would strip it.
    /// </summary>
    /// <remarks>
    /// It decodes a short window: the ids since the last emitted piece plus those of that piece (for context), and
    /// emits what the window adds beyond the context. The pieces, followed by <see cref="Flush"/>, concatenate to
    /// <c>tokenizer.Decode(allIds, skipSpecialTokens, cleanUpTokenizationSpaces: false)</c> (no clean-up: it would
    /// need text that has not arrived yet). Not thread-safe: one decoder per generated sequence.
    /// </remarks>
    public sealed class TokenStreamDecoder
    {
        readonly HfTokenizer _tokenizer;
        readonly bool _skipSpecialTokens;
        readonly List<int> _ids = new();
        readonly StringBuilder _text = new();
        int _prefixOffset, _readOffset;
        int _seen;

        /// <summary>A decoder over <paramref name="tokenizer"/>; <paramref name="skipSpecialTokens"/> as in <see cref="HfTokenizer.Decode"/>.</summary>
        public TokenStreamDecoder(HfTokenizer tokenizer, bool skipSpecialTokens = true)
        {
            _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
            _skipSpecialTokens = skipSpecialTokens;
        }

        /// <summary>All text emitted so far (the concatenation of what <see cref="Push"/> and <see cref="Flush"/> returned).</summary>
        public string Text => _text.ToString();

        /// <summary>How many ids have been pushed.</summary>
        public int Count => _seen;

        /// <summary>Adds one id; returns the text it completes ("" while a character or word is still incomplete).</summary>
        public string Push(int id)
        {
            _seen++;
            if (_skipSpecialTokens && _tokenizer.IsSpecial(id)) return "";
            _ids.Add(id);
            string context = _tokenizer.Decode(Window(_prefixOffset, _readOffset), _skipSpecialTokens, cleanUpTokenizationSpaces: false);
            string full = _tokenizer.Decode(Window(_prefixOffset, _ids.Count), _skipSpecialTokens, cleanUpTokenizationSpaces: false);
            if (full.Length <= context.Length || full[^1] == '\uFFFD' || !full.StartsWith(context, StringComparison.Ordinal))
                return "";
            string piece = full[context.Length..];
            _prefixOffset = _readOffset;
            _readOffset = _ids.Count;
            _text.Append(piece);
            return piece;
        }

        /// <summary>
        /// Takes the ids of a growing sequence (e.g. all generated ids so far) and pushes those beyond <see cref="Count"/>;
        /// returns the text they complete.
        /// </summary>
        public string Update(IReadOnlyList<int> allIds)
        {
            ArgumentNullException.ThrowIfNull(allIds);
            if (allIds.Count < _seen)
                throw new GraloraException("InvalidTokenId", GraloraErrorKind.InvalidArgument,
                    $"The sequence has {allIds.Count} ids but {_seen} were already pushed: pass the whole growing sequence, or call Reset for a new one.");
            var sb = new StringBuilder();
            for (int i = _seen; i < allIds.Count; i++) sb.Append(Push(allIds[i]));
            return sb.ToString();
        }

        /// <summary>
        /// Returns whatever is still held back (at the end of generation). If the ids stopped in the middle of a
        /// character, this includes U+FFFD for it, as a full decode would.
        /// </summary>
        public string Flush()
        {
            string context = _tokenizer.Decode(Window(_prefixOffset, _readOffset), _skipSpecialTokens, cleanUpTokenizationSpaces: false);
            string full = _tokenizer.Decode(Window(_prefixOffset, _ids.Count), _skipSpecialTokens, cleanUpTokenizationSpaces: false);
            string piece = full.Length > context.Length && full.StartsWith(context, StringComparison.Ordinal) ? full[context.Length..] : "";
            if (piece.Length > 0)
            {
                _prefixOffset = _readOffset;
                _readOffset = _ids.Count;
                _text.Append(piece);
            }
            return piece;
        }

        /// <summary>Forgets everything, for a new sequence.</summary>
        public void Reset()
        {
            _ids.Clear();
            _text.Clear();
            _prefixOffset = _readOffset = _seen = 0;
        }

        IEnumerable<int> Window(int from, int to)
        {
            for (int i = from; i < to; i++) yield return _ids[i];
        }
    }
}
