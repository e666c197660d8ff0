// libtorch's thread count, global generator and dispose-scope statistics are process-wide: run tests one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
