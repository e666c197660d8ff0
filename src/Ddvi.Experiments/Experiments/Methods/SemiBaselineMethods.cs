using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Methods;

/// <summary>
/// The semi-supervised baselines as the authors' release defines them (arXiv:2401.02739; <c>./run.sh mnist_semi vae_semi
/// PRIOR</c>, <c>iaf_vae_semi</c>, <c>aae_semi</c>): the VAE and IAF-VAE with a class head on the encoder and the
/// class-tied prior term (<see cref="SemiVaeObjective"/>), β constant at the end value of the unsupervised models'
/// settings, 50 epochs; the AAE with a label-aware discriminator (<see cref="SemiAaeObjectives"/>), 200 epochs.
/// </summary>
public static class SemiBaselineMethods
{
    private const string PixelScales =
        "nats_per_image sums log p(x|z) over pixels, release_per_pixel_scale averages it over pixels (the release's BCE scale)";

    private static Tensor Labels(PhaseStep step, string model) =>
        step.Batch.Labels ?? throw new InvalidOperationException($"{model}: its training batches carry no labels");

    private static ClassConditionalDensity Density(MethodContext context) =>
        new(context.Prior, Trainer.EpochSeed(context.Config.Seed, "class-density", 0), context.Device);

    private static void RequireMatchingClasses(MethodContext context, string model)
    {
        if (context.Prior.ClassCount != context.Train.ClassCount)
            throw new ArgumentException($"--model {model}: the prior {context.Prior.Name} has {context.Prior.ClassCount} segments but {context.Config.Dataset} has {context.Train.ClassCount} classes; class c is tied to segment c, so they must match.");
    }

    /// <summary><c>vae-semi</c>: the VAE (σ² = sigmoid) with class logits; β = vae.kl_weight constant, p_w = vae.prior_weight.</summary>
    public static IExperimentMethod VaeSemi(MethodContext context)
    {
        RequireMatchingClasses(context, "vae-semi");
        var settings = context.Config.Vae;
        var semi = context.Config.Semi;
        int d = context.Prior.Dimension, classes = context.Prior.ClassCount;
        var networks = context.Networks();
        var encoder = networks.AreModelDefaults ? null : networks.Encoder([d, d, classes], settings.Hidden, settings.Dropout);
        var likelihood = networks.AreModelDefaults ? null : networks.Likelihood(d, settings.Hidden, settings.Dropout);
        var density = Density(context);
        var weights = new SemiVaeWeights(settings.KlWeight, settings.PriorWeight, semi.EntropyWeight, semi.ClassifierWeight);
        return new SingleObjectiveMethod<GaussianVae>("vae-semi",
            new GaussianVae((int)context.Train.Dimension, latentDim: d, settings.Hidden, settings.Dropout, likelihood, encoder, classes), context,
            (model, step, _) => SemiVaeObjective.Loss(model, step.Batch.RequireX(), Labels(step, "vae-semi"), density, weights, step.Generator),
            (model, x, generator) => SemiVaeObjective.Elbo(model, x, density, generator),
            "one-sample estimate per test image of log p(x|z) + Σ_c q(c|x) log p(z|c) − log q(z|x), z ~ q(z|x), log p(z|c) the per-class KDE; " + PixelScales);
    }

    /// <summary><c>iaf-vae-semi</c>: the IAF-VAE with class logits; β = iaf.kl_weight constant, p_w = iaf.prior_weight.</summary>
    public static IExperimentMethod IafVaeSemi(MethodContext context)
    {
        RequireMatchingClasses(context, "iaf-vae-semi");
        var settings = context.Config.Iaf;
        var semi = context.Config.Semi;
        int d = context.Prior.Dimension, classes = context.Prior.ClassCount;
        var networks = context.Networks();
        var encoder = networks.AreModelDefaults ? null : networks.Encoder([d, d, settings.ContextSize, classes], settings.Hidden, settings.Dropout);
        var likelihood = networks.AreModelDefaults ? null : networks.Likelihood(d, settings.Hidden, settings.Dropout);
        var density = Density(context);
        var weights = new SemiVaeWeights(settings.KlWeight, settings.PriorWeight, semi.EntropyWeight, semi.ClassifierWeight);
        return new SingleObjectiveMethod<IafVae>("iaf-vae-semi",
            new IafVae((int)context.Train.Dimension, latentDim: d, settings.Hidden, settings.Dropout, settings.ContextSize, settings.FlowLayers,
                settings.MadeHidden, likelihood, encoder, classes), context,
            (model, step, _) => SemiVaeObjective.IafLoss(model, step.Batch.RequireX(), Labels(step, "iaf-vae-semi"), density, weights, step.Generator),
            (model, x, generator) => SemiVaeObjective.IafElbo(model, x, density, generator),
            "one-sample estimate per test image of log p(x|z) + Σ_c q(c|x) log p(z|c) − log q(z|x), z = IAF(z0; h), " +
            "log q(z|x) = log N(z0; μ, σ²) − log|det ∂z/∂z0|, log p(z|c) the per-class KDE; " + PixelScales);
    }

    /// <summary><c>aae-semi</c>: the AAE whose discriminator also reads the label (one-hot over C + 1).</summary>
    public static IExperimentMethod AaeSemi(MethodContext context)
    {
        RequireMatchingClasses(context, "aae-semi");
        return new SemiAaeMethod(context);
    }
}

/// <summary>The semi-supervised AAE: the AAE's three phases per batch, with <see cref="SemiAaeObjectives"/> for the
/// discriminator and generator steps.</summary>
public sealed class SemiAaeMethod : IExperimentMethod
{
    public const string StageName = "aae-semi";

    private readonly AdversarialAutoencoder _aae;

    public SemiAaeMethod(MethodContext context)
    {
        var config = context.Config;
        var s = config.Aae;
        var prior = context.Prior;
        int d = prior.Dimension, classes = prior.ClassCount;
        var networks = context.Networks();
        var encoder = networks.AreModelDefaults ? null : networks.Encoder([d], s.Hidden, s.Dropout);
        var likelihood = networks.AreModelDefaults ? null : networks.Likelihood(d, s.Hidden, s.Dropout);
        _aae = new AdversarialAutoencoder((int)context.Train.Dimension, latentDim: d, s.Hidden, s.Dropout,
            s.DiscriminatorHidden, s.DiscriminatorDropout, likelihood, encoder, discriminatorExtraInputs: classes + 1);
        _aae.to(context.Device);

        int epochs = config.ResolvedEpochs;
        int decayEpoch = s.DecayEpochFor(epochs);
        double learningRate = config.ResolvedLearningRate;
        Func<int, double> factor = epoch => epoch >= decayEpoch ? s.LearningRateDecay : 1.0;
        static Tensor Labels(PhaseStep step) => step.Batch.Labels ?? throw new InvalidOperationException("aae-semi: its training batches carry no labels");
        var discriminatorParameters = _aae.DiscriminatorParameters();
        Stages =
        [
            new TrainingStage(StageName, epochs, context.TrainingBatches(),
            [
                new TrainingPhase
                {
                    Name = "reconstruction", Parameters = _aae.AutoencoderParameters(), LearningRate = learningRate, LearningRateFactor = factor,
                    Loss = step => AaeObjectives.ReconstructionLoss(_aae, step.Batch.RequireX()),
                },
                new TrainingPhase
                {
                    Name = "discriminator", Parameters = discriminatorParameters, LearningRate = learningRate, LearningRateFactor = factor,
                    Loss = step => SemiAaeObjectives.DiscriminatorLoss(_aae, step.Batch.RequireX(), Labels(step), prior,
                        AaeDiscriminator.NoiseStdAt(step.Epoch, epochs, s.DiscriminatorNoise), s.AdversarialWeight, step.Generator),
                },
                new TrainingPhase
                {
                    Name = "generator", Parameters = _aae.EncoderParameters(), LearningRate = learningRate, LearningRateFactor = factor,
                    FrozenParameters = _ => discriminatorParameters,
                    Loss = step => SemiAaeObjectives.GeneratorLoss(_aae, step.Batch.RequireX(), Labels(step), classes, s.AdversarialWeight),
                },
            ]),
        ];
    }

    public nn.Module Module => _aae;
    public ILatentVariableModel Model => _aae;
    public IReadOnlyList<TrainingStage> Stages { get; }
    public bool HasElbo => false;

    public string ElboDefinition =>
        "not available: an adversarial autoencoder has a deterministic encoder and defines no likelihood bound; the release's aae_semi also has no classifier q(c|x)";

    public ElboEstimate EstimateElbo(Tensor x, Generator generator) =>
        throw new NotSupportedException("the adversarial autoencoder defines no likelihood bound, so it has no ELBO to estimate (HasElbo is false)");
}
