using GraLoRA.Adapters;
using GraLoRA.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Forward passes leave only their results in the caller's dispose scope: intermediates are released when the
    /// layer returns (as in Python), so a training step's scope does not pin them until the step ends.
    /// </summary>
    public sealed class ForwardScopeTests
    {
        [Theory]
        [InlineData(AdapterMethod.GraLoRA, 0)]
        [InlineData(AdapterMethod.GraLoRA, 2)]
        [InlineData(AdapterMethod.LoRA, 0)]
        public void AdapterLayerForwardLeavesOnlyItsOutput(AdapterMethod method, int hybridRank)
        {
            using var linear = nn.Linear(32, 48);
            AdapterLayerBase layer = method == AdapterMethod.GraLoRA ? new GraloraLinear(linear) : new LoraLinear(linear);
            IAdapterOptions options = method == AdapterMethod.GraLoRA
                ? new GraloraOptions { Rank = 8, K = 2, HybridRank = hybridRank, Dropout = 0.1, InitWeights = false }
                : new LoraOptions { Rank = 8, Dropout = 0.1, InitWeights = false };
            layer.AddAdapter("default", options);
            layer.train();
            using var x = randn(3, 5, 32, requires_grad: true);

            using var scope = NewDisposeScope();
            var y = layer.forward(x);
            Assert.Equal(1, scope.DisposablesCount);
            y.sum().backward();                                  // autograd still has what it needs
            Assert.NotNull(x.grad);
            Assert.True(x.grad!.abs().sum().item<float>() > 0);
        }

        [Fact]
        public void DecoderLayersAddOneTensorEachToTheCallersScope()
        {
            long CountAfterForward(int layers)
            {
                manual_seed(3);
                using var model = TinyModelFactory.Create(new TinyModelOptions { Layers = layers, Seed = 3 });
                using var ids = randint(0, 256, new long[] { 2, 9 });
                using var scope = NewDisposeScope();
                var output = model.Forward(ids);
                return scope.DisposablesCount;
            }
            // Each layer's output stays (it is the next layer's input); nothing else of a layer may.
            Assert.Equal(2, CountAfterForward(3) - CountAfterForward(1));
        }
    }
}
