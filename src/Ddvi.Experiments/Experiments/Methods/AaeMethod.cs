using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Methods;

/// <summary>
/// The adversarial autoencoder baseline trained as the release trains it (arXiv:2401.02739; the authors' release):
/// one stage whose every batch runs three phases in order, each with its own Adam optimiser (lr 2e-4): "reconstruction"
/// (encoder and decoder), "discriminator" (discriminator only) and "generator" (encoder only, the discriminator
/// held fixed). Every learning rate is multiplied by 0.1 from epoch 150 of 200 (75% of the run), and the
/// discriminator's input noise steps down 0.2 → 0.1 → 0 at the quarter and half marks
/// (<see cref="AaeDiscriminator.NoiseStdAt"/>). An AAE defines no likelihood bound, so no ELBO is reported.
/// </summary>
public sealed class AaeMethod : IExperimentMethod
{
    public const string StageName = "aae";

    private readonly AdversarialAutoencoder _aae;

    public AaeMethod(MethodContext context)
    {
        var config = context.Config;
        var s = config.Aae;
        int d = context.Prior.Dimension;
        var networks = context.Networks();
        var encoder = networks.AreModelDefaults ? null : networks.Encoder([d], s.Hidden, s.Dropout);
        var likelihood = networks.AreModelDefaults ? null : networks.Likelihood(d, s.Hidden, s.Dropout);
        _aae = new AdversarialAutoencoder((int)context.Train.Dimension, latentDim: d, s.Hidden, s.Dropout,
            s.DiscriminatorHidden, s.DiscriminatorDropout, likelihood, encoder);
        // Move before any optimiser sees the parameters: .to() replaces parameter objects.
        _aae.to(context.Device);

        int epochs = config.ResolvedEpochs;
        int decayEpoch = s.DecayEpochFor(epochs);
        double learningRate = config.ResolvedLearningRate;
        Func<int, double> factor = epoch => epoch >= decayEpoch ? s.LearningRateDecay : 1.0;
        var prior = context.Prior;

        var reconstruction = new TrainingPhase
        {
            Name = "reconstruction",
            Parameters = _aae.AutoencoderParameters(),
            LearningRate = learningRate,
            LearningRateFactor = factor,
            Loss = step => AaeObjectives.ReconstructionLoss(_aae, step.Batch.RequireX()),
        };
        var discriminator = new TrainingPhase
        {
            Name = "discriminator",
            Parameters = _aae.DiscriminatorParameters(),
            LearningRate = learningRate,
            LearningRateFactor = factor,
            Loss = step => AaeObjectives.DiscriminatorLoss(_aae, step.Batch.RequireX(), prior,
                AaeDiscriminator.NoiseStdAt(step.Epoch, epochs, s.DiscriminatorNoise), s.AdversarialWeight, step.Generator),
        };
        var discriminatorParameters = _aae.DiscriminatorParameters();
        var generator = new TrainingPhase
        {
            Name = "generator",
            Parameters = _aae.EncoderParameters(),
            LearningRate = learningRate,
            LearningRateFactor = factor,
            // The loss back-propagates through D into the encoder; D's own weights must not collect gradient.
            FrozenParameters = _ => discriminatorParameters,
            Loss = step => AaeObjectives.GeneratorLoss(_aae, step.Batch.RequireX(), s.AdversarialWeight),
        };
        Stages = [new TrainingStage(StageName, epochs, context.TrainingBatches(), [reconstruction, discriminator, generator])];
    }

    public nn.Module Module => _aae;
    public ILatentVariableModel Model => _aae;
    public AdversarialAutoencoder Autoencoder => _aae;
    public IReadOnlyList<TrainingStage> Stages { get; }
    public bool HasElbo => false;

    public string ElboDefinition =>
        "not available: an adversarial autoencoder has a deterministic encoder and matches its aggregate posterior to the prior " +
        "through a discriminator, so it defines no likelihood and no evidence lower bound";

    public ElboEstimate EstimateElbo(Tensor x, Generator generator) =>
        throw new NotSupportedException("the adversarial autoencoder defines no likelihood bound, so it has no ELBO to estimate (HasElbo is false)");
}
