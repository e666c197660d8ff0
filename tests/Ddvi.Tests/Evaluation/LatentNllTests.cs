using Ddvi.Evaluation;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Evaluation;

public class LatentNllTests
{
    [Fact]
    public void MatchesHandComputationOnTwoPoints()
    {
        using var scope = NewDisposeScope();
        var latents = tensor(new double[] { 0, 0, 1, 0 }).view(2, 2);
        var priorSamples = tensor(new double[] { 0, 0, 0, 1 }).view(2, 2);
        const double h = 0.5;

        var result = LatentNll.Compute(latents, priorSamples, [h]);

        // q̂(z) = ½ Σ_i exp(−‖z − c_i‖² / (2h²)) / (2π h²): squared distances {0, 1} for z₁ and {1, 2} for z₂.
        double normaliser = 1 / (2 * Math.PI * h * h);
        double q1 = 0.5 * normaliser * (1 + Math.Exp(-1 / (2 * h * h)));
        double q2 = 0.5 * normaliser * (Math.Exp(-1 / (2 * h * h)) + Math.Exp(-2 / (2 * h * h)));
        Assert.Equal(-(Math.Log(q1) + Math.Log(q2)) / 2, result.Value, 12);
        Assert.Equal([h], result.Bandwidths);
        Assert.Equal(2, result.SampleCount);
        Assert.Equal(2, result.LatentCount);
        Assert.Contains("2 prior samples", result.Description);
        Assert.Contains("bandwidths {0.5}", result.Description);
    }

    [Fact]
    public void LatentsFromThePriorScoreBetterThanShiftedLatents()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(11);
        var priorSamples = randn(2000, 2, generator: generator);
        var matching = randn(1000, 2, generator: generator);
        var shifted = randn(1000, 2, generator: generator) + tensor(new float[] { 3, 0 });
        IReadOnlyList<double> bandwidths = [0.1, 0.3];

        double matchingNll = LatentNll.Compute(matching, priorSamples, bandwidths).Value;
        double shiftedNll = LatentNll.Compute(shifted, priorSamples, bandwidths).Value;

        Assert.True(matchingNll < shiftedNll, $"matching {matchingNll} should be below shifted {shiftedNll}");
        // The cross-entropy of N(0, I) with itself is its entropy, 1 + log 2π ≈ 2.84; smoothing adds a little.
        Assert.InRange(matchingNll, 2.6, 3.4);
    }

    [Fact]
    public void DefaultsToTheReleaseBandwidthsAndIgnoresBlockSize()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(12);
        var latents = randn(300, 2, float64, generator: generator);
        var priorSamples = randn(257, 2, float64, generator: generator);

        var reference = LatentNll.Compute(latents, priorSamples);
        Assert.Equal(GaussianKernelDensity.DefaultBandwidths, reference.Bandwidths);
        foreach (int blockRows in new[] { 1, 64, 1000 })
            Assert.Equal(reference.Value, LatentNll.Compute(latents, priorSamples, blockRows: blockRows).Value, 10);
    }

    [Fact]
    public void LeavesNoTensorsBehind()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(13);
        var latents = randn(100, 2, generator: generator);
        var priorSamples = randn(90, 2, generator: generator);
        long before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        LatentNll.Compute(latents, priorSamples, blockRows: 16);
        Assert.Equal(before, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void BadInputsGiveClearErrors()
    {
        using var scope = NewDisposeScope();
        var latents = randn(5, 2);
        Assert.Contains("non-empty",
            Assert.Throws<ArgumentException>(() => LatentNll.Compute(latents, zeros(0, 2))).Message);
        Assert.Contains("non-empty",
            Assert.Throws<ArgumentException>(() => LatentNll.Compute(zeros(0, 2), latents)).Message);
        Assert.Contains("3 dimensions",
            Assert.Throws<ArgumentException>(() => LatentNll.Compute(latents, randn(4, 3))).Message);
        Assert.Contains("positive",
            Assert.Throws<ArgumentException>(() => LatentNll.Compute(latents, latents, [0.1, 0.0])).Message);
        Assert.Contains("one dtype",
            Assert.Throws<ArgumentException>(() => LatentNll.Compute(latents, latents.to(float64))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => LatentNll.Compute(latents, latents, blockRows: 0));
    }
}
