using System;
using System.Collections.Generic;

namespace GraLoRA.Data
{
    /// <summary>Splits items into training and validation parts.</summary>
    public static class DatasetSplit
    {
        /// <summary>
        /// The number of validation items for <paramref name="count"/> items and <paramref name="fraction"/>:
        /// round(count × fraction) (midpoints away from zero), at least 1 and at most count − 1 when the fraction is above
        /// 0 and there are at least 2 items; 0 when the fraction is 0.
        /// </summary>
        public static int ValidationCount(int count, double fraction)
        {
            if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
            if (!(fraction >= 0 && fraction < 1))
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument, $"Validation fraction {fraction} is out of range: use a value from 0 up to, not including, 1.", fraction);
            if (fraction == 0 || count < 2) return 0;
            int n = (int)Math.Round(count * fraction, MidpointRounding.AwayFromZero);
            return Math.Clamp(n, 1, count - 1);
        }

        /// <summary>
        /// Shuffles <paramref name="items"/> with <see cref="DataShuffle.Permutation"/>(count, seed) and takes the last
        /// <see cref="ValidationCount"/> of the shuffled order for validation, the rest (in shuffled order) for training.
        /// </summary>
        public static (List<T> Train, List<T> Validation) Split<T>(IReadOnlyList<T> items, double fraction, int seed)
        {
            ArgumentNullException.ThrowIfNull(items);
            int validation = ValidationCount(items.Count, fraction);
            var shuffled = DataShuffle.Shuffled(items, seed);
            int trainCount = items.Count - validation;
            return (shuffled.GetRange(0, trainCount), shuffled.GetRange(trainCount, validation));
        }
    }
}
