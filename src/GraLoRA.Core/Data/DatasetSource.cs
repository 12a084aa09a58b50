using System;
using System.Collections.Generic;

namespace GraLoRA.Data
{
    /// <summary>Where a dataset comes from: a file (with its format, or from the extension) or in-memory records.</summary>
    public sealed class DatasetSource
    {
        readonly Func<IEnumerable<DataRecord>> _read;

        DatasetSource(string name, Func<IEnumerable<DataRecord>> read)
        {
            Name = name;
            _read = read;
        }

        /// <summary>The file path or the name of the in-memory data.</summary>
        public string Name { get; }

        /// <summary>A dataset file; <paramref name="format"/> null: from the extension.</summary>
        public static DatasetSource FromFile(string path, DatasetFileFormat? format = null)
        {
            ArgumentNullException.ThrowIfNull(path);
            return new DatasetSource(path, () => DatasetReader.Read(path, format));
        }

        /// <summary>In-memory records (e.g. PowerShell objects converted to dictionaries); errors call them <paramref name="name"/>.</summary>
        public static DatasetSource FromRecords(IEnumerable<IReadOnlyDictionary<string, object?>?> records, string name = "input")
        {
            ArgumentNullException.ThrowIfNull(records);
            ArgumentNullException.ThrowIfNull(name);
            return new DatasetSource(name, () => DatasetReader.FromRecords(records, name));
        }

        /// <summary>Reads the records (see <see cref="DatasetReader"/>).</summary>
        public IEnumerable<DataRecord> Read() => _read();

        /// <inheritdoc/>
        public override string ToString() => Name;
    }
}
