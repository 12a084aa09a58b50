using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Text;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>A byte-level tokenizer (ids 0..255 = bytes; 256 BOS, 257 EOS, 258 pad, 259 im_start, 260 im_end) with the tiny models' ChatML template.</summary>
    public sealed class ByteTokenizerFixture : IDisposable
    {
        public const int Bos = 256, Eos = 257, Pad = 258, ImStart = 259, ImEnd = 260;
        readonly TempDirectory _dir = new();

        public ByteTokenizerFixture()
        {
            ByteLevelTokenizerFactory.Write(_dir.Path, new ByteLevelTokenizerOptions { ChatTemplate = TinyModelFactory.ChatTemplate });
            Tokenizer = HfTokenizer.Load(_dir.Path);
        }

        public HfTokenizer Tokenizer { get; }

        public void Dispose()
        {
            Tokenizer.Dispose();
            _dir.Dispose();
        }
    }

    internal static class DataTestUtil
    {
        /// <summary>
        /// Expected ids written by hand: an int is one special token, a string is its UTF-8 bytes (one token each with
        /// the byte-level tokenizer).
        /// </summary>
        public static List<int> Ids(params object[] parts)
        {
            var ids = new List<int>();
            foreach (object p in parts)
            {
                if (p is int id) ids.Add(id);
                else foreach (byte b in Encoding.UTF8.GetBytes((string)p)) ids.Add(b);
            }
            return ids;
        }

        public static int[] Ignored(int count) => Enumerable.Repeat(TrainingExample.IgnoreIndex, count).ToArray();

        public static DataRecord Record(params (string Key, object? Value)[] fields) =>
            new(fields.ToDictionary(f => f.Key, f => f.Value), "test.jsonl", 1, RecordPositionKind.Line);

        public static Dictionary<string, object?> Message(string role, string content) => new() { ["role"] = role, ["content"] = content };

        public static string Write(TempDirectory dir, string name, string content)
        {
            string path = dir.File(name);
            File.WriteAllText(path, content, new UTF8Encoding(false));
            return path;
        }

        public static GraloraException Fails(Action action) => Assert.Throws<GraloraException>(action);

        public static GraloraException FailsReading(string path, DatasetFileFormat? format = null) =>
            Assert.Throws<GraloraException>(() => DatasetReader.Read(path, format).ToList());
    }
}
