using Ddvi.Experiments.Ancestry;
using static TorchSharp.torch;

namespace Ddvi.Tests.Ancestry;

/// <summary><see cref="AncestryModels.NoiseShare"/>: the share of the latents' variance that is posterior noise, and the
/// warning of a collapsed posterior.</summary>
public class LatentNoiseShareTests
{
    [Fact]
    public void TheShareFollowsTheLawOfTotalVariance()
    {
        var generator = new Generator(7);
        var signal = randn([4000, 2], dtype: ScalarType.Float64, generator: generator);                  // E[z | x], variance 1 a coordinate
        var deterministic = signal.clone();
        Assert.Equal(0.0, AncestryModels.NoiseShare(signal, deterministic));

        // z = s(x) + 0.5 ε: the noise's variance is 0.25 of 1.25 in total, a share of 0.2.
        var first = signal + 0.5 * randn([4000, 2], dtype: ScalarType.Float64, generator: generator);
        var second = signal + 0.5 * randn([4000, 2], dtype: ScalarType.Float64, generator: generator);
        Assert.InRange(AncestryModels.NoiseShare(first, second), 0.18, 0.22);

        // A collapsed posterior: every latent a fresh draw from one distribution, whatever the input.
        var collapsedA = randn([4000, 2], dtype: ScalarType.Float64, generator: generator);
        var collapsedB = randn([4000, 2], dtype: ScalarType.Float64, generator: generator);
        double collapsed = AncestryModels.NoiseShare(collapsedA, collapsedB);
        Assert.InRange(collapsed, 0.95, 1.05);

        // Nothing varies at all: no noise to speak of.
        Assert.Equal(0.0, AncestryModels.NoiseShare(ones(10, 2), ones(10, 2)));
    }

    [Fact]
    public void ACollapsedRunIsWarnedAboutNamingTheDivisorOption()
    {
        Assert.Null(AncestryRunner.CollapseWarning("ddvi", 3, 0.2));
        Assert.Null(AncestryRunner.CollapseWarning("pca", 0, double.NaN));
        string warning = AncestryRunner.CollapseWarning("vae", 3, 0.99)!;
        Assert.StartsWith("ancestry: warning: vae seed 3: 99% of its latents' variance is posterior noise", warning);
        Assert.Contains("--pc-divisor", warning);
    }

    [Fact]
    public void DrawsOfOtherShapesAreRejected()
    {
        var error = Assert.Throws<ArgumentException>(() => AncestryModels.NoiseShare(zeros(5, 2), zeros(4, 2)));
        Assert.Contains("[5, 2] and [4, 2]", error.Message);
        Assert.Throws<ArgumentException>(() => AncestryModels.NoiseShare(zeros(1, 2), zeros(1, 2)));
    }
}
