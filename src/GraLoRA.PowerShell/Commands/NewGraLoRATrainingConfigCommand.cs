using System.Collections;
using System.Collections.Specialized;
using System.Management.Automation;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Makes a training configuration: an ordered hashtable of Start-GraLoRATraining's optimisation, data and output settings.</para>
    /// <para type="description">Takes the same optimisation, data and output parameters as Start-GraLoRATraining (all but -Model, the training data, -Adapter and resuming) and outputs an ordered hashtable holding only the ones given, keyed by parameter name, in a fixed order; switches become $true or $false. Pass it to Start-GraLoRATraining -Config, where parameters given explicitly win over it. Being a hashtable, it round-trips through JSON (ConvertTo-Json, ConvertFrom-Json -AsHashtable) and PowerShell data files (Import-PowerShellDataFile); unknown keys in a loaded configuration are an error (InvalidTrainingConfig).</para>
    /// </summary>
    /// <example><code>$config = New-GraLoRATrainingConfig -LearningRate 1e-3 -MaxSteps 200 -BatchSize 4 -OutputPath ./out
    /// $model | Start-GraLoRATraining ./data/train.jsonl -Config $config</code><para>Trains with the settings of the configuration.</para></example>
    /// <example><code>New-GraLoRATrainingConfig -LearningRate 1e-3 -MaxSteps 200 | ConvertTo-Json | Set-Content run.json
    /// $model | Start-GraLoRATraining ./data/train.jsonl -Config (Get-Content run.json -Raw | ConvertFrom-Json -AsHashtable) -MaxSteps 20</code><para>Saves a configuration as JSON, then trains from it with -MaxSteps overriding its value.</para></example>
    [Cmdlet(VerbsCommon.New, "GraLoRATrainingConfig")]
    [OutputType(typeof(OrderedDictionary))]
    public sealed class NewGraLoRATrainingConfigCommand : TrainingSettingsCmdlet
    {
        #region Overrides
        /// <inheritdoc />
        protected override void EndProcessing() => Invoke(() => WriteObject(BoundSettings()));
        #endregion
    }
}
