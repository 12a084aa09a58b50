using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace GraLoRA.IO
{
    /// <summary>
    /// Checks for files that come from strangers (downloaded models and adapters): names they give must stay inside
    /// their folder, pickle files are refused, and JSON files must at least be JSON objects.
    /// </summary>
    public static class UntrustedFiles
    {
        /// <summary>
        /// The full path of <paramref name="relative"/> (a name that <paramref name="source"/> gives) inside
        /// <paramref name="folder"/>. Refused (ErrorId <paramref name="errorId"/>): absolute paths, '..' segments, and
        /// symbolic links whose target lies outside the folder — except, for a Hugging Face cache snapshot
        /// (…/snapshots/&lt;commit&gt;), links into that repository's blobs folder, which is how the cache is laid out.
        /// </summary>
        public static string ResolveInside(string folder, string relative, string source, string errorId = "PathOutsideFolder")
        {
            GraloraException Outside(string why) => new(errorId, GraloraErrorKind.InvalidData,
                $"'{source}' names '{relative}', which {why}: files a model or adapter folder refers to must lie inside that folder.", relative);
            if (string.IsNullOrWhiteSpace(relative) || relative.IndexOf('\0') >= 0) throw Outside("is not a file name");
            if (Path.IsPathRooted(relative) || relative.StartsWith('/') || relative.StartsWith('\\') || (relative.Length > 1 && relative[1] == ':'))
                throw Outside("is an absolute path");
            if (relative.Split('/', '\\').Any(segment => segment == ".."))
                throw Outside("climbs out with '..'");
            string root = Path.GetFullPath(folder);
            string full = Path.GetFullPath(Path.Combine(root, relative));
            if (!IsInside(full, root)) throw Outside("lies outside the folder");
            EnsureNoLinkEscape(root, full, () => Outside("is a symbolic link to a file outside the folder"));
            return full;
        }

        /// <summary>Refuses (with <paramref name="error"/>) a file in <paramref name="root"/> whose real path (links resolved) is outside it.</summary>
        internal static void EnsureNoLinkEscape(string root, string full, Func<GraloraException> error)
        {
            string realRoot = RealPath(root);
            string real = RealPath(full);
            if (IsInside(real, realRoot)) return;
            // A Hub cache snapshot: snapshots/<commit>/name → ../../blobs/<hash>.
            var snapshots = Directory.GetParent(realRoot);
            if (snapshots is { Name: "snapshots" } && snapshots.Parent is { } repo && IsInside(real, Path.Combine(repo.FullName, "blobs"))) return;
            throw error();
        }

        static bool IsInside(string path, string root)
        {
            string r = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
            return path.StartsWith(r, StringComparison.Ordinal) || path == root;
        }

        /// <summary>The path with every symbolic link along it resolved (what realpath(3) gives); parts that do not exist are kept as they are.</summary>
        internal static string RealPath(string path)
        {
            string full = Path.GetFullPath(path);
            string current = Path.GetPathRoot(full)!;
            var parts = full[current.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
            for (int i = 0; i < parts.Length; i++)
            {
                string next = Path.Combine(current, parts[i]);
                FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
                if (info.Exists && info.LinkTarget is not null)
                {
                    var target = info.ResolveLinkTarget(returnFinalTarget: true);
                    // A chain of links resolved to its end; its target may itself lie under links, so resolve that too.
                    next = target is null ? next : RealPath(target.FullName);
                }
                current = next;
            }
            return current;
        }

        /// <summary>File names of pickle-based PyTorch weights (never loaded: unpickling runs code the file chooses).</summary>
        static readonly string[] PickleExtensions = { ".bin", ".pt", ".pth", ".pkl", ".ckpt" };

        /// <summary>
        /// Throws "PickleNotSupported" when <paramref name="folder"/> holds pickled weights (e.g. pytorch_model.bin,
        /// adapter_model.bin) of which <paramref name="wanted"/> (a safetensors file) would be the safe form.
        /// </summary>
        internal static void RefusePickledInstead(string folder, string wanted, params string[] pickleNames)
        {
            foreach (var name in pickleNames)
            {
                string candidate = Path.Combine(folder, name);
                if (File.Exists(candidate)) throw PickleRefused(candidate, wanted);
            }
        }

        /// <summary>The error for a pickle file: why it is not read and how to convert it.</summary>
        public static GraloraException PickleRefused(string path, string wanted) =>
            new("PickleNotSupported", GraloraErrorKind.InvalidData,
                $"'{path}' holds pickled PyTorch weights. Pickle files can run arbitrary code while being loaded, so they are never read here. "
                + $"Convert them to safetensors ({wanted}) in Python, e.g. 'model = AutoModelForCausalLM.from_pretrained(folder); model.save_pretrained(out, safe_serialization=True)' "
                + "(for adapters: PeftModel.from_pretrained(...).save_pretrained(out)), or with the safetensors project's convert.py script — only for files you trust.", path);

        /// <summary>True when the first bytes look like a pickle (protocol 2+) or a torch.save zip archive.</summary>
        internal static bool LooksPickled(ReadOnlySpan<byte> head, string path) =>
            head.Length >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5
            || head.Length >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4
            || PickleExtensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase) && head.Length >= 1 && head[0] == 0x80;

        /// <summary>
        /// Parses a JSON config file that must hold an object; anything else (not JSON, invalid UTF-8, an array, too
        /// deep) is refused with <paramref name="errorId"/>, naming the file.
        /// </summary>
        public static JsonDocument ParseObject(string path, string errorId, string what)
        {
            JsonDocument doc;
            try
            {
                var info = new FileInfo(path);
                if (info.Length > 64L << 20)
                    throw new GraloraException(errorId, GraloraErrorKind.InvalidData, $"'{path}' ({info.Length} bytes) is too large for a {what}.", path);
                doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { MaxDepth = 64 });
            }
            catch (JsonException ex)
            {
                throw new GraloraException(errorId, GraloraErrorKind.InvalidData, $"'{path}' is not a valid {what}: not valid JSON ({ex.Message}).", path, ex);
            }
            catch (ArgumentException ex)
            {
                throw new GraloraException(errorId, GraloraErrorKind.InvalidData, $"'{path}' is not a valid {what}: {ex.Message}", path, ex);
            }
            try { CheckStrings(doc.RootElement); }
            catch (InvalidOperationException ex)
            {
                doc.Dispose();
                throw new GraloraException(errorId, GraloraErrorKind.InvalidData,
                    $"'{path}' is not a valid {what}: it holds a string with an invalid \\u escape (a lone UTF-16 surrogate): {ex.Message}", path, ex);
            }
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                var kind = doc.RootElement.ValueKind;
                doc.Dispose();
                throw new GraloraException(errorId, GraloraErrorKind.InvalidData, $"'{path}' is not a valid {what}: it holds {KindName(kind)}, not an object.", path);
            }
            return doc;
        }

        /// <summary>Decodes every string and property name once, so invalid ones (lone \u surrogates) fail here, not in a reader.</summary>
        static void CheckStrings(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.String: _ = e.GetString(); break;
                case JsonValueKind.Array: foreach (var item in e.EnumerateArray()) CheckStrings(item); break;
                case JsonValueKind.Object:
                    foreach (var p in e.EnumerateObject()) { _ = p.Name; CheckStrings(p.Value); }
                    break;
            }
        }

        /// <summary>A string field, null when absent or null; any other JSON kind names the field.</summary>
        internal static string? String(JsonElement obj, string field, Func<string, string, GraloraException> bad)
        {
            if (!obj.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind != JsonValueKind.String) throw bad(field, $"is {KindName(v.ValueKind)}, not a string");
            return v.GetString();
        }

        internal static string KindName(JsonValueKind kind) => kind switch
        {
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            JsonValueKind.Array => "a list",
            JsonValueKind.Object => "an object",
            JsonValueKind.String => "a string",
            _ => "null",
        };

        /// <summary>A whole number that fits an int; anything else names the field.</summary>
        internal static int Int(JsonElement v, string field, Func<string, string, GraloraException> bad) =>
            v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw bad(field, "is not a whole number");

        /// <summary>Every property name of an object, refusing duplicates (System.Text.Json would silently keep the last).</summary>
        internal static void RefuseDuplicateKeys(JsonElement obj, Func<string, GraloraException> duplicate)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in obj.EnumerateObject())
                if (!seen.Add(p.Name)) throw duplicate(p.Name);
        }
    }
}
