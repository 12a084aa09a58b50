using System;

namespace GraLoRA
{
    /// <summary>Broad kind of a failure, mapped by the PowerShell layer onto its ErrorCategory.</summary>
    public enum GraloraErrorKind
    {
        /// <summary>An argument or option has a value that cannot work.</summary>
        InvalidArgument,
        /// <summary>A file or folder does not exist.</summary>
        NotFound,
        /// <summary>A file exists but its content is not what was expected.</summary>
        InvalidData,
        /// <summary>The operation does not fit the current state (e.g. merging twice).</summary>
        InvalidOperation,
        /// <summary>The machine or build lacks what is needed (e.g. CUDA).</summary>
        NotAvailable,
        /// <summary>Writing or reading failed.</summary>
        IOFailure,
    }

    /// <summary>
    /// The one exception type Core throws for user-facing failures: a stable
    /// <see cref="ErrorId"/> (testable from Pester with -ErrorId) and a message that names
    /// the offending value and the fix.
    /// </summary>
    public sealed class GraloraException : Exception
    {
        /// <summary>Stable identifier, e.g. "CudaNotAvailable".</summary>
        public string ErrorId { get; }
        /// <summary>What kind of failure this is.</summary>
        public GraloraErrorKind Kind { get; }
        /// <summary>The object the error is about (a path, a module name, a value), if any.</summary>
        public object? Target { get; }

        /// <summary>Creates the exception.</summary>
        public GraloraException(string errorId, GraloraErrorKind kind, string message, object? target = null, Exception? inner = null)
            : base(message, inner)
        {
            ErrorId = errorId;
            Kind = kind;
            Target = target;
        }
    }
}
