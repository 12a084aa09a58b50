using System.Management.Automation;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Reports the compute devices, libtorch version, threads and whether CUDA is usable (and why not).</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "TorchDevice")]
    [OutputType(typeof(TorchDeviceInfo))]
    public sealed class GetTorchDeviceCommand : GraloraCmdlet
    {
        /// <inheritdoc />
        protected override void EndProcessing() => Invoke(() => WriteObject(TorchRuntime.GetDeviceInfo()));
    }
}
