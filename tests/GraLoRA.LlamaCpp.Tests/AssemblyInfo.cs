// libtorch and llama.cpp keep process-wide state (threads, the log callback): run test classes one at a time.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
