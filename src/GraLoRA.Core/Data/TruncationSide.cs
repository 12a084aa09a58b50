namespace GraLoRA.Data
{
    /// <summary>Which end of an over-long example is cut off.</summary>
    public enum TruncationSide
    {
        /// <summary>Keep the first MaxLength tokens, drop the end (TRL's default "keep_start").</summary>
        Right,
        /// <summary>Keep the last MaxLength tokens, drop the beginning (TRL's "keep_end"): keeps the response of a long prompt.</summary>
        Left,
    }
}
