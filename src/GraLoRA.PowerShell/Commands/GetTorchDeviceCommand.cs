using System.Management.Automation;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Reports the compute devices, libtorch version, threads and whether CUDA is usable (and why not).</para>
    /// </summary>
    /// <example><code>Get-TorchDevice</code><para>Shows the devices (cpu, and cuda:N on a CUDA build with a visible GPU), the libtorch and TorchSharp versions, threads and why CUDA is or is not usable.</para></example>
    /// <example><code>if ((Get-TorchDevice).CudaAvailable) { 'cuda' } else { 'cpu' }</code><para>Chooses the device to load a model on.</para></example>
    [Cmdlet(VerbsCommon.Get, "TorchDevice")]
    [OutputType(typeof(TorchDeviceInfo))]
    public sealed class GetTorchDeviceCommand : GraloraCmdlet
    {
        /// <inheritdoc />
        protected override void EndProcessing() => Invoke(() => WriteObject(TorchRuntime.GetDeviceInfo()));
    }
}
