using System.Management.Automation;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Reports the compute devices, which libtorch was loaded and from where, its version, threads and whether CUDA is usable (and why not).</para>
    /// <para type="description">By default libtorch comes with TorchSharp (NuGet, CPU). To use the libtorch of a PyTorch installation instead (for example a CUDA build on a GPU machine), set $env:GRALORA_LIBTORCH to its torch/lib folder before importing the module, or pass -LibTorch as the session's first GraLoRA command. A PyTorch whose version is not TorchSharp's (2.10) is used with a warning when every function TorchSharp needs resolves, and refused (ErrorId LibTorchIncompatible) when one is missing.</para>
    /// </summary>
    /// <example><code>Get-TorchDevice</code><para>Shows the devices (cpu, and cuda:N with a CUDA libtorch and a visible GPU), where libtorch came from, the libtorch and TorchSharp versions, threads and why CUDA is or is not usable.</para></example>
    /// <example><code>if ((Get-TorchDevice).CudaAvailable) { 'cuda' } else { 'cpu' }</code><para>Chooses the device to load a model on.</para></example>
    /// <example><code>Get-TorchDevice -LibTorch (python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")</code><para>As the first GraLoRA command of a session: loads libtorch from the local PyTorch installation (CUDA when it is a CUDA build) and reports it.</para></example>
    [Cmdlet(VerbsCommon.Get, "TorchDevice")]
    [OutputType(typeof(TorchDeviceInfo))]
    public sealed class GetTorchDeviceCommand : GraloraCmdlet
    {
        /// <summary>
        /// <para type="description">A PyTorch installation's torch/lib folder to load libtorch from, instead of the libtorch bundled with TorchSharp (overrides $env:GRALORA_LIBTORCH). Only before libtorch is loaded in this session; afterwards only the folder already in use is accepted.</para>
        /// </summary>
        [Parameter(Position = 0)]
        [ValidateNotNullOrEmpty]
        public string? LibTorch { get; set; }

        /// <inheritdoc />
        protected override void EndProcessing() => Invoke(() =>
        {
            if (LibTorch != null) TorchRuntime.UseLibTorchFrom(ResolvePath(LibTorch));
            WriteObject(TorchRuntime.GetDeviceInfo());
        });
    }
}
