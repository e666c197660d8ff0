using Ddvi.Likelihoods;
using static Ddvi.Tests.Likelihoods.LikelihoodFixtures;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Tests.Likelihoods;

public class BernoulliLikelihoodTests
{
    [Fact]
    public void LogProbIsTheClosedFormWithSoftTargets()
    {
        using var scope = NewDisposeScope();
        using var likelihood = new BernoulliLikelihood(Decoder(), LatentDim, DataDim);
        var z = Latents();
        var x = ValidData("bernoulli");
        var logits = ToArray(likelihood.Decode(z));
        var xs = ToArray(x);
        var logP = ToVector(likelihood.LogProb(x, z));
        for (int i = 0; i < 5; i++)
        {
            double expected = 0;
            for (int j = 0; j < DataDim; j++)
            {
                double p = Sigmoid(logits[i, j]);
                expected += xs[i, j] * Math.Log(p) + (1 - xs[i, j]) * Math.Log(1 - p);
            }
            Assert.Equal(expected, logP[i], 12);
        }
    }

    [Fact]
    public void MeanIsSigmoidAndSamplesAreZeroOneWithThatMean()
    {
        using var scope = NewDisposeScope();
        using var likelihood = new BernoulliLikelihood(Decoder(), LatentDim, DataDim);
        using var generator = new Generator(11);
        var z = Latents(2).repeat(20_000, 1);                                                 // [40000, 3]
        var mean = likelihood.Mean(z);
        Assert.True(mean.allclose(functional.sigmoid(likelihood.Decode(z))));
        var x = likelihood.Sample(z, generator);
        Assert.True(x.eq(0).logical_or(x.eq(1)).all().item<bool>());
        // Each of the 2 latents has 20 000 draws per feature: standard error ≤ 0.5/√20000 ≈ 0.0035.
        var empirical = x.reshape(20_000, 2, DataDim).mean([0L]);
        Assert.True((empirical - mean.narrow(0, 0, 2)).abs().max().item<double>() < 0.018);
    }
}
