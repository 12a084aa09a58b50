using System;
using GraLoRA.Text;

namespace GraLoRA.Models
{
    public static partial class TinyModelFactory
    {
        /// <summary>
        /// The chat template of tiny models: ChatML (as Qwen uses) after the BOS token, ending each turn with
        /// &lt;|im_end|&gt;, which is also an EOS id of the generation config.
        /// </summary>
        public const string ChatTemplate =
            "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

        /// <summary>
        /// Saves a random model together with a real byte-level tokenizer (256 bytes + &lt;|begin_of_text|&gt;,
        /// &lt;|end_of_text|&gt;, &lt;|pad|&gt;, &lt;|im_start|&gt;, &lt;|im_end|&gt;) and <see cref="ChatTemplate"/>, so that
        /// any text works and the folder loads exactly like a downloaded instruct model. The vocabulary is at least
        /// the tokenizer's; EOS ids are &lt;|end_of_text|&gt; and &lt;|im_end|&gt;. An existing non-empty folder is
        /// replaced only with <paramref name="overwrite"/>.
        /// </summary>
        public static string SaveWithTokenizer(string folder, TinyModelOptions options, bool overwrite = false)
        {
            var tokenizer = new ByteLevelTokenizerOptions { ChatTemplate = ChatTemplate };
            var specials = tokenizer.SpecialTokens;
            int Id(string token) => 256 + IndexOf(specials, token);
            var withIds = options with
            {
                VocabSize = Math.Max(options.VocabSize, 256 + specials.Count),
                BosTokenId = Id(tokenizer.BosToken!),
                EosTokenIds = new[] { Id(tokenizer.EosToken!), Id("<|im_end|>") },
            };
            return Save(folder, withIds, staging => ByteLevelTokenizerFactory.Write(staging, tokenizer), overwrite);
        }

        static int IndexOf(System.Collections.Generic.IReadOnlyList<string> list, string item)
        {
            for (int i = 0; i < list.Count; i++) if (list[i] == item) return i;
            throw new InvalidOperationException($"'{item}' is not a special token of the tiny tokenizer.");
        }
    }
}
