// libtorch has process-wide state (RNG, threads): run test classes one at a time.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
