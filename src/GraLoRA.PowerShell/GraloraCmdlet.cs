using System;
using System.Collections.Generic;
using System.Management.Automation;

namespace GraLoRA.PowerShell
{
    /// <summary>
    /// Base of every GraLoRA cmdlet: turns Core's <see cref="GraloraException"/> into an
    /// ErrorRecord with the same stable ErrorId, so scripts can catch by id.
    /// </summary>
    public abstract class GraloraCmdlet : PSCmdlet
    {
        /// <summary>Runs <paramref name="body"/>, mapping Core failures to terminating errors.</summary>
        protected void Invoke(Action body)
        {
            try
            {
                body();
            }
            catch (GraloraException ex)
            {
                ThrowTerminatingError(new ErrorRecord(ex, ex.ErrorId, MapCategory(ex.Kind), ex.Target));
            }
            catch (OperationCanceledException) when (Stopping)
            {
                // Ctrl+C (StopProcessing) cancelled Core's work, e.g. a chat template rendering: the pipeline stops quietly.
                throw new PipelineStoppedException();
            }
        }

        /// <summary>The information-stream tag of every status line the module writes (select them with it from 6&gt;&amp;1, -InformationVariable or a job's Information stream).</summary>
        public const string StatusTag = "GraLoRA";

        /// <summary>
        /// Writes a status line (what Write-Host would show) on the information stream, from the pipeline thread. At an
        /// interactive prompt it is tagged PSHOST, so the host shows it like Write-Host; in a non-interactive session
        /// (pwsh -NonInteractive) or with $ProgressPreference / -ProgressAction SilentlyContinue it is written without
        /// that tag, so it shows only with -InformationAction Continue. Either way 6&gt;&amp;1, -InformationVariable and a
        /// job's Information stream receive it, tagged <see cref="StatusTag"/> (and <paramref name="tag"/>); nothing is
        /// written to the console directly.
        /// </summary>
        protected void WriteStatus(string message, bool noNewLine = false, string? tag = null)
        {
            var tags = new List<string> { StatusTag };
            if (tag is not null) tags.Add(tag);
            if (ShowStatus) tags.Add("PSHOST");
            WriteInformation(new HostInformationMessage { Message = message, NoNewLine = noNewLine }, tags.ToArray());
        }

        bool? _showStatus;

        /// <summary>Whether status lines are shown by the host: an interactive session with progress shown.</summary>
        protected bool ShowStatus => _showStatus ??= !HostSession.NonInteractive && ProgressShown();

        bool ProgressShown()
        {
            object? preference = MyInvocation.BoundParameters.TryGetValue("ProgressAction", out object? bound)
                ? bound
                : SessionState.PSVariable.GetValue("ProgressPreference");
            if (preference is PSObject ps) preference = ps.BaseObject;
            return preference is null
                || !LanguagePrimitives.TryConvertTo(preference, out ActionPreference action)
                || action is not (ActionPreference.SilentlyContinue or ActionPreference.Ignore);
        }

        /// <summary>
        /// Where a writer's output is optional, -Force without it is refused rather than ignored. What -Force means (replace
        /// an existing non-empty file or folder) is Core's one rule, <see cref="IO.OutputTarget"/>.
        /// </summary>
        protected static void RequireOutputForForce(bool force, string? output, string outputParameter)
        {
            if (force && output is null)
                throw new GraloraException("ForceWithoutOutput", GraloraErrorKind.InvalidArgument,
                    $"-Force replaces an existing -{outputParameter}, and no -{outputParameter} was given: add -{outputParameter}, or drop -Force.", outputParameter);
        }

        /// <summary>Resolves a user path through the PowerShell provider (relative paths, ~, PSDrives).</summary>
        protected string ResolvePath(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

        /// <summary>
        /// A dataset given as records (-InputObject, named so in errors) or as a file (resolved through the provider);
        /// returns the name errors and results use for it and the source.
        /// </summary>
        protected (string Name, GraLoRA.Data.DatasetSource Source) OpenDataset(bool fromRecords, string path, object[] records)
        {
            if (fromRecords) return ("InputObject", DatasetInput.FromObjects(records, "InputObject"));
            string full = ResolvePath(path);
            return (full, DatasetInput.FromPath(full));
        }

        internal static ErrorCategory MapCategory(GraloraErrorKind kind) => kind switch
        {
            GraloraErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
            GraloraErrorKind.NotFound => ErrorCategory.ObjectNotFound,
            GraloraErrorKind.InvalidData => ErrorCategory.InvalidData,
            GraloraErrorKind.InvalidOperation => ErrorCategory.InvalidOperation,
            GraloraErrorKind.NotAvailable => ErrorCategory.NotInstalled,
            GraloraErrorKind.IOFailure => ErrorCategory.WriteError,
            _ => ErrorCategory.NotSpecified,
        };
    }
}
