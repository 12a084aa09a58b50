using System.IO;
using System.Linq;
using System.Management.Automation;
using GraLoRA.Adapters;
using GraLoRA.Models;
using GraLoRA.PowerShell.Completion;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Turns a GraLoRA adapter into a plain LoRA adapter (PEFT format for vLLM, TGI and PEFT, or a GGUF LoRA for llama.cpp and Ollama).</para>
    /// <para type="description">A GraLoRA ΔW has rank at most k·r + hybrid_r, so by default the conversion is exact: each layer's ΔW is factored (SVD, one layer at a time) into LoRA factors of that rank, reproduced to float32 rounding. -Rank n keeps the n strongest directions in every layer; -Energy e keeps, per layer, the fewest directions holding the share e of ΔW's squared singular values (layers then differ: rank_pattern and alpha_pattern are written). lora_alpha equals each layer's rank, so PEFT's scaling alpha/r is 1 everywhere, and so is the single lora_alpha/r that vLLM and TGI apply. Modules to save and trained biases travel with a PEFT adapter; a GGUF adapter refuses them (GgufUnsupportedAdapter). The model is not changed.</para>
    /// <para type="description">-Format peft (default) writes a folder (adapter_config.json, adapter_model.safetensors) that Import-GraLoRAAdapter loads back as LoRA; an existing non-empty folder is replaced only with -Force. -Format gguf writes one file for llama.cpp's --lora or Ollama's ADAPTER, to be used with the base model exported by Export-BaseModel -Format gguf without adapters. Outputs the path, the common rank and each layer's exact rank, kept rank and relative error ‖ΔW − B·A‖/‖ΔW‖ (the Layers property), or with -PassThru the model.</para>
    /// </summary>
    /// <example><code>$model | ConvertTo-LoRAAdapter ./adapters/math-lora</code><para>Writes the current GraLoRA adapter as an exact PEFT LoRA adapter (rank k·r + hybrid_r): `vllm serve &lt;base&gt; --enable-lora --lora-modules math=./adapters/math-lora` serves it.</para></example>
    /// <example><code>($model | ConvertTo-LoRAAdapter ./adapters/math-e99 -Energy 0.99).Layers | Format-Table</code><para>Truncates each layer to 99 % of its ΔW energy and lists each layer's kept rank and relative error.</para></example>
    /// <example><code>$model | ConvertTo-LoRAAdapter ./math.gguf -Format gguf -Force</code><para>Writes the adapter as a GGUF LoRA adapter for `llama-cli -m base.gguf --lora ./math.gguf` or an Ollama Modelfile's ADAPTER line.</para></example>
    [Cmdlet(VerbsData.ConvertTo, "LoRAAdapter", SupportsShouldProcess = true, DefaultParameterSetName = ExactSet)]
    [OutputType(typeof(LoraConversionResult))]
    [OutputType(typeof(BaseModel))]
    public sealed class ConvertToLoRAAdapterCommand : GraloraCmdlet
    {
        const string ExactSet = "Exact", RankSet = "Rank", EnergySet = "Energy";

        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Folder to write (-Format peft) or .gguf file (-Format gguf).</para></summary>
        [Parameter(Mandatory = true, Position = 0)]
        public string Path { get; set; } = "";

        /// <summary><para type="description">The GraLoRA adapter to convert (default: the current adapter: the only active one, else the only one; several → AmbiguousAdapter, none → NoActiveAdapter).</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(AdapterNameCompleter))]
        public string? Name { get; set; }

        /// <summary><para type="description">Keep this many directions in every layer (at most the exact rank k·r + hybrid_r; else RankAboveExact).</para></summary>
        [Parameter(Mandatory = true, ParameterSetName = RankSet)]
        public int Rank { get; set; }

        /// <summary><para type="description">Keep per layer the fewest directions holding this share of ΔW's squared singular values, in (0, 1] (e.g. 0.99).</para></summary>
        [Parameter(Mandatory = true, ParameterSetName = EnergySet)]
        public double Energy { get; set; }

        /// <summary><para type="description">peft (default): a PEFT LoRA folder. gguf: a GGUF LoRA adapter file.</para></summary>
        [Parameter]
        [ValidateSet("peft", "gguf")]
        public string Format { get; set; } = "peft";

        /// <summary><para type="description">Replace an existing non-empty folder (or, with -Format gguf, file) at -Path (without -Force that is an OutputExists error).</para></summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary><para type="description">Output the model instead of the conversion result.</para></summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            string name = Model.Adapters.Current(Name);
            string target = ResolvePath(Path);
            var options = new LoraConversionOptions
            {
                Rank = ParameterSetName == RankSet ? Rank : null,
                Energy = ParameterSetName == EnergySet ? Energy : null,
            };
            options.Validate();
            if (ShouldProcess(target, $"Convert adapter '{name}' to LoRA ({Format})"))
            {
                var result = Model.ConvertToLora(name, target, options, Format == "gguf", Force);
                foreach (var layer in result.Layers)
                    WriteVerbose($"{layer.Module}: rank {layer.Rank} of {layer.ExactRank}, relative error {layer.RelativeError:E2}");
                if (!PassThru) WriteObject(result);
            }
            if (PassThru) WriteObject(Model);
        });
        #endregion
    }
}
