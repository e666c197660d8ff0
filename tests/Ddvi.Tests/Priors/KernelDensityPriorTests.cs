using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Priors;

public class KernelDensityPriorTests
{
    [Fact]
    public void WrapsAnExactPriorWithTheReleasesKde()
    {
        using var scope = NewDisposeScope();
        var exact = new GaussianMixturePrior(CPU);
        using var kde = new KernelDensityPrior(exact, seed: 5, CPU);
        Assert.Equal(exact.Name, kde.Name);
        Assert.Equal(exact.ClassCount, kde.ClassCount);
        Assert.False(kde.HasExactDensity);
        Assert.Contains("Gaussian KDE over 10000 points, bandwidths {0.005, 0.008, 0.01, 0.03, 0.05}", kde.DensityDescription);

        // Sampling is the wrapped prior's, draw for draw.
        using var g1 = new Generator(1);
        using var g2 = new Generator(1);
        Assert.True(kde.SampleLabelled(300, g1).Z.eq(exact.SampleLabelled(300, g2).Z).all().item<bool>());

        // With 10,000 centres the estimate tracks the exact density where there is mass (bandwidths ≤ 0.05 ≪ the 0.1 std).
        using var g3 = new Generator(2);
        var (z, _) = exact.SampleLabelled(1000, g3);
        var gap = kde.LogDensity(z) - exact.LogDensity(z);
        Assert.True(PriorAssert.RankCorrelation(kde.LogDensity(z), exact.LogDensity(z)) > 0.7);
        Assert.True(gap.mean().abs().item<float>() < 0.5, $"mean gap {gap.mean().item<float>()}");
    }

    [Fact]
    public void APriorBuiltInsideADisposeScopeOutlivesIt()
    {
        SwissRollPrior swissRoll;
        KernelDensityPrior wrapped;
        using (NewDisposeScope())
        {
            swissRoll = new SwissRollPrior(0.1, seed: 3, CPU);
            wrapped = new KernelDensityPrior(new PinwheelPrior(CPU), seed: 3, CPU);
        }
        using var scope = NewDisposeScope();
        var z = tensor(new float[] { 0.5f, 0.2f, 1f, -1f }).reshape(2, 2);
        Assert.True(swissRoll.LogDensity(z).isfinite().all().item<bool>());
        Assert.True(wrapped.LogDensity(z).isfinite().all().item<bool>());
        swissRoll.Dispose();
        wrapped.Dispose();
    }

    [Fact]
    public void RejectsANonPositiveSampleCount()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new KernelDensityPrior(new GaussianPrior(CPU), 0, CPU, sampleCount: 0));
        Assert.Contains("gaussian", error.Message);
    }
}
