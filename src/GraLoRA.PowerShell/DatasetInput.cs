using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Text;

namespace GraLoRA.PowerShell
{
    /// <summary>What the training and evaluation cmdlets share: dataset sources from paths or PowerShell objects, the format name, the tokenizer.</summary>
    internal static class DatasetInput
    {
        /// <summary>The names -Format accepts (DatasetFormat's members).</summary>
        public const string FormatNames = "Text, Alpaca, PromptCompletion, Chat, Classification";

        /// <summary>A dataset file (format from its extension); the path is resolved by the caller.</summary>
        public static DatasetSource FromPath(string fullPath) => DatasetSource.FromFile(fullPath);

        /// <summary>Records given as hashtables, dictionaries or objects (PSCustomObject, ConvertFrom-Json output...).</summary>
        public static DatasetSource FromObjects(IEnumerable<object?> items, string name) =>
            DatasetSource.FromRecords(items.Select(ToRecord).ToList(), name);

        /// <summary>null → detected; else the DatasetFormat named (ValidateSet has checked the name).</summary>
        public static DatasetFormat? ParseFormat(string? name) =>
            string.IsNullOrEmpty(name) ? null : (DatasetFormat)Enum.Parse(typeof(DatasetFormat), name, ignoreCase: true);

        /// <summary>The model's tokenizer, or TokenizerNotFound.</summary>
        public static HfTokenizer Tokenizer(BaseModel model, string what) =>
            model.Tokenizer ?? throw new GraloraException("TokenizerNotFound", GraloraErrorKind.NotFound,
                $"{what} needs the model's tokenizer, and '{model.Path}' has no tokenizer.json.", model.Path);

        /// <summary>One record: null stays null (the reader reports it); dictionaries and objects become string-keyed dictionaries.</summary>
        static IReadOnlyDictionary<string, object?>? ToRecord(object? item) => Plain(item) switch
        {
            null => null,
            IReadOnlyDictionary<string, object?> d => d,
            object other => throw new GraloraException("InvalidDatasetRecord", GraloraErrorKind.InvalidData,
                $"-InputObject item '{other}' ({other.GetType().Name}) is not a record: pass hashtables or objects with the dataset's fields, e.g. @{{ prompt = 'Hi'; completion = 'Hello' }}.", other),
        };

        /// <summary>
        /// A PowerShell value as plain .NET data: PSObject wrappers removed, hashtables and property bags (PSCustomObject)
        /// as string-keyed dictionaries, arrays and lists as lists, recursively; strings and scalars unchanged.
        /// </summary>
        internal static object? Plain(object? value)
        {
            switch (value)
            {
                case null: return null;
                case PSObject ps when ps.BaseObject is PSCustomObject:
                {
                    var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                    foreach (var p in ps.Properties)
                        if (p.MemberType is PSMemberTypes.NoteProperty or PSMemberTypes.Property) d[p.Name] = Plain(p.Value);
                    return d;
                }
                case PSObject ps: return Plain(ps.BaseObject);
                case string: return value;
                case IDictionary dict:
                {
                    var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                    foreach (DictionaryEntry e in dict) d[Convert.ToString(Plain(e.Key), System.Globalization.CultureInfo.InvariantCulture) ?? ""] = Plain(e.Value);
                    return d;
                }
                case byte[]: return value;
                case IEnumerable items:
                {
                    var list = new List<object?>();
                    foreach (object? item in items) list.Add(Plain(item));
                    return list;
                }
                default: return value;
            }
        }
    }
}
