using Ddvi.FastPaths;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public class ComputeDeviceTests
{
    [Fact]
    public void KernelNotesSayTheyAreHostSideOffTheCpu()
    {
        string cpu = ComputeDevice.HostKernelNotes(CPU);
        string cuda = ComputeDevice.HostKernelNotes(new Device("cuda:0"));

        Assert.Contains(OpenMpTeam.Description, cpu);
        Assert.Contains(NativeHeap.Description, cpu);
        Assert.DoesNotContain("host side only", cpu);
        Assert.StartsWith("host side only: ", cuda);
        Assert.Contains(cpu, cuda);
        Assert.Contains("on cuda:0 the chain, Adam and the KDE run as libtorch operations", cuda);
    }

    [Fact]
    public void NegativeThreadCountIsRefusedByName()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ComputeDevice.SetThreads(-1));
        Assert.Contains("--threads", error.Message);
    }
}
