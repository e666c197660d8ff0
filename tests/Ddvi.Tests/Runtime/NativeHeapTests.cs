using Ddvi.FastPaths;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public class NativeHeapTests
{
    [Fact]
    public void FreedBlocksAreKeptOnGlibcAndTheSettingIsReported()
    {
        bool expected = OperatingSystem.IsLinux() && !MathKernelDispatch.IsSwitchedOff(Environment.GetEnvironmentVariable(NativeHeap.DisableVariable));
        Assert.Equal(expected, NativeHeap.KeepFreedBlocks());
        Assert.Equal(NativeHeap.KeepFreedBlocks(), NativeHeap.KeepFreedBlocks()); // idempotent
        Assert.Contains(NativeHeap.KeepFreedBlocks() ? "32 MiB" : "default", NativeHeap.Description);
    }

    [Fact]
    public void LargeTensorsStillAllocateAndFreeAfterTrimming()
    {
        NativeHeap.KeepFreedBlocks();
        for (int i = 0; i < 3; i++)
        {
            using var block = ones(4 << 20); // 16 MiB: below the mapping threshold, so from the heap
            Assert.Equal(4 << 20, block.sum().item<float>());
        }
        Assert.Equal(OperatingSystem.IsLinux(), NativeHeap.Trim());
    }
}
