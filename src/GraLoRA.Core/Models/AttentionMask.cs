using System.Linq;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>
    /// Which keys each query may attend to — causal order, padding, packed segments and sliding windows — decided in
    /// this one place for every decoder layer, as transformers' masking_utils does.
    /// </summary>
    public static class AttentionMask
    {
        /// <summary>
        /// True when the layer needs an explicit mask: plain causal attention (scaled_dot_product_attention with
        /// is_causal and no mask, which builds no [B, 1, L, T] tensor and lets libtorch pick its fused kernels, as
        /// transformers does) computes the same only when no key is padding, nothing is packed, no keys come from a
        /// cache, the window (if any) covers every earlier token, and the layer's attention is not computed eagerly
        /// (Gemma's soft-capping and score scale: see <see cref="DecoderConfig.EagerAttention"/>).
        /// </summary>
        /// <param name="pastLength">Keys already in the key/value cache.</param>
        /// <param name="newLength">Query tokens of this step.</param>
        /// <param name="attentionMask">1 = token, 0 = padding, [B, past + new]; null: no padding.</param>
        /// <param name="segmentIds">Packed segment ids [B, new]; null: not packed.</param>
        /// <param name="window">The layer's sliding window, or null for full attention.</param>
        /// <param name="eagerAttention">The model computes attention eagerly, which always applies an explicit mask.</param>
        public static bool NeedsExplicitMask(long pastLength, long newLength, Tensor? attentionMask, Tensor? segmentIds, int? window, bool eagerAttention) =>
            eagerAttention
            || pastLength > 0
            || segmentIds is not null
            || window is { } w && pastLength + newLength > w
            || attentionMask is not null && !attentionMask.to(ScalarType.Bool).all().item<bool>();

        /// <summary>
        /// The additive mask [B, 1, L, past + L] (0 where allowed, the dtype's most negative finite value elsewhere, so
        /// fully masked rows of left padding stay finite, as transformers' eager attention does).
        /// </summary>
        public static Tensor Build(long batch, long pastLength, long newLength, Tensor? attentionMask, Tensor? segmentIds, int? window,
                                   ScalarType dtype, Device device)
        {
            long total = pastLength + newLength;
            var query = arange(pastLength, total, device: device).unsqueeze(1);                 // [L, 1] absolute index i
            var key = arange(total, device: device).unsqueeze(0);                                // [1, T] absolute index j
            var allowed = key <= query;                                                          // causal: j <= i
            // Sliding window of w tokens (transformers' sliding_window_overlay): query i sees key j only when j > i - w.
            if (window is { } w) allowed = allowed.logical_and(key > query - w);
            allowed = allowed.unsqueeze(0).unsqueeze(0);                                         // [1, 1, L, T]
            if (attentionMask is not null) allowed = allowed.logical_and(attentionMask.to(ScalarType.Bool).view(batch, 1, 1, total));
            if (segmentIds is not null)
            {
                // Packed sequences: a token sees only its own segment (0 marks padding).
                var same = segmentIds.unsqueeze(2).eq(segmentIds.unsqueeze(1)).logical_and(segmentIds.ne(0).unsqueeze(1));   // [B, L, L]
                allowed = allowed.logical_and(same.unsqueeze(1));
            }
            return where(allowed, zeros(1, dtype: dtype, device: device), full(1, finfo(dtype).min, dtype: dtype, device: device));
        }
    }
}
