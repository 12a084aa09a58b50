using System.Collections.Generic;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>
    /// Activation checkpointing of one decoder layer, as PyTorch's reentrant torch.utils.checkpoint: the forward keeps
    /// only the layer's input; the backward replays the forward with the same random state (adapter dropout) and
    /// back-propagates through it, accumulating the parameters' gradients and returning the input's.
    /// </summary>
    internal sealed class LayerCheckpoint : autograd.SingleTensorFunction<LayerCheckpoint>
    {
        public override string Name => nameof(LayerCheckpoint);

        /// <summary>How many layer forwards have been replayed in backward (diagnostics and tests).</summary>
        internal static int Replays;

        /// <summary>vars: layer, input, cos, sin, mask (null: plain causal attention), rope.</summary>
        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (layer, x, cos, sin, mask, rope) = ((DecoderLayer)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], (Tensor?)vars[4], (RotaryEmbedding)vars[5]);
            var saved = new List<Tensor> { x, cos, sin };
            if (mask is not null) saved.Add(mask);
            ctx.save_for_backward(saved);
            ctx.save_data("layer", layer);
            ctx.save_data("rope", rope);
            using (var state = get_rng_state()) ctx.save_data("rng", state.bytes.ToArray());   // bytes: the context keeps tensors only via save_for_backward
            return layer.Forward(x, cos, sin, mask, rope);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            System.Threading.Interlocked.Increment(ref Replays);
            var saved = ctx.get_saved_variables();
            var layer = (DecoderLayer)ctx.get_data("layer");
            var rope = (RotaryEmbedding)ctx.get_data("rope");
            var bytes = (byte[])ctx.get_data("rng");
            using var rng = tensor(bytes, dtype: ScalarType.Byte);
            using var current = get_rng_state();
            set_rng_state(rng);
            Tensor input;
            using (enable_grad())
            {
                input = saved[0].detach().requires_grad_(true);
                var output = layer.Forward(input, saved[1], saved[2], saved.Count > 3 ? saved[3] : null, rope);
                output.backward(new[] { gradOutput });
            }
            set_rng_state(current);
            return new List<Tensor> { null!, input.grad!, null!, null!, null!, null! };
        }
    }
}
