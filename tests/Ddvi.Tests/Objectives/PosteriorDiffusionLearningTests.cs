using Ddvi.FastPaths;
using Ddvi.Diffusion;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Objectives;

/// <summary>
/// The sleep phase is what teaches DDVI's posterior chain the prior's shape: after it, the chain carries a start
/// y_T = √ᾱ_T z + √(1−ᾱ_T) ε, as the encoder is trained to produce, onto the prior's support.
/// </summary>
public class PosteriorDiffusionLearningTests
{
    /// <summary>Mean distance from each point to its nearest neighbour among many prior samples: 0 on the support.</summary>
    private static double DistanceToSupport(Tensor points, Tensor support)
    {
        using var scope = NewDisposeScope();
        return cdist(points, support).min(1).values.mean().item<float>();
    }

    private static Tensor ChainOutput(DdviModel model, Tensor z, Tensor yT)
    {
        using var noGrad = no_grad();
        var context = model.AuxiliaryEncoder.call(model.DecodeMeans(z));
        return ReverseChain.Run((y, t) => model.PosteriorDenoiser.call(y, context, t), yT, model.PosteriorSchedule).Z;
    }

    [Fact]
    public void SleepTrainingMovesTheChainsOutputOntoThePrior()
    {
        TorchSharp.torch.manual_seed(1);
        using var scope = NewDisposeScope();
        using var model = DdviModel.Paper(inputDim: 64, hidden: 32, priorSteps: 5, posteriorSteps: 40, denoiserHidden: 64);
        var prior = new PinwheelPrior(CPU);
        using var generator = new Generator(2);
        using var optimizer = new FusedAdam(model.SleepParameters(), lr: 1e-3);
        var weights = new DdviWeights();

        using var evaluation = new Generator(3);
        var support = prior.SampleLabelled(20_000, evaluation).Z;
        var z = prior.SampleLabelled(500, evaluation).Z;
        var alphaBarT = model.PosteriorSchedule.AlphaBar[model.PosteriorSchedule.Steps].item<float>();
        var yT = Math.Sqrt(alphaBarT) * z + Math.Sqrt(1 - alphaBarT) * randn(z.shape, generator: evaluation);
        double start = DistanceToSupport(yT, support);
        model.eval();
        double untrained = DistanceToSupport(ChainOutput(model, z, yT), support);

        model.train();
        for (int step = 0; step < 600; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            DdviObjectives.SleepLoss(model, prior, 128, weights, generator).Total.backward();
            optimizer.step();
        }
        model.eval();
        double trained = DistanceToSupport(ChainOutput(model, z, yT), support);

        Assert.True(trained < 0.8 * start, $"distance to the prior's support: chain start {start:F4}, chain output after sleep training {trained:F4}");
        Assert.True(trained < 0.8 * untrained, $"distance to the prior's support of the chain output: untrained {untrained:F4}, trained {trained:F4}");
    }
}
