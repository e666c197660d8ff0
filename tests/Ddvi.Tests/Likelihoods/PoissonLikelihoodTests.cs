using Ddvi.Likelihoods;
using static Ddvi.Tests.Likelihoods.LikelihoodFixtures;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Tests.Likelihoods;

public class PoissonLikelihoodTests
{
    [Fact]
    public void LogProbIsTheClosedForm()
    {
        using var scope = NewDisposeScope();
        using var likelihood = new PoissonLikelihood(Decoder(scale: 1.5), LatentDim, DataDim);
        var z = Latents();
        var x = ValidData("poisson");
        var eta = ToArray(likelihood.Decode(z));
        var xs = ToArray(x);
        var logP = ToVector(likelihood.LogProb(x, z));
        for (int i = 0; i < 5; i++)
        {
            double expected = 0;
            for (int j = 0; j < DataDim; j++)
            {
                double rate = Math.Exp(eta[i, j]);
                int k = (int)xs[i, j];
                // log(λ^k e^{−λ} / k!)
                expected += k * Math.Log(rate) - rate - LogFactorial(k);
            }
            Assert.Equal(expected, logP[i], 10);
        }
    }

    [Theory]
    [InlineData(0.3)]
    [InlineData(4.0)]
    [InlineData(37.0)]   // above 10: libtorch's transformed-rejection branch
    public void SamplesAreCountsWithMeanAndVarianceLambda(double rate)
    {
        using var scope = NewDisposeScope();
        using var likelihood = new PoissonLikelihood(Decoder(), LatentDim, DataDim);
        using var generator = new Generator(41);
        var output = full(25_000, DataDim, Math.Log(rate), dtype: float64);
        Assert.True(likelihood.MeanFromOutput(output).allclose(full_like(output, rate)));
        var x = likelihood.SampleFromOutput(output, generator);
        Assert.True(x.eq(x.round()).all().item<bool>() && x.ge(0).all().item<bool>());
        var all = x.flatten();
        // 100 000 draws: standard errors √(λ/n) for the mean and √((λ + 2λ²)/n) for the variance; 5 of each allowed.
        double n = all.shape[0];
        double meanTolerance = 5 * Math.Sqrt(rate / n), varianceTolerance = 5 * Math.Sqrt((rate + 2 * rate * rate) / n);
        Assert.InRange(all.mean().item<double>(), rate - meanTolerance, rate + meanTolerance);
        Assert.InRange(all.var().item<double>(), rate - varianceTolerance, rate + varianceTolerance);
        // P(X = 0) = e^{−λ}.
        double zeros = all.eq(0).to(float64).mean().item<double>(), p0 = Math.Exp(-rate);
        Assert.InRange(zeros, p0 - 5 * Math.Sqrt(p0 * (1 - p0) / n) - 1e-12, p0 + 5 * Math.Sqrt(p0 * (1 - p0) / n) + 1e-12);
    }
}
