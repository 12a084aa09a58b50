using GraLoRA.Adapters;
using static TorchSharp.torch;

namespace GraLoRA.Diagnostics
{
    /// <summary>
    /// The change one plain gradient step on an adapter's factors makes to W, up to the factor −η·scaling² (paper Eq. 4).
    /// With W [out, in], Y = X·Wᵀ and G = ∂L/∂W = (∂L/∂Y)ᵀ·X [out, in], LoRA's ΔW = s·B·A (A [r, in], B [out, r]) has
    /// ∂L/∂A = s·Bᵀ·G and ∂L/∂B = s·G·Aᵀ, so one SGD step of size η changes ΔW by
    /// s·((B − η·s·G·Aᵀ)(A − η·s·Bᵀ·G) − B·A) = −η·s²·(G·Aᵀ·A + B·Bᵀ·G) + O(η²).
    /// (The paper writes A as [in, r], which turns G·Aᵀ·A into its G·A·Aᵀ.) GraLoRA applies the same to every block
    /// (j, n) with that block's own factors and G's block; a hybrid part adds its LoRA term over the whole matrix.
    /// Both terms are returned separately (the "A term" G·AᵀA mixes input channels, the "B term" B·BᵀG output channels).
    /// </summary>
    public static class ImpliedUpdate
    {
        /// <summary>LoRA: (G·Aᵀ·A, B·Bᵀ·G) for G [out, in], A [r, in], B [out, r].</summary>
        public static (Tensor ATerm, Tensor BTerm) Lora(Tensor g, Tensor a, Tensor b) =>
            (g.mm(a.t()).mm(a), b.mm(b.t().mm(g)));

        /// <summary>
        /// GraLoRA: per block (j, n), G_jn·A_jnᵀ·A_jn and B_jn·B_jnᵀ·G_jn, assembled into [out, in]. <paramref name="a"/>
        /// [k(j), k(n), s, in/k] and <paramref name="b"/> [k(j), k(n), out/k, s] are the blocks' factors
        /// (<see cref="GraloraLinear.BlockFactors"/>); the hybrid factors (<paramref name="aGeneral"/> [h, in],
        /// <paramref name="bGeneral"/> [out, h]), when given, add their LoRA terms.
        /// </summary>
        public static (Tensor ATerm, Tensor BTerm) Gralora(Tensor g, Tensor a, Tensor b, Tensor? aGeneral = null, Tensor? bGeneral = null)
        {
            long k = a.shape[0], outFeatures = g.shape[0], inFeatures = g.shape[1], outBlock = outFeatures / k, inBlock = inFeatures / k;
            var blocks = g.view(k, outBlock, k, inBlock).permute(0, 2, 1, 3);                 // G_jn: [k(j), k(n), out/k, in/k]
            var aTerm = Assemble(blocks.matmul(a.transpose(2, 3)).matmul(a), outFeatures, inFeatures);
            var bTerm = Assemble(b.matmul(b.transpose(2, 3).matmul(blocks)), outFeatures, inFeatures);
            if (aGeneral is not null && bGeneral is not null)
            {
                var (ga, gb) = Lora(g, aGeneral, bGeneral);
                aTerm = aTerm.add(ga);
                bTerm = bTerm.add(gb);
            }
            return (aTerm, bTerm);
        }

        // [k(j), k(n), out/k, in/k] → [out, in]
        static Tensor Assemble(Tensor blocks, long outFeatures, long inFeatures) =>
            blocks.permute(0, 2, 1, 3).reshape(outFeatures, inFeatures);
    }
}
