using System;
using System.Collections.Generic;

namespace GraLoRA.Data
{
    /// <summary>
    /// Reproducible shuffling: a Fisher–Yates shuffle driven by <see cref="System.Random"/> created with an explicit
    /// seed (.NET's seeded Random is the same sequence on every platform and .NET version since Core 1.0).
    /// </summary>
    /// <remarks>
    /// <see cref="Permutation"/> starts from 0, 1, …, n−1 and, for i from n−1 down to 1, swaps element i with element
    /// <c>random.Next(i + 1)</c>. Per-epoch orders use <see cref="EpochSeed"/>(seed, epoch), so a run can restart at any
    /// epoch and see the same order.
    /// </remarks>
    public static class DataShuffle
    {
        /// <summary>A random permutation of 0..<paramref name="count"/>−1 determined by <paramref name="seed"/>.</summary>
        public static int[] Permutation(int count, int seed)
        {
            if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
            var order = new int[count];
            for (int i = 0; i < count; i++) order[i] = i;
            Shuffle(order, new Random(seed));
            return order;
        }

        /// <summary>The items in the order of <see cref="Permutation"/>(items.Count, seed).</summary>
        public static List<T> Shuffled<T>(IReadOnlyList<T> items, int seed)
        {
            ArgumentNullException.ThrowIfNull(items);
            var result = new List<T>(items.Count);
            foreach (int i in Permutation(items.Count, seed)) result.Add(items[i]);
            return result;
        }

        /// <summary>Fisher–Yates in place with <paramref name="random"/>.</summary>
        public static void Shuffle<T>(IList<T> items, Random random)
        {
            ArgumentNullException.ThrowIfNull(items);
            ArgumentNullException.ThrowIfNull(random);
            for (int i = items.Count - 1; i > 0; i--)
            {
                int j = random.Next(i + 1);
                (items[i], items[j]) = (items[j], items[i]);
            }
        }

        /// <summary>
        /// The seed of epoch <paramref name="epoch"/>'s shuffle: the 32 low bits of SplitMix64's finaliser applied to
        /// (seed × 2^32 + epoch), so nearby seeds and epochs give unrelated orders.
        /// </summary>
        public static int EpochSeed(int seed, int epoch)
        {
            ulong z = ((ulong)(uint)seed << 32) | (uint)epoch;
            z += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            return unchecked((int)z);
        }
    }
}
