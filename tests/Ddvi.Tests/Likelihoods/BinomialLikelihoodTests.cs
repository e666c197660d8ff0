using Ddvi.Likelihoods;
using static Ddvi.Tests.Likelihoods.LikelihoodFixtures;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Tests.Likelihoods;

public class BinomialLikelihoodTests
{
    static double Choose(int n, int k)
    {
        double c = 1;
        for (int i = 1; i <= k; i++) c = c * (n - k + i) / i;
        return c;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    public void LogProbIsTheClosedForm(int trials)
    {
        using var scope = NewDisposeScope();
        using var likelihood = new BinomialLikelihood(Decoder(scale: 2.0), LatentDim, DataDim, trials);
        var z = Latents();
        var counts = new double[20];
        for (int k = 0; k < counts.Length; k++) counts[k] = (k * 5 + 3) % (trials + 1);
        var x = Matrix(counts, 5, 4);
        var logits = ToArray(likelihood.Decode(z));
        var logP = ToVector(likelihood.LogProb(x, z));
        for (int i = 0; i < 5; i++)
        {
            double expected = 0;
            for (int j = 0; j < DataDim; j++)
            {
                int k = (int)counts[i * 4 + j];
                double p = Sigmoid(logits[i, j]);
                expected += Math.Log(Choose(trials, k) * Math.Pow(p, k) * Math.Pow(1 - p, trials - k));
            }
            Assert.Equal(expected, logP[i], 10);
        }
    }

    [Fact]
    public void LogProbStaysFiniteForLargeLogits()
    {
        using var scope = NewDisposeScope();
        using var likelihood = new BinomialLikelihood(Decoder(), LatentDim, DataDim, trials: 2);
        var output = tensor(new[] { 60.0, -60.0, 200.0, -200.0 }, dtype: float64).reshape(1, 4);
        var x = tensor(new[] { 2.0, 0.0, 1.0, 1.0 }, dtype: float64).reshape(1, 4);
        // log p = 2 log σ(60) + log σ(−60)·0 … : the first two are ≈ 0, the last two are log 2 − 200 each.
        double expected = -2 * Math.Log(1 + Math.Exp(-60)) - 2 * Math.Log(1 + Math.Exp(-60)) + 2 * (Math.Log(2) - 200);
        Assert.Equal(expected, likelihood.LogProbFromOutput(output, x).item<double>(), 9);
    }

    [Fact]
    public void MeanIsNSigmoidAndSamplesAreCountsWithBinomialMoments()
    {
        using var scope = NewDisposeScope();
        using var likelihood = new BinomialLikelihood(Decoder(), LatentDim, DataDim, trials: 3);
        using var generator = new Generator(31);
        var z = Latents(1).repeat(40_000, 1);
        var mean = likelihood.Mean(z.narrow(0, 0, 1));
        var p = functional.sigmoid(likelihood.Decode(z.narrow(0, 0, 1)));
        Assert.True(mean.allclose(3 * p));
        var x = likelihood.Sample(z, generator);
        Assert.True(x.eq(x.round()).all().item<bool>() && x.ge(0).all().item<bool>() && x.le(3).all().item<bool>());
        // Variance 3p(1 − p) ≤ 0.75: standard errors about 0.0043 for the mean and 0.005 for the variance.
        Assert.True((x.mean([0L], keepdim: true) - mean).abs().max().item<double>() < 0.02);
        Assert.True((x.var(0) - (3 * p * (1 - p)).squeeze(0)).abs().max().item<double>() < 0.03);
    }

    [Fact]
    public void RejectsFewerThanOneTrial()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BinomialLikelihood(Decoder(), LatentDim, DataDim, trials: 0));
        using var likelihood = new BinomialLikelihood(Decoder(), LatentDim, DataDim, trials: 2);
        Assert.Equal(2, likelihood.Trials);
        Assert.Equal("binomial(D = 4, n = 2)", likelihood.Describe());
    }
}
