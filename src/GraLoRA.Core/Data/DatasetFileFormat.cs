namespace GraLoRA.Data
{
    /// <summary>How a dataset file is stored.</summary>
    public enum DatasetFileFormat
    {
        /// <summary>JSON Lines (<c>.jsonl</c>, <c>.ndjson</c>): one JSON object per line; blank lines are skipped.</summary>
        Jsonl,
        /// <summary>JSON (<c>.json</c>): a top-level array of objects, or an object whose "data" or "train" property is one.</summary>
        Json,
        /// <summary>CSV (<c>.csv</c>, RFC 4180) with a header row; <c>.tsv</c> reads the same way with tabs.</summary>
        Csv,
        /// <summary>Apache Parquet (<c>.parquet</c>), e.g. a Hugging Face datasets export.</summary>
        Parquet,
    }
}
