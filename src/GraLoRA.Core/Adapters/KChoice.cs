using System.Globalization;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// GraLoRA's grid size k as asked for: a whole number, or <see cref="Auto"/> — the paper's rule of thumb r/k² ≈ 8
    /// (<see cref="AdapterConfig.AutoK"/>) applied to each module's own rank, so modules that a RankPattern gives another
    /// rank get their own k. Core resolves it (<see cref="AdapterConfig.OptionsFor"/>, <see cref="AdapterConfig.Resolved"/>);
    /// front ends only pass it on. <c>default(KChoice)</c> is Auto.
    /// </summary>
    public readonly record struct KChoice
    {
        KChoice(int? value) => Value = value;

        /// <summary>The k asked for, or null for Auto.</summary>
        public int? Value { get; }

        /// <summary>Whether k follows the rule of thumb.</summary>
        public bool IsAuto => Value is null;

        /// <summary>k from the rule of thumb, per module rank.</summary>
        public static KChoice Auto => default;

        /// <summary>Exactly <paramref name="k"/> (checked against each module when the adapter is added).</summary>
        public static KChoice Fixed(int k) => new(k);

        /// <summary>A whole number means that k.</summary>
        public static implicit operator KChoice(int k) => Fixed(k);

        /// <summary>The k for a module of rank <paramref name="rank"/>.</summary>
        public int For(int rank) => Value ?? AdapterConfig.AutoK(rank);

        /// <summary>"Auto" (any case) or a whole number; anything else is InvalidK naming the text.</summary>
        public static KChoice Parse(string text)
        {
            string t = (text ?? "").Trim();
            if (t.Equals("Auto", System.StringComparison.OrdinalIgnoreCase)) return Auto;
            if (int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k)) return Fixed(k);
            throw new GraloraException("InvalidK", GraloraErrorKind.InvalidArgument,
                $"K '{text}' is neither a whole number nor Auto. Use 2 for r 16–32, 4 for r 64–128, or Auto.", text);
        }

        /// <inheritdoc />
        public override string ToString() => Value?.ToString(CultureInfo.InvariantCulture) ?? "Auto";
    }
}
