using Ddvi.Benchmarking;
using Ddvi.Models;
using Xunit;
using static TorchSharp.torch;

namespace Ddvi.Tests.Benchmarking;

public class GenomicsBenchmarkTests
{
    [Fact]
    public void ClusteringDdviFlopsCountEveryProductOfEachStep()
    {
        using var generator = new Generator(3);
        // Encoder 10 → 6 → 6 → two heads of 2; decoder 2 → 6 → 6 → 10; prior denoiser 2 → 128 → 3 × (128 → 128) → 2, T = 3.
        using var model = ClusteringDdvi.Paper(inputDim: 10, generator, latentDim: 2, hidden: 6, hiddenLayers: 2, steps: 3, components: 4);
        const long b = 4;
        double encoder = 10 * 6 + 6 * 6 + 2 * (6 * 2), encoderFirst = 10 * 6;
        double decoder = 2 * 6 + 6 * 6 + 6 * 10;
        double denoiser = 2 * 128 + 3 * 128 * 128 + 128 * 2;
        var flops = ClusteringDdviFlops.Of(model, b);
        // Training a network costs 2·rows·MACs forward and as much again for each of the weight and input gradients; the
        // encoder's first layer reads the data, whose gradient is not needed.
        double wake = 2 * b * (3 * encoder - encoderFirst) + 3 * 6 * b * denoiser + 6 * b * decoder;
        Assert.Equal(wake, flops.Wake, 6);
        Assert.Equal(6 * b * denoiser, flops.PriorDiffusion, 6);
        Assert.Equal(2 * 6 * b * denoiser, flops.CentreAndRefitPair, 6);
    }

    [Fact]
    public void ATargetBelowTheArithmeticFloorIsSaidToBe()
    {
        var below = new GenomicsBenchmarkResult("clustering-ddvi", "what", 1700, Estimated: true, TargetSeconds: 600, 1L << 29, null, "details",
            FloorSeconds: 730, FloorGigaflopsPerSecond: 222);
        Assert.True(below.TargetBelowFloor);
        Assert.False(below.MeetsTarget);
        string line = GenomicsBenchmarks.Line(below);
        Assert.Contains("Arithmetic floor 730.0 s (matrix products alone at 222.0 GFLOP/s; this run 2.33× it)", line);
        Assert.Contains("the target is below this machine's floor", line);

        var above = below with { Seconds = 550, FloorSeconds = 300 };
        Assert.False(above.TargetBelowFloor);
        Assert.True(above.MeetsTarget);
        Assert.DoesNotContain("below this machine's floor", GenomicsBenchmarks.Line(above));

        var noFloor = below with { FloorSeconds = null, FloorGigaflopsPerSecond = null };
        Assert.False(noFloor.TargetBelowFloor);
        Assert.DoesNotContain("Arithmetic floor", GenomicsBenchmarks.Line(noFloor));
    }
}
