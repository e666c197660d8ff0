using Ddvi.FastPaths;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public class CpuRuntimeTests
{
    [Fact]
    public void TheTestAssemblyConfiguredTheProcessAtStartUp()
    {
        // CpuRuntimeSetup's module initializer ran before any test, as the CLI's Main does before any command.
        var state = Assert.IsType<CpuRuntimeState>(CpuRuntime.State);
        Assert.Same(state.MathKernels, MathKernelDispatch.State);
        Assert.NotEqual(MathKernelDispatchStatus.AlreadyChosen, state.MathKernels.Status); // it came before any matrix product
    }

    [Fact]
    public void ConfigureIsIdempotentAndThreadSafe()
    {
        var first = CpuRuntime.Configure();
        var states = new CpuRuntimeState[8];
        Parallel.For(0, states.Length, i => states[i] = CpuRuntime.Configure());
        Assert.All(states, s => Assert.Same(first, s));
        Assert.Same(first, CpuRuntime.State);
        Assert.Equal(NativeHeap.KeepFreedBlocks(), first.HeapTuned);
        Assert.Contains(first.MathKernels.Description, first.Description);
        Assert.Contains(NativeHeap.Description, first.Description);
    }

    [Fact]
    public void KernelNotesReportWhatConfigureSet()
    {
        var state = CpuRuntime.Configure();
        Assert.StartsWith(state.Description, ComputeDevice.HostKernelNotes(CPU));
        Assert.DoesNotContain("was not called", ComputeDevice.HostKernelNotes(CPU));
    }
}
