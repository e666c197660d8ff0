using Ddvi.Benchmarking;
using static TorchSharp.torch;

namespace Ddvi.Tests.Benchmarking;

/// <summary>
/// Tests that measure the whole process's resident memory run alone: another test class freeing memory at the same time
/// (xUnit runs classes in parallel) made a 256 MiB allocation look smaller than 200 MiB on a loaded machine.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessMemoryCollection
{
    public const string Name = "Process memory, run alone";
}

[Collection(ProcessMemoryCollection.Name)]
public class ProcessMemoryTests
{
    [Fact]
    public void PeakResidentMemoryFollowsAnAllocationAndResets()
    {
        long residentBefore = ProcessMemory.ResidentBytes();
        Assert.True(residentBefore > 0);
        using (var big = ones(64L << 20, dtype: ScalarType.Float32)) // 256 MiB, written, so its pages are resident
        {
            long residentWith = ProcessMemory.ResidentBytes();
            Assert.True(residentWith >= residentBefore + (200L << 20), $"resident {residentWith} B with the block, {residentBefore} B before it");
            // Read after the resident size: the peak then includes it, up to the kernel's per-CPU counters' lag.
            long peak = ProcessMemory.PeakResidentBytes();
            Assert.True(peak >= residentWith - (16L << 20), $"peak {peak} B, resident {residentWith} B");
        }
        // The freed block goes back to the system; after a reset the peak is today's size again, where Linux allows it.
        // Measured against the size right after the reset, not before the allocation: other work of the process (the
        // GC, finalisers) may have grown it meanwhile, which made this flaky on a loaded machine.
        if (ProcessMemory.ResetPeak())
        {
            long residentNow = ProcessMemory.ResidentBytes();
            Assert.True(ProcessMemory.PeakResidentBytes() < residentNow + (150L << 20));
        }
    }
}
