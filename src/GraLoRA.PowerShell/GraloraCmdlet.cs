using System;
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
        }

        /// <summary>Resolves a user path through the PowerShell provider (relative paths, ~, PSDrives).</summary>
        protected string ResolvePath(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

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
