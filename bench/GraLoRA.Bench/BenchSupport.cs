using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;

namespace GraLoRA.Bench
{
    /// <summary>What the benchmarks share: option parsing, /proc memory readings, and running themselves as a child process.</summary>
    static class BenchSupport
    {
        /// <summary>The value after <paramref name="name"/> in <paramref name="args"/>, else <paramref name="fallback"/>.</summary>
        public static string Arg(string[] args, string name, string fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        /// <summary>As <see cref="Arg(string[], string, string)"/>, as a whole number.</summary>
        public static int Arg(string[] args, string name, int fallback) => int.Parse(Arg(args, name, fallback.ToString()));

        /// <summary>A field of /proc/self/status (VmRSS, VmHWM, …) in bytes.</summary>
        public static long StatusBytes(string field) =>
            1024 * long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

        /// <summary>Runs this benchmark program with <paramref name="arguments"/> (as the app host or through `dotnet`); returns its stdout.</summary>
        public static string RunChild(IEnumerable<string> arguments)
        {
            string host = Environment.ProcessPath!;
            var argv = new List<string>();
            if (Path.GetFileNameWithoutExtension(host) == "dotnet") argv.Add(typeof(BenchSupport).Assembly.Location);
            argv.AddRange(arguments);
            var start = new ProcessStartInfo(host, argv) { RedirectStandardOutput = true, UseShellExecute = false };
            // A fixed mmap threshold: glibc otherwise raises it as large blocks are freed, so freed tensor memory may stay
            // resident or not depending on history, and peak RSS would measure the allocator rather than the tensors.
            if (Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is null) start.Environment["MALLOC_MMAP_THRESHOLD_"] = "131072";
            using var p = Process.Start(start)!;
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"benchmark child '{string.Join(' ', arguments)}' failed: {output}");
            return output.Trim();
        }
    }
}
