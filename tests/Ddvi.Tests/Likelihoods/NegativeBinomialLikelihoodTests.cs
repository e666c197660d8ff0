using Ddvi.Likelihoods;
using static Ddvi.Tests.Likelihoods.LikelihoodFixtures;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Tests.Likelihoods;

public class NegativeBinomialLikelihoodTests
{
    static readonly double[] Dispersions = [0.5, 1.0, 2.5, 40.0];

    /// <summary>log[Γ(x + r) / (Γ(r) x!) (r/(r + μ))^r (μ/(r + μ))^x], straight from the pmf.</summary>
    static double NbLogPmf(int x, double mu, double r)
        => LogGamma(x + r) - LogGamma(r) - LogFactorial(x) + r * Math.Log(r / (r + mu)) + (x == 0 ? 0 : x * Math.Log(mu / (r + mu)));

    static NegativeBinomialLikelihood Create(double? referenceTotal = null)
    {
        var likelihood = new NegativeBinomialLikelihood(Decoder(scale: 1.2), LatentDim, DataDim, referenceTotal: referenceTotal);
        likelihood.to(float64);
        using (no_grad())
            likelihood.get_parameter("log_r")!.copy_(tensor(Dispersions.Select(v => Math.Log(v)).ToArray(), dtype: float64));
        return likelihood;
    }

    /// <summary>Σ_j over observed entries of the pmf's log, μ_ij = s_i exp(ρ_ij).</summary>
    static double[] Reference(double[,] rho, double[,] x, bool[,]? observed, double? referenceTotal)
    {
        int rows = rho.GetLength(0);
        var result = new double[rows];
        for (int i = 0; i < rows; i++)
        {
            double total = 0;
            for (int j = 0; j < DataDim; j++)
                if (observed is null || observed[i, j]) total += x[i, j];
            double s = referenceTotal is double reference ? total / reference : 1;
            for (int j = 0; j < DataDim; j++)
                if (observed is null || observed[i, j])
                    result[i] += NbLogPmf((int)x[i, j], s * Math.Exp(rho[i, j]), Dispersions[j]);
        }
        return result;
    }

    [Fact]
    public void LogProbIsTheClosedFormWithoutASizeFactor()
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create();
        var z = Latents();
        var x = ValidData("negative_binomial");
        var expected = Reference(ToArray(likelihood.Decode(z)), ToArray(x), null, null);
        AssertClose(expected, ToVector(likelihood.LogProb(x, z)), 10);
        Assert.Null(likelihood.ReferenceTotal);
        AssertClose(Dispersions, ToVector(likelihood.Dispersion()), 12);
    }

    [Fact]
    public void LogProbScalesTheMeanByTheRowTotalOverTheReference()
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create(referenceTotal: 6.0);
        var z = Latents();
        var x = ValidData("negative_binomial");                                                 // row totals 11, 3, 21, 7, 13
        var expected = Reference(ToArray(likelihood.Decode(z)), ToArray(x), null, 6.0);
        AssertClose(expected, ToVector(likelihood.LogProb(x, z)), 10);
        Assert.Equal(6.0, likelihood.ReferenceTotal);
        // The size factor matters: without it the values differ.
        using var unsized = Create();
        Assert.False(likelihood.LogProb(x, z).allclose(unsized.LogProb(x, z)));
    }

    [Fact]
    public void TheSizeFactorUsesObservedEntriesOnly()
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create(referenceTotal: 6.0);
        var z = Latents();
        var x = ValidData("negative_binomial");
        var mask = Mask();
        var withNaN = x.masked_fill(mask.logical_not(), double.NaN);
        var observed = new bool[5, DataDim];
        var maskValues = mask.data<bool>().ToArray();
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < DataDim; j++)
                observed[i, j] = maskValues[i * DataDim + j];
        var expected = Reference(ToArray(likelihood.Decode(z)), ToArray(x), observed, 6.0);
        AssertClose(expected, ToVector(likelihood.LogProb(withNaN, z, mask)), 10);
    }

    [Fact]
    public void ARowWithoutCountsHasProbabilityOneAndFiniteGradients()
    {
        using var scope = NewDisposeScope();
        using var likelihood = Create(referenceTotal: 6.0);
        var z = Latents(2);
        var x = Matrix([0, 0, 0, 0, 1, 0, 2, 0], 2, 4);
        var logP = likelihood.LogProb(x, z);
        Assert.Equal(0.0, logP[0].item<double>());
        Assert.Equal(Reference(ToArray(likelihood.Decode(z)), ToArray(x), null, 6.0)[1], logP[1].item<double>(), 10);
        logP.sum().backward();
        foreach (var p in likelihood.parameters())
            Assert.True(p.grad is not null && p.grad.isfinite().all().item<bool>());
    }

    [Fact]
    public void LogRIsAParameterWithGradientAndStartsAtTheGivenDispersion()
    {
        using var scope = NewDisposeScope();
        using var likelihood = new NegativeBinomialLikelihood(Decoder(), LatentDim, DataDim, dispersion: 3.0);
        Assert.Equal(new HashSet<string> { "decoder.weight", "decoder.bias", "log_r" }, likelihood.named_parameters().Select(p => p.name).ToHashSet());
        Assert.Equal(new HashSet<string> { "decoder.weight", "decoder.bias", "log_r" }, likelihood.state_dict().Keys.ToHashSet());
        var logR = likelihood.get_parameter("log_r")!;
        Assert.Equal(new long[] { DataDim }, logR.shape);
        Assert.True(logR.allclose(full(DataDim, Math.Log(3.0), dtype: float32)));
        likelihood.LogProb(ValidData("negative_binomial"), Latents()).sum().backward();
        Assert.True(logR.grad is not null && logR.grad.abs().min().item<float>() > 0 && logR.grad.isfinite().all().item<bool>());

        using var defaultDispersion = new NegativeBinomialLikelihood(Decoder(), LatentDim, DataDim);
        Assert.True(defaultDispersion.Dispersion().eq(1).all().item<bool>());
    }

    [Theory]
    [InlineData(3.0, 0.5)]
    [InlineData(3.0, 5.0)]
    [InlineData(40.0, 2.0)]
    public void SamplesHaveMeanMuAndVarianceMuPlusMuSquaredOverR(double mu, double r)
    {
        using var scope = NewDisposeScope();
        using var likelihood = new NegativeBinomialLikelihood(Decoder(), LatentDim, DataDim, dispersion: r, referenceTotal: 1000);
        likelihood.to(float64);
        using var generator = new Generator(51);
        var output = full(25_000, DataDim, Math.Log(mu), dtype: float64);
        Assert.True(likelihood.MeanFromOutput(output).allclose(full_like(output, mu)));     // s = 1 without data
        var x = likelihood.SampleFromOutput(output, generator);
        Assert.True(x.eq(x.round()).all().item<bool>() && x.ge(0).all().item<bool>());
        var all = x.flatten();
        double n = all.shape[0], variance = mu + mu * mu / r;
        double meanTolerance = 5 * Math.Sqrt(variance / n);
        Assert.InRange(all.mean().item<double>(), mu - meanTolerance, mu + meanTolerance);
        // Relative standard error of the sample variance √((excess kurtosis + 2)/n): 1.2% at r = 0.5 (excess kurtosis ≈ 6/r).
        Assert.InRange(all.var().item<double>() / variance, 0.94, 1.06);
        double p0 = Math.Pow(r / (r + mu), r), zeros = all.eq(0).to(float64).mean().item<double>();
        double zeroTolerance = 5 * Math.Sqrt(p0 * (1 - p0) / n);
        Assert.InRange(zeros, p0 - zeroTolerance, p0 + zeroTolerance);
    }

    [Fact]
    public void MedianTotalIsTheMedianRowTotal()
    {
        using var scope = NewDisposeScope();
        var x = ValidData("negative_binomial");                                                 // totals 11, 3, 21, 7, 13
        Assert.Equal(11.0, NegativeBinomialLikelihood.MedianTotal(x));
        Assert.Equal(9.0, NegativeBinomialLikelihood.MedianTotal(x.narrow(0, 0, 4)));          // 3, 7 | 11, 21
        // Observed totals under the fixture mask: 0 + 1 + 7 = 8, 3, 12, 1 + 1 + 3 = 5, 4.
        var withNaN = x.masked_fill(Mask().logical_not(), double.NaN);
        Assert.Equal(5.0, NegativeBinomialLikelihood.MedianTotal(withNaN, Mask()));
        Assert.Throws<ArgumentException>(() => NegativeBinomialLikelihood.MedianTotal(zeros(4)));
        Assert.Throws<ArgumentException>(() => NegativeBinomialLikelihood.MedianTotal(x, Mask().narrow(0, 0, 2)));
    }

    [Fact]
    public void RejectsBadSettings()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new NegativeBinomialLikelihood(Decoder(), LatentDim, DataDim, dispersion: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NegativeBinomialLikelihood(Decoder(), LatentDim, DataDim, dispersion: double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NegativeBinomialLikelihood(Decoder(), LatentDim, DataDim, referenceTotal: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NegativeBinomialLikelihood(Decoder(), LatentDim, DataDim, referenceTotal: double.PositiveInfinity));
    }
}
