using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using GraLoRA.Distributed;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>
    /// The NCCL path without a GPU: loading libnccl.so.2 (a clear error where it is absent, as on this machine; its
    /// version where a CUDA PyTorch provides it), the unique id's layout, and the id file of torchrun-style launches.
    /// The device all-reduce itself runs in the GPU kit (bench/gpu/run-gpu.sh, stage "nccl").
    /// </summary>
    public sealed class NcclTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        [Fact]
        public void LoadingNcclGivesItsVersionOrAnErrorNamingEveryPlaceTriedAndTheFix()
        {
            string missing = tmp.File("no-such-dir/libnccl.so.2");
            string? saved = Environment.GetEnvironmentVariable("GRALORA_NCCL");
            Environment.SetEnvironmentVariable("GRALORA_NCCL", missing);
            try
            {
                string version;
                try { version = NcclCommunicator.LibraryVersion(); }
                catch (GraloraException ex)
                {
                    Assert.Equal("NcclNotFound", ex.ErrorId);
                    Assert.Equal(GraloraErrorKind.NotAvailable, ex.Kind);
                    Assert.Contains(missing, ex.Message);                      // GRALORA_NCCL first
                    Assert.Contains("libnccl.so.2:", ex.Message);              // then the loader's search path
                    Assert.Contains("site-packages/nvidia/nccl/lib", ex.Message);
                    Assert.Contains("GRALORA_LIBTORCH", ex.Message);
                    Assert.Contains("CPU ranks use MPI", ex.Message);
                    return;
                }
                Assert.Matches(new Regex(@"^2\.\d+\.\d+$"), version);           // a machine with a CUDA PyTorch's NCCL
            }
            finally { Environment.SetEnvironmentVariable("GRALORA_NCCL", saved); }
        }

        [Fact]
        public void GpuRanksAreCheckedBeforeStartingThemCudaFirstThenEveryDevice()
        {
            string? cudaMissing = TorchRuntime.CudaUnavailableReason();
            var ex = Assert.Throws<GraloraException>(() => Launchers.RequireGpuRanks(new[] { 0, 99 }));
            if (cudaMissing is not null)
            {
                Assert.Equal("CudaNotAvailable", ex.ErrorId);                  // this machine: CUDA is named first, with why
                Assert.Contains("'cuda:0' was requested but CUDA is not usable", ex.Message);
            }
            else
            {
                Assert.Equal("InvalidDevice", ex.ErrorId);                     // a GPU machine: the device that does not exist
                Assert.Contains("'cuda:99' does not exist", ex.Message);
            }
        }

        [Fact]
        public void TheUniqueIdIs128BytesAndRoundTrips()
        {
            var bytes = Enumerable.Range(0, 128).Select(i => (byte)(i * 7)).ToArray();
            Assert.Equal(128, System.Runtime.InteropServices.Marshal.SizeOf<NcclUniqueId>());   // NCCL_UNIQUE_ID_BYTES in nccl.h
            Assert.Equal(bytes, NcclUniqueId.FromBytes(bytes).ToBytes());
            Assert.Throws<ArgumentException>(() => NcclUniqueId.FromBytes(new byte[127]));
        }

        static NcclUniqueId Id(byte seed) => NcclUniqueId.FromBytes(Enumerable.Range(0, 128).Select(i => (byte)(i + seed)).ToArray());

        [Fact]
        public async Task RankZeroWritesTheIdFileAndTheOthersReadTheSameId()
        {
            string path = tmp.File("ids/gralora-nccl-run.id");
            var started = DateTime.UtcNow.AddSeconds(-1);
            var reader = Task.Run(() => NcclBootstrap.ViaFile(path, 1, () => throw new InvalidOperationException("only rank 0 creates"), started, TimeSpan.FromSeconds(30)));
            var written = NcclBootstrap.ViaFile(path, 0, () => Id(5), started, TimeSpan.FromSeconds(30));
            Assert.Equal(Id(5).ToBytes(), (await reader).ToBytes());
            Assert.Equal(Id(5).ToBytes(), written.ToBytes());
            NcclBootstrap.Remove(path);
            Assert.False(File.Exists(path));
        }

        [Fact]
        public void AStaleIdFileFromAnEarlierJobIsNotUsedAndTheWaitEndsWithAClearError()
        {
            string path = tmp.File("gralora-nccl-run.id");
            NcclBootstrap.ViaFile(path, 0, () => Id(1), DateTime.UtcNow, TimeSpan.FromSeconds(1));
            var ex = Assert.Throws<GraloraException>(() => NcclBootstrap.ViaFile(path, 1, () => Id(2), DateTime.UtcNow.AddMinutes(1), TimeSpan.FromSeconds(0.3)));
            Assert.Equal("DistributedTimeout", ex.ErrorId);
            Assert.Contains("only a stale id", ex.Message);
            Assert.Contains("GRALORA_SHARED_DIR", ex.Message);
        }

        [Fact]
        public void SeveralMachinesWithoutASharedFolderAreToldToSetOne()
        {
            var launch = new LaunchInfo(Launcher.TorchRun, 0, 8, 0, LocalWorldSize: 4, RunId: "a:1");
            string? saved = Environment.GetEnvironmentVariable("GRALORA_SHARED_DIR");
            Environment.SetEnvironmentVariable("GRALORA_SHARED_DIR", null);
            try
            {
                var ex = Assert.Throws<GraloraException>(() => NcclBootstrap.IdFile(launch));
                Assert.Equal("NcclIdFileNeeded", ex.ErrorId);
                Assert.Contains("GRALORA_SHARED_DIR", ex.Message);
                string oneMachine = NcclBootstrap.IdFile(launch with { WorldSize = 4 });
                Assert.Equal(Path.Combine(Path.GetTempPath(), "gralora-nccl-a_1.id"), oneMachine);
            }
            finally { Environment.SetEnvironmentVariable("GRALORA_SHARED_DIR", saved); }
        }
    }
}
