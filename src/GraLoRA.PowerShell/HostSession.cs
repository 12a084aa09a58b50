using System;

namespace GraLoRA.PowerShell
{
    /// <summary>What the process was started as: pwsh's -NonInteractive switch (CI, scripts run by automation).</summary>
    internal static class HostSession
    {
        static readonly Lazy<bool> _nonInteractive = new(() => IsNonInteractive(Environment.GetCommandLineArgs()));

        /// <summary>Whether this process is a pwsh started with -NonInteractive (any abbreviation pwsh accepts, from -noni on).</summary>
        public static bool NonInteractive => _nonInteractive.Value;

        /// <summary>
        /// Reads pwsh's command line as pwsh does: switches up to -File or -Command (what follows belongs to the script);
        /// -NonInteractive may be shortened to any prefix from -noni, with one or two dashes (or / on Windows).
        /// </summary>
        public static bool IsNonInteractive(string[] args)
        {
            for (int i = 1; i < args.Length; i++)
            {
                string arg = args[i];
                if (arg.Length < 2 || (arg[0] != '-' && !(OperatingSystem.IsWindows() && arg[0] == '/'))) continue;
                string key = arg.TrimStart('-', '/').ToLowerInvariant();
                if (key.Length == 0) continue;
                if ("file".StartsWith(key, StringComparison.Ordinal) || "command".StartsWith(key, StringComparison.Ordinal)
                    || key is "e" or "ec" || "encodedcommand".StartsWith(key, StringComparison.Ordinal) && key.Length >= 2)
                    return false;
                if (key.StartsWith("noni", StringComparison.Ordinal) && "noninteractive".StartsWith(key, StringComparison.Ordinal))
                    return true;
            }
            return false;
        }
    }
}
