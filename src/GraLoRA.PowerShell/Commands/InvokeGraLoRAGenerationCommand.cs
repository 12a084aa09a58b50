using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using GraLoRA.Generation;
using GraLoRA.Models;
using GraLoRA.Text;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Generates text with a model (and its active adapters) from prompts or from chat messages.</para>
    /// <para type="description">Defaults come from the model's generation_config.json; each parameter given overrides one. -Temperature, -TopK or -TopP imply sampling unless -Greedy is given. With -Messages the tokenizer's chat template is applied. With -Stream each piece of text is written as it arrives (one prompt only) to the information stream, tagged GraLoRA.Stream: at an interactive prompt it shows like Write-Host -NoNewline; in a -NonInteractive session or with $ProgressPreference = 'SilentlyContinue' it is kept off the screen (shown with -InformationAction Continue; collected with -InformationVariable or 6&gt;&amp;1, and by a job's Information stream). The pieces are never output objects, so the output is always the GenerationResult objects, and nothing is written to the console directly. Ctrl+C stops generation and returns what was generated; during chat-template rendering it stops the command at once. A hostile or broken template fails with ChatTemplateTooDeep or ChatTemplateBudgetExceeded instead of hanging or ending the session.</para>
    /// </summary>
    /// <example><code>$model | Invoke-GraLoRAGeneration 'The capital of France is' -MaxNewTokens 20</code><para>Continues a prompt greedily for up to 20 new tokens.</para></example>
    /// <example><code>Invoke-GraLoRAGeneration -Model $model -Messages @{ role = 'user'; content = 'Add 3 and 6.' } -Stream</code><para>Answers a chat message through the model's chat template, writing the text as it is generated.</para></example>
    /// <example><code>$result = $model | Invoke-GraLoRAGeneration 'Once upon a time' -Stream -InformationVariable pieces
    /// ($pieces | Where-Object Tags -Contains 'GraLoRA.Stream').MessageData.Message -join ''</code><para>In a script, collects the streamed pieces (they add up to the generated text) while the GenerationResult is the output.</para></example>
    [Cmdlet(VerbsLifecycle.Invoke, "GraLoRAGeneration", DefaultParameterSetName = PromptSet)]
    [OutputType(typeof(GenerationResult))]
    public sealed class InvokeGraLoRAGenerationCommand : GraloraCmdlet
    {
        const string PromptSet = "Prompt";
        const string ChatSet = "Chat";
        /// <summary>The information tag of the text pieces -Stream writes (beside GraLoRA).</summary>
        const string StreamTag = "GraLoRA.Stream";
        CancellationTokenSource? _cancel;

        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Prompt text(s); several prompts run as one left-padded batch.</para></summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = PromptSet)]
        public string[] Prompt { get; set; } = Array.Empty<string>();

        /// <summary><para type="description">Chat messages: hashtables or objects with 'role' and 'content' (e.g. @{ role = 'user'; content = 'Hi' }).</para></summary>
        [Parameter(Mandatory = true, ParameterSetName = ChatSet)]
        public object[] Messages { get; set; } = Array.Empty<object>();

        /// <summary><para type="description">Extra variables for the chat template, e.g. @{ enable_thinking = $false }.</para></summary>
        [Parameter(ParameterSetName = ChatSet)]
        public Hashtable? TemplateVariable { get; set; }

        /// <summary><para type="description">Most new tokens per prompt.</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int MaxNewTokens { get; set; }

        /// <summary><para type="description">Sample instead of greedy decoding.</para></summary>
        [Parameter]
        public SwitchParameter DoSample { get; set; }

        /// <summary><para type="description">Greedy decoding even if the model's defaults sample.</para></summary>
        [Parameter]
        public SwitchParameter Greedy { get; set; }

        /// <summary><para type="description">Sampling temperature (&gt; 0).</para></summary>
        [Parameter]
        public double Temperature { get; set; }

        /// <summary><para type="description">Keep only the k most likely tokens (0 = off).</para></summary>
        [Parameter, ValidateRange(0, int.MaxValue)]
        public int TopK { get; set; }

        /// <summary><para type="description">Nucleus sampling threshold in (0, 1].</para></summary>
        [Parameter]
        public double TopP { get; set; }

        /// <summary><para type="description">Penalty for repeated tokens (1 = off).</para></summary>
        [Parameter]
        public double RepetitionPenalty { get; set; }

        /// <summary><para type="description">Stop a sequence once its text contains one of these.</para></summary>
        [Parameter]
        public string[]? StopString { get; set; }

        /// <summary><para type="description">Seed for reproducible sampling.</para></summary>
        [Parameter]
        public long Seed { get; set; }

        /// <summary><para type="description">Recompute the whole sequence each step instead of using the key/value cache.</para></summary>
        [Parameter]
        public SwitchParameter NoCache { get; set; }

        /// <summary><para type="description">Write the text as it is generated, piece by piece, to the information stream (tag GraLoRA.Stream; shown like Write-Host -NoNewline at an interactive prompt).</para></summary>
        [Parameter]
        public SwitchParameter Stream { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            var options = BuildOptions();
            _cancel = new CancellationTokenSource();
            try
            {
                if (ParameterSetName == ChatSet)
                {
                    var messages = Messages.Select(ToChatMessage).ToArray();
                    var variables = TemplateVariable?.Cast<DictionaryEntry>().ToDictionary(e => e.Key.ToString()!, e => Unwrap(e.Value));
                    WriteVerbose($"Rendering the chat template of '{Model.Name}' for {messages.Length} message(s)");
                    var result = Model.Chat(messages, options, Stream ? text => WriteStatus(text, noNewLine: true, StreamTag) : null, _cancel.Token, variables);
                    if (Stream) WriteStatus("", tag: StreamTag);
                    WriteObject(result);
                }
                else
                {
                    bool stream = Stream && Prompt.Length == 1;
                    if (Stream && !stream) WriteWarning("-Stream writes one prompt's text as it arrives; with several prompts the results are returned at the end.");
                    var results = Model.Generate(Prompt, options, stream ? (_, text) => WriteStatus(text, noNewLine: true, StreamTag) : null, _cancel.Token);
                    if (stream) WriteStatus("", tag: StreamTag);
                    foreach (var r in results) WriteObject(r);
                }
            }
            finally
            {
                _cancel.Dispose();
                _cancel = null;
            }
        });

        /// <inheritdoc />
        protected override void StopProcessing() => _cancel?.Cancel();
        #endregion

        #region Private methods
        bool Bound(string name) => MyInvocation.BoundParameters.ContainsKey(name);

        GenerationOptions BuildOptions()
        {
            var o = Model.GenerationDefaults;
            bool sampleHint = Bound(nameof(Temperature)) || Bound(nameof(TopK)) || Bound(nameof(TopP));
            return o with
            {
                MaxNewTokens = Bound(nameof(MaxNewTokens)) ? MaxNewTokens : o.MaxNewTokens,
                DoSample = Greedy ? false : Bound(nameof(DoSample)) ? DoSample.IsPresent : sampleHint || o.DoSample,
                Temperature = Bound(nameof(Temperature)) ? Temperature : o.Temperature,
                TopK = Bound(nameof(TopK)) ? TopK : o.TopK,
                TopP = Bound(nameof(TopP)) ? TopP : o.TopP,
                RepetitionPenalty = Bound(nameof(RepetitionPenalty)) ? RepetitionPenalty : o.RepetitionPenalty,
                StopStrings = StopString ?? o.StopStrings,
                Seed = Bound(nameof(Seed)) ? Seed : o.Seed,
                UseCache = !NoCache,
            };
        }

        static object? Unwrap(object? value) => value is PSObject ps ? ps.BaseObject : value;

        static ChatMessage ToChatMessage(object item)
        {
            var value = Unwrap(item);
            if (value is ChatMessage message) return message;
            string? Get(string name) => value switch
            {
                IDictionary d => d.Contains(name) ? Unwrap(d[name])?.ToString() : null,
                _ => PSObject.AsPSObject(value).Properties[name]?.Value?.ToString(),
            };
            string? role = Get("role"), content = Get("content");
            if (role is null || content is null)
                throw new GraloraException("InvalidChatMessage", GraloraErrorKind.InvalidArgument,
                    $"Chat message '{value}' needs 'role' and 'content', e.g. @{{ role = 'user'; content = 'Hello' }}.", value);
            return new ChatMessage(role, content);
        }
        #endregion
    }
}
