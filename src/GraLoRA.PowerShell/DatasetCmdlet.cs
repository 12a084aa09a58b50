using System;
using System.Management.Automation;
using GraLoRA.Data;

namespace GraLoRA.PowerShell
{
    /// <summary>
    /// Base of the cmdlets that read one dataset (a file, or records from the pipeline) the way Start-GraLoRATraining does:
    /// the parameters -Dataset / -InputObject / -Format declared once, and one way to open them.
    /// </summary>
    public abstract class DatasetCmdlet : GraloraCmdlet
    {
        /// <summary>The parameter set with a -Dataset file.</summary>
        protected const string PathSet = "Path";
        /// <summary>The parameter set with -InputObject records.</summary>
        protected const string RecordsSet = "Records";

        /// <summary><para type="description">The data file: .jsonl/.ndjson, .json, .csv/.tsv or .parquet.</para></summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet)]
        [Alias("Path")]
        public string Dataset { get; set; } = "";

        /// <summary><para type="description">Records instead of a file: hashtables or objects with the dataset's fields.</para></summary>
        [Parameter(Mandatory = true, ParameterSetName = RecordsSet)]
        public object[] InputObject { get; set; } = Array.Empty<object>();

        /// <summary><para type="description">The record format (default: detected from the first record's fields). Tokenized: records already tokenized for language modelling (input_ids, optional labels and attention_mask, as Hugging Face datasets and TRL store them), used as they are.</para></summary>
        [Parameter]
        [ValidateSet("Text", "Alpaca", "PromptCompletion", "Chat", "Classification", "Tokenized")]
        public string? Format { get; set; }

        /// <summary>The dataset given (resolved through the provider) and the name errors use for it.</summary>
        protected (string Name, DatasetSource Source) OpenDataset() => OpenDataset(ParameterSetName == RecordsSet, Dataset, InputObject);
    }
}
