using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Priors;

public class PriorCatalogTests
{
    [Theory]
    [InlineData("pinwheel", null, "pinwheel", null)]
    [InlineData("pin_wheel", null, "pinwheel", null)]
    [InlineData("swiss-roll", null, "swiss-roll", 0.0)]
    [InlineData("swiss_roll", null, "swiss-roll", 0.0)]
    [InlineData("swiss-roll", 0.25, "swiss-roll", 0.25)]
    [InlineData("less_noisy_swiss_roll", null, "swiss-roll", 0.1)]
    [InlineData("less_noisy_swiss_roll", 0.1, "swiss-roll", 0.1)]
    [InlineData("square", null, "square", 3.0)]
    [InlineData("square", 1.0, "square", 1.0)]
    [InlineData("less_noisy_square", null, "square", 3.0)]
    [InlineData("gaussian", null, "gaussian", null)]
    [InlineData("gaussian-mixture", null, "gaussian-mixture", null)]
    [InlineData("gaussian_mixture", null, "gaussian-mixture", null)]
    [InlineData("  Pin_Wheel ", null, "pinwheel", null)]
    public void ResolvesNamesAndAliasesToTheirConfiguration(string name, double? noise, string canonical, double? effectiveNoise)
    {
        Assert.Equal(new PriorSettings(canonical, effectiveNoise), PriorCatalog.Resolve(name, noise));
    }

    [Fact]
    public void CreatesEveryCanonicalPriorWithItsName()
    {
        foreach (var name in PriorCatalog.Names)
        {
            var prior = PriorCatalog.Create(name, null, seed: 1, CPU);
            try
            {
                Assert.Equal(name, prior.Name);
                Assert.Equal(10, prior.ClassCount);
                // Auto: the release's KDE for the structured priors, the closed form for the Gaussian ones.
                Assert.Equal(name is "gaussian" or "gaussian-mixture", prior.HasExactDensity);
                Assert.Equal(name is "pinwheel" or "gaussian" or "gaussian-mixture", PriorCatalog.HasExactDensity(name));
            }
            finally
            {
                (prior as IDisposable)?.Dispose();
            }
        }
        Assert.All(PriorCatalog.Aliases.Values, canonical => Assert.Contains(canonical, PriorCatalog.Names));
    }

    [Fact]
    public void AliasesBuildTheReleasesConfigurations()
    {
        using var swiss = Assert.IsType<SwissRollPrior>(PriorCatalog.Create("less_noisy_swiss_roll", null, 1, CPU));
        Assert.Equal(0.1, swiss.Noise);
        using var square = Assert.IsType<SquarePrior>(PriorCatalog.Create("less_noisy_square", null, 1, CPU));
        Assert.Equal(3.0, square.NoiseLevel);
        using var plainSquare = Assert.IsType<SquarePrior>(PriorCatalog.Create("square", 1.0, 1, CPU));
        Assert.Equal(0.02, plainSquare.AcrossEdgeStd, 12);
        Assert.IsType<PinwheelPrior>(PriorCatalog.Create("pin_wheel", null, 1, CPU, PriorDensityChoice.Exact));
        Assert.IsType<GaussianMixturePrior>(PriorCatalog.Create("gaussian_mixture", null, 1, CPU));
    }

    [Fact]
    public void DensityChoiceSelectsTheClosedFormOrTheKde()
    {
        Assert.IsType<PinwheelPrior>(PriorCatalog.Create("pinwheel", null, 1, CPU, PriorDensityChoice.Exact));
        using var pinwheel = Assert.IsType<KernelDensityPrior>(PriorCatalog.Create("pinwheel", null, 1, CPU, PriorDensityChoice.Kde));
        Assert.False(pinwheel.HasExactDensity);
        Assert.Equal("pinwheel", pinwheel.Name);
        Assert.Contains("KDE", pinwheel.DensityDescription);
        using var auto = Assert.IsType<KernelDensityPrior>(PriorCatalog.Create("pinwheel", null, 1, CPU));
        Assert.IsType<GaussianPrior>(PriorCatalog.Create("gaussian", null, 1, CPU, PriorDensityChoice.Auto));
        using var gaussianKde = Assert.IsType<KernelDensityPrior>(PriorCatalog.Create("gaussian", null, 1, CPU, PriorDensityChoice.Kde));
        using var square = Assert.IsType<SquarePrior>(PriorCatalog.Create("square", null, 1, CPU, PriorDensityChoice.Kde));
        Assert.False(square.HasExactDensity);
    }

    [Theory]
    [InlineData("swiss-roll")]
    [InlineData("less_noisy_square")]
    public void ExactDensityOfAPriorWithoutOneIsAnError(string name)
    {
        var error = Assert.Throws<ArgumentException>(() => PriorCatalog.Create(name, null, 1, CPU, PriorDensityChoice.Exact));
        Assert.Contains("--prior-density exact", error.Message);
        Assert.Contains("no closed-form density", error.Message);
        Assert.Contains("auto or kde", error.Message);
    }

    [Fact]
    public void UnknownNameListsTheValidNamesAndAliases()
    {
        var error = Assert.Throws<ArgumentException>(() => PriorCatalog.Create("spiral", null, 1, CPU));
        Assert.Contains("'spiral'", error.Message);
        foreach (var name in PriorCatalog.Names.Concat(PriorCatalog.Aliases.Keys))
            Assert.Contains(name, error.Message);
    }

    [Theory]
    [InlineData("swiss-roll", -0.1)]
    [InlineData("square", -1.0)]
    [InlineData("square", double.NaN)]
    [InlineData("swiss-roll", double.PositiveInfinity)]
    public void RejectsNegativeOrNonFiniteNoise(string name, double noise)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => PriorCatalog.Resolve(name, noise));
        Assert.Contains("--prior-noise", error.Message);
    }

    [Theory]
    [InlineData("pinwheel")]
    [InlineData("gaussian")]
    [InlineData("gaussian-mixture")]
    public void RejectsNoiseForPriorsWithoutOne(string name)
    {
        var error = Assert.Throws<ArgumentException>(() => PriorCatalog.Create(name, 0.5, 1, CPU));
        Assert.Contains("no noise setting", error.Message);
    }

    [Theory]
    [InlineData("less_noisy_swiss_roll", 0.3)]
    [InlineData("less_noisy_square", 1.0)]
    public void RejectsNoiseThatContradictsAnAlias(string name, double noise)
    {
        var error = Assert.Throws<ArgumentException>(() => PriorCatalog.Resolve(name, noise));
        Assert.Contains("fixes the noise", error.Message);
    }
}
