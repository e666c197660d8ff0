using Ddvi.Likelihoods;
using static Ddvi.Tests.Likelihoods.LikelihoodFixtures;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Tests.Likelihoods;

/// <summary>What every likelihood promises: masks, the per-feature mean, data checks, shapes and seeded sampling.</summary>
public class LikelihoodContractTests
{
    public static TheoryData<string> Kinds => LikelihoodFixtures.Kinds;

    static string DataKind(string kind) => kind.Split('-')[0];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void MaskedEntriesAreIgnoredEvenWhenNaN(string kind)
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create(kind);
        var z = Latents();
        var x = ValidData(DataKind(kind));
        var mask = Mask();
        var missing = mask.logical_not();
        var masked = likelihood.LogProb(x, z, mask);
        Assert.Equal(new long[] { 5 }, masked.shape);
        Assert.True(masked.isfinite().all().item<bool>());

        // Other values (valid or not, NaN included) under the mask change nothing.
        var withNaN = x.masked_fill(missing, double.NaN);
        Assert.True(Identical(likelihood.LogProb(withNaN, z, mask), masked));
        Assert.True(Identical(likelihood.LogProb(x.masked_fill(missing, 1e6), z, mask), masked));

        // A float mask equals the bool mask.
        Assert.True(Identical(likelihood.LogProb(withNaN, z, mask.to(float64)), masked));
        Assert.True(Identical(likelihood.LogProb(withNaN, z, mask.to(float32)), masked));

        // An all-ones mask is no mask; an all-zeros mask gives 0.
        Assert.True(likelihood.LogProb(x, z, ones(5, DataDim, dtype: ScalarType.Bool)).allclose(likelihood.LogProb(x, z), rtol: 0, atol: 1e-12));
        Assert.True(likelihood.LogProb(full_like(x, double.NaN), z, zeros(5, DataDim)).eq(0).all().item<bool>());
    }

    /// <summary>The kinds whose per-entry terms do not depend on the mask (the sized NB's size factor does; its own tests cover it).</summary>
    public static TheoryData<string> AdditiveKinds => ["bernoulli", "gaussian", "gaussian-learned", "binomial", "poisson", "negative_binomial"];

    [Theory]
    [MemberData(nameof(AdditiveKinds))]
    public void MaskedLogProbIsTheSumOverObservedEntries(string kind)
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create(kind);
        var z = Latents();
        var x = ValidData(DataKind(kind));
        var mask = Mask();
        var observed = likelihood.LogProb(x, z, mask);
        var complement = likelihood.LogProb(x, z, mask.logical_not());
        Assert.True((observed + complement).allclose(likelihood.LogProb(x, z), rtol: 1e-12, atol: 1e-12));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void GradientsAreFiniteWithNaNUnderTheMask(string kind)
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create(kind);
        var z = Latents().requires_grad_(true);
        var mask = Mask();
        var x = ValidData(DataKind(kind)).masked_fill(mask.logical_not(), double.NaN);
        likelihood.LogProb(x, z, mask).sum().backward();
        var parameters = likelihood.parameters().ToList();
        Assert.NotEmpty(parameters);
        foreach (var p in parameters)
            Assert.True(p.grad is not null && p.grad.isfinite().all().item<bool>(), $"{kind}: a parameter's gradient is missing or not finite");
        Assert.True(z.grad is not null && z.grad.isfinite().all().item<bool>());
        Assert.True(z.grad!.abs().sum().item<double>() > 0);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void MeanNegativeLogProbPerFeatureIsMinusTheLogProbOverBTimesD(string kind)
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create(kind);
        var z = Latents();
        var x = ValidData(DataKind(kind));
        var output = likelihood.Decode(z);
        var perFeature = likelihood.MeanNegativeLogProbPerFeature(output, x);
        Assert.Equal(0, perFeature.dim());
        double expected = -likelihood.LogProb(x, z).sum().item<double>() / (5 * DataDim);
        Assert.Equal(expected, perFeature.item<double>(), 12);
        if (kind == "bernoulli")
            Assert.Equal(functional.binary_cross_entropy_with_logits(output, x).item<double>(), perFeature.item<double>(), 14);
    }

    [Theory]
    [InlineData("bernoulli", 1.5, "values in [0, 1]")]
    [InlineData("bernoulli", -0.25, "values in [0, 1]")]
    [InlineData("gaussian", double.NaN, "finite real values")]
    [InlineData("gaussian-learned", double.PositiveInfinity, "finite real values")]
    [InlineData("binomial", 3.0, "integers 0 to 2")]
    [InlineData("binomial", 0.5, "integers 0 to 2")]
    [InlineData("binomial", -1.0, "integers 0 to 2")]
    [InlineData("poisson", 0.5, "integers 0, 1, 2, …")]
    [InlineData("poisson", -1.0, "integers 0, 1, 2, …")]
    [InlineData("negative_binomial", -1.0, "integers 0, 1, 2, …")]
    [InlineData("negative_binomial-sized", 2.5, "integers 0, 1, 2, …")]
    public void CheckDataNamesSourceRowColumnValueAndSupport(string kind, double bad, string support)
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create(kind);
        var x = ValidData(DataKind(kind));
        likelihood.CheckData(x, "train.csv");                                                   // valid data passes
        x[3, 2] = tensor(bad, dtype: float64);
        var error = Assert.Throws<ArgumentException>(() => likelihood.CheckData(x, "train.csv"));
        Assert.Contains("train.csv", error.Message);
        Assert.Contains("row 3, column 2", error.Message);
        Assert.Contains($"holds {bad}", error.Message);
        Assert.Contains(support, error.Message);
        Assert.Contains(likelihood.Kind, error.Message);
        Assert.Equal(support, likelihood.SupportDescription);

        // Under a 0 mask the value is not checked.
        var mask = ones(5, DataDim);
        mask[3, 2] = tensor(0f);
        likelihood.CheckData(x, "train.csv", mask);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ShapeErrorsNameTheExpectedShape(string kind)
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create(kind);
        var z = Latents();
        var x = ValidData(DataKind(kind));
        var checkError = Assert.Throws<ArgumentException>(() => likelihood.CheckData(x.narrow(1, 0, 3), "valid.csv"));
        Assert.Contains("valid.csv", checkError.Message);
        Assert.Contains($"[N, {DataDim}]", checkError.Message);
        Assert.Throws<ArgumentException>(() => likelihood.CheckData(x.flatten(), "valid.csv"));

        Assert.Contains($"[B, {DataDim}]", Assert.Throws<ArgumentException>(() => likelihood.LogProb(x.narrow(1, 0, 3), z)).Message);
        Assert.Throws<ArgumentException>(() => likelihood.LogProb(x.narrow(0, 0, 4), z));                  // batch mismatch
        Assert.Throws<ArgumentException>(() => likelihood.LogProb(x, z, Mask().narrow(0, 0, 4)));          // mask shape
        Assert.Contains($"[B, {LatentDim}]", Assert.Throws<ArgumentException>(() => likelihood.LogProb(x, z.narrow(1, 0, 2))).Message);
        Assert.Throws<ArgumentException>(() => likelihood.Sample(z.narrow(1, 0, 2), new Generator(1)));
        Assert.Throws<ArgumentException>(() => likelihood.MeanNegativeLogProbPerFeature(likelihood.Decode(z), x.narrow(1, 0, 3)));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void SameSeedGivesSameSamples(string kind)
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create(kind);
        var z = Latents(50).repeat(4, 1);
        using var g1 = new Generator(7);
        using var g2 = new Generator(7);
        using var g3 = new Generator(8);
        var a = likelihood.Sample(z, g1);
        var b = likelihood.Sample(z, g2);
        var c = likelihood.Sample(z, g3);
        Assert.Equal(new long[] { 200, DataDim }, a.shape);
        Assert.True(Identical(a, b));
        Assert.False(Identical(a, c));
        Assert.False(a.requires_grad);
        // Samples lie in the support.
        likelihood.CheckData(a, "samples");
        // The mean has the data's shape.
        Assert.Equal(new long[] { 200, DataDim }, likelihood.Mean(z).shape);
    }

    [Theory]
    [InlineData("bernoulli", "bernoulli(D = 4)")]
    [InlineData("gaussian", "gaussian(D = 4, σ = 0.7)")]
    [InlineData("gaussian-learned", "gaussian(D = 4, σ learned per feature)")]
    [InlineData("binomial", "binomial(D = 4, n = 2)")]
    [InlineData("poisson", "poisson(D = 4)")]
    [InlineData("negative_binomial", "negative_binomial(D = 4, r learned per feature)")]
    [InlineData("negative_binomial-sized", "negative_binomial(D = 4, r learned per feature, size factor = row total / 6)")]
    public void DescribeNamesTheSettings(string kind, string description)
    {
        using var likelihood = Create(kind);
        Assert.Equal(description, likelihood.Describe());
        Assert.Equal(LatentDim, likelihood.LatentDim);
        Assert.Equal(DataDim, likelihood.DataDim);
    }
}
