using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Data;
using GraLoRA.Distributed;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>How a global batch is split among ranks, and how gradients travel in a few flat buckets.</summary>
    public sealed class ShardAndBucketTests
    {
        /// <summary>
        /// A stand-in for <paramref name="size"/> ranks that all hold this rank's values: an all-reduce multiplies by the
        /// rank count (what a sum over identical ranks gives), a broadcast leaves the buffer, a gather repeats it. Records
        /// every call.
        /// </summary>
        sealed class MirrorCommunicator : ICommunicator
        {
            public MirrorCommunicator(int rank, int size) => (Rank, Size) = (rank, size);
            public int Rank { get; }
            public int Size { get; }
            public string Engine => "mirror";
            public Device Device => CPU;
            public List<(string Call, long Elements, ScalarType Type, string What)> Calls { get; } = new();
            public void AllReduceSum(Tensor buffer, string what) { Calls.Add(("all-reduce", buffer.numel(), buffer.dtype, what)); buffer.mul_(Size); }
            public void Broadcast(Tensor buffer, int root, string what) => Calls.Add(("broadcast", buffer.numel(), buffer.dtype, what));
            public Tensor AllGather(Tensor local, string what) { Calls.Add(("all-gather", local.numel(), local.dtype, what)); return cat(Enumerable.Repeat(local, Size).ToArray()); }
            public void Dispose() { }
        }

        static DataBatch Numbered(int rows, int length)
        {
            long[] M(int k) => Enumerable.Range(0, rows * length).Select(i => (long)(k * 1000 + i)).ToArray();
            return new DataBatch(rows, length, M(1), M(2), Enumerable.Repeat(1L, rows * length).ToArray(), M(4), M(5),
                Enumerable.Range(0, rows).Select(r => (long)(r % 2)).ToArray(), Enumerable.Range(10, rows).ToArray(), M(6));
        }

        [Theory]
        [InlineData(8, 2, new[] { 0, 4 }, new[] { 4, 4 })]
        [InlineData(5, 2, new[] { 0, 2 }, new[] { 2, 3 })]
        [InlineData(1, 2, new[] { 0, 0 }, new[] { 0, 1 })]
        [InlineData(8, 3, new[] { 0, 2, 5 }, new[] { 2, 3, 3 })]
        public void EachRankTakesContiguousRowsAndTogetherTheyTakeEveryRowOnce(int rows, int ranks, int[] from, int[] count)
        {
            for (int r = 0; r < ranks; r++) Assert.Equal((from[r], count[r]), RankShard.RowsOf(rows, r, ranks));
            Assert.Equal(rows, count.Sum());
        }

        [Fact]
        public void ShardsCarryEveryFieldOfTheirRowsAndKeepTheSequenceLength()
        {
            var global = Numbered(5, 3);
            var shards = Enumerable.Range(0, 2).Select(r => new RankShard(new Source(global), r, 2).Epoch(0).Single()).ToList();
            Assert.Equal(new[] { 2, 3 }, shards.Select(s => s.BatchSize));
            Assert.All(shards, s => Assert.Equal(3, s.SequenceLength));
            Assert.Equal(global.InputIds, shards.SelectMany(s => s.InputIds));
            Assert.Equal(global.Labels, shards.SelectMany(s => s.Labels));
            Assert.Equal(global.PositionIds, shards.SelectMany(s => s.PositionIds));
            Assert.Equal(global.SegmentIds!, shards.SelectMany(s => s.SegmentIds!));
            Assert.Equal(global.TokenTypeIds!, shards.SelectMany(s => s.TokenTypeIds!));
            Assert.Equal(global.ClassLabels!, shards.SelectMany(s => s.ClassLabels!));
            Assert.Equal(global.ExampleIndices, shards.SelectMany(s => s.ExampleIndices));
        }

        [Fact]
        public void AnEmptyShareIsAZeroRowBatchForTrainingAndLeftOutForEvaluation()
        {
            var source = new Source(Numbered(4, 2), Numbered(1, 2));
            Assert.Equal(new[] { 2, 0 }, new RankShard(source, 0, 2).Epoch(0).Select(b => b.BatchSize));
            Assert.Equal(new[] { 2, 1 }, new RankShard(source, 1, 2).Epoch(0).Select(b => b.BatchSize));
            Assert.Equal(new[] { 2 }, new RankShard(source, 0, 2, skipEmpty: true).Epoch(0).Select(b => b.BatchSize));
            Assert.Equal(2, new RankShard(source, 0, 2).BatchesPerEpoch);
        }

        [Fact]
        public void BucketsHoldConsecutiveTensorsOfOneDeviceUpToTheCapAndAnOversizedTensorAlone()
        {
            var f = ScalarType.Float32;
            var plan = GradientBuckets.Plan(new (long, ScalarType, string)[]
            {
                (100, f, "cpu"), (100, f, "cpu"), (100, f, "cpu"),     // 400 bytes each: two fit in 1000
                (1000, f, "cpu"),                                       // 4000 bytes: alone
                (10, f, "cpu"), (10, ScalarType.Float64, "cpu"),       // another bucket dtype starts a bucket
                (10, f, "cuda:0"),                                      // another device too
            }, capBytes: 1000);
            Assert.Equal(new[] { new[] { 0, 1 }, new[] { 2 }, new[] { 3 }, new[] { 4 }, new[] { 5 }, new[] { 6 } }, plan.Select(b => b.ToArray()));
        }

        [Fact]
        public void GradientsTravelInAFewFlatBucketsAndComeBackSummedIntoEveryParameter()
        {
            TorchRuntime.EnsureInitialized();
            manual_seed(3);
            var parameters = Enumerable.Range(0, 12).Select(i => new Parameter(randn(new long[] { 10, 5 + i }))).ToList();
            var expected = new List<Tensor>();
            for (int i = 0; i < parameters.Count; i++)
            {
                if (i == 4) { expected.Add(zeros(10, 5 + i)); continue; }           // no gradient: this rank had no rows
                parameters[i].grad = randn(10, 5 + i);
                expected.Add(parameters[i].grad!.clone() * 3);
            }
            var communicator = new MirrorCommunicator(0, 3);
            GradientBuckets.AllReduceGradients(communicator, parameters, capBytes: 2048, "the gradient all-reduce of step 1");
            for (int i = 0; i < parameters.Count; i++) Assert.True(TensorAssert.Identical(expected[i], parameters[i].grad!), $"parameter {i}");
            long elements = parameters.Sum(p => p.numel());
            // 200, 240, … 640 bytes: by hand, 0–5 (1800 bytes), 6–9 (2000), 10–11 (1240) under a 2048-byte cap.
            Assert.Equal(3, communicator.Calls.Count);
            Assert.Equal(elements, communicator.Calls.Sum(c => c.Elements));
            Assert.All(communicator.Calls, c => Assert.Equal(ScalarType.Float32, c.Type));
            Assert.All(communicator.Calls, c => Assert.StartsWith("the gradient all-reduce of step 1 (bucket ", c.What));
        }

        [Fact]
        public void BFloat16GradientsAreSummedInFloat32Buckets()
        {
            TorchRuntime.EnsureInitialized();
            var p = new Parameter(zeros(new long[] { 4 }, ScalarType.BFloat16));
            p.grad = tensor(new float[] { 1, 2, 3, 4 }).to(ScalarType.BFloat16);
            var communicator = new MirrorCommunicator(1, 2);
            GradientBuckets.AllReduceGradients(communicator, new[] { p }, GradientBuckets.DefaultCapBytes, "g");
            Assert.Equal(ScalarType.Float32, Assert.Single(communicator.Calls).Type);
            Assert.Equal(ScalarType.BFloat16, p.grad!.dtype);
            Assert.Equal(new float[] { 2, 4, 6, 8 }, p.grad.to(ScalarType.Float32).data<float>().ToArray());
        }

        [Fact]
        public void TheStopFileOrAnyRanksCancellationStopsEveryRank()
        {
            TorchRuntime.EnsureInitialized();
            using var tmp = new TempDirectory();
            string stop = tmp.File("stop");
            var world = new DataParallel(new MirrorCommunicator(1, 2)) { StopFile = stop };
            Assert.False(world.AnyStop(false));
            Assert.True(world.AnyStop(true));                      // this rank's Ctrl+C
            System.IO.File.WriteAllText(stop, "");
            Assert.True(world.AnyStop(false));                     // the launcher's stop file
        }

        [Theory]
        [InlineData(2, 8, 4, 8, "The global batch is still 8 rows, so the data order is unchanged")]
        [InlineData(2, 8, 4, 16, "The global batch is now 16 rows (per-rank batch × 4 ranks) instead of 8")]
        public void ResumingWithAnotherNumberOfRanksSaysWhatChanges(int savedRanks, int savedRows, int ranks, int rows, string expected)
        {
            TorchRuntime.EnsureInitialized();
            using var tmp = new TempDirectory();
            System.IO.File.WriteAllText(tmp.File("distributed.json"), $"{{\"world_size\": {savedRanks}, \"global_batch_rows\": {savedRows}}}");
            var world = new DataParallel(new MirrorCommunicator(1, ranks));
            world.Shard(new Source(Numbered(rows, 2)));
            string note = world.RestoreRankState(tmp.Path)!;
            Assert.StartsWith($"Resuming a checkpoint written by {savedRanks} ranks with {ranks}: the step count, optimizer state and learning-rate schedule continue.", note);
            Assert.Contains(expected, note);
            Assert.Contains($"Ranks {savedRanks}–{ranks - 1} start their random streams (dropout) from rank 0's state", note);
            Assert.Null(new DataParallel(new MirrorCommunicator(0, savedRanks)).RestoreRankState(tmp.Path));   // the same number: nothing changes
        }

        sealed class Source : IBatchSource
        {
            readonly DataBatch[] _batches;
            public Source(params DataBatch[] batches) => _batches = batches;
            public int BatchesPerEpoch => _batches.Length;
            public IEnumerable<DataBatch> Epoch(int epoch) => _batches;
        }
    }
}
