using System.Linq;
using TorchSharp;
using Xunit;

namespace GraLoRA.Tests
{
    [Collection("Sequential")]
    public class TorchRuntimeTests
    {
        [Fact]
        public void InitialisesAndComputes()
        {
            TorchRuntime.EnsureInitialized();
            using var scope = torch.NewDisposeScope();
            var x = torch.tensor(new float[] { 1, 2, 3 });
            Assert.Equal(14f, x.dot(x).item<float>());
        }

        [Fact]
        public void DeviceInfoDescribesThisProcess()
        {
            var info = TorchRuntime.GetDeviceInfo();
            Assert.Contains(info.Devices, d => d.Name == "cpu" && d.Type == "CPU");
            Assert.StartsWith("2.10", info.LibTorchVersion);
            Assert.Equal("0.107.0", info.TorchSharpVersion);
            Assert.True(info.Threads >= 1);
            Assert.True(info.SelfTestPassed);
            Assert.Equal(info.CudaAvailable, info.CudaUnavailableReason == null);
            Assert.Equal(info.CudaDeviceCount, info.Devices.Count(d => d.Type == "CUDA"));
            if (TorchRuntime.Backend == "cpu")
            {
                Assert.False(info.CudaAvailable);
                Assert.Contains("-p:TorchBackend=cuda", info.CudaUnavailableReason);
            }
        }

        [Theory]
        [InlineData("cpu")]
        [InlineData(" CPU ")]
        [InlineData(null)]
        public void CpuNamesResolveToTheCpu(string? name) =>
            Assert.Equal(DeviceType.CPU, TorchRuntime.ResolveDevice(name).type);

        [Fact]
        public void AutoFallsBackToTheCpuWithoutCuda()
        {
            var device = TorchRuntime.ResolveDevice("auto");
            Assert.Equal(TorchRuntime.CudaUnavailableReason() == null ? DeviceType.CUDA : DeviceType.CPU, device.type);
        }

        [Fact]
        public void CudaWithoutCudaNamesTheReasonAndTheSwitch()
        {
            string? reason = TorchRuntime.CudaUnavailableReason();
            if (reason == null)
            {
                Assert.Equal(DeviceType.CUDA, TorchRuntime.ResolveDevice("cuda").type);
                return;
            }
            var ex = Assert.Throws<GraloraException>(() => TorchRuntime.ResolveDevice("cuda"));
            Assert.Equal("CudaNotAvailable", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.NotAvailable, ex.Kind);
            Assert.Contains("'cuda'", ex.Message);
            Assert.Contains(reason, ex.Message);
            Assert.Contains("-Device cpu", ex.Message);
        }

        [Theory]
        [InlineData("tpu", "is not recognised")]
        [InlineData("cuda:x", "unreadable index")]
        [InlineData("", "is not recognised")]
        public void UnknownDevicesAreRejectedByName(string name, string expected)
        {
            var ex = Assert.Throws<GraloraException>(() => TorchRuntime.ResolveDevice(name));
            Assert.Equal("InvalidDevice", ex.ErrorId);
            Assert.Contains($"'{name}'", ex.Message);
            Assert.Contains(expected, ex.Message);
        }
    }

    [CollectionDefinition("Sequential", DisableParallelization = true)]
    public class SequentialCollection { }
}
