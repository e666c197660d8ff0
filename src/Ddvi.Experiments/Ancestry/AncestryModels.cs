using System.Text.Json;
using Ddvi.Inference;
using Ddvi.Likelihoods;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Runtime;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Ancestry;

/// <summary>What a learned method leaves: its latents <c>[n, d]</c> (float32, CPU), for the clustering DDVI and VAE the
/// learned prior centres <c>[K, d]</c>, and <see cref="NoiseShare"/> of a second draw of the latents.</summary>
public sealed record LearnedEmbedding(Tensor Latents, Tensor? Centres, double NoiseShare) : IDisposable
{
    /// <summary>Above this <see cref="NoiseShare"/> the latents barely depend on the input: the posterior collapsed.</summary>
    public const double CollapsedAbove = 0.9;

    public void Dispose()
    {
        Latents.Dispose();
        Centres?.Dispose();
    }
}

/// <summary>
/// The learned methods of <c>ddvi ancestry</c> on a principal-component matrix, each trained with the library's
/// <see cref="Trainer"/> (checkpoints in the run folder, exact resume) and then encoded:
/// <list type="bullet">
/// <item><c>ddvi</c>: <see cref="ClusteringDdvi"/> (the release's <c>diff_vae_autoclustering_mse</c>): a first fit of the
/// prior diffusion to the initial mixture (stage <c>prior-diffusion</c>), then <see cref="ClusteringPhases.ForDdvi"/>
/// (stage <c>clustering-ddvi</c>).</item>
/// <item><c>vae</c>: the clustering VAE, a Gaussian VAE with the same learned mixture prior (exact mixture density in a
/// one-sample KL), its centres pushed apart and boxed like the DDVI's (<see cref="ClusteringPhases.ForVae"/>). The
/// release's <c>clustering_vae</c> instead relaxes the component choice with a Dirichlet variable; Ddvi keeps the
/// Gaussian-mixture prior both clustering models share.</item>
/// <item><c>aae</c>: the adversarial autoencoder with a standard-normal prior (the release's <c>aae_vanilla</c>), its
/// phases and schedules as for images.</item>
/// </list>
/// All three use MLPs with <see cref="AncestrySettings.HiddenLayers"/> hidden layers and a Gaussian likelihood with σ = 1/√2,
/// whose per-feature negative log-likelihood is the release's mean squared error plus a constant.
/// </summary>
public static class AncestryModels
{
    public static readonly IReadOnlyList<string> Names = ["ddvi", "vae", "aae"];

    /// <summary>Trains <paramref name="method"/> on <paramref name="pcs"/> <c>[n, K]</c> (resuming from the checkpoints under
    /// <paramref name="runFolder"/>) and returns its latents for every row.</summary>
    public static LearnedEmbedding Fit(string method, Tensor pcs, AncestrySettings settings, long seed, string runFolder,
        Action<string> log, ITrainingObserver observer, CancellationToken cancellationToken = default)
    {
        settings.Validate();
        var device = ComputeDevice.Resolve(settings.Device);
        using var data = pcs.to(float32, device).DetachFromDisposeScope();
        using var repeated = data.repeat(settings.PassesPerEpoch, 1);
        int inputDim = (int)pcs.shape[1];
        string configuration = JsonSerializer.Serialize(new { method, seed, settings.Epochs, settings.PassesPerEpoch, settings.BatchSize, inputDim });
        ComputeDevice.SeedGlobal(seed);
        using var init = new Generator((ulong)seed);
        switch (method)
        {
            case "ddvi":
            {
                using var model = ClusteringDdvi.Paper(inputDim, init, settings.LatentDim, settings.Hidden, settings.HiddenLayers,
                    settings.ChainSteps, settings.Components, settings.ComponentStd, settings.Dropout);
                model.SetNetworkPrecision(settings.Precision);
                model.to(device);
                var weights = new ClusteringWeights(KlWeight: settings.DdviKlWeight);
                var priorFit = new TrainingPhase
                {
                    Name = "prior-diffusion",
                    Parameters = model.DenoiserParameters(),
                    LearningRate = 1e-3,
                    Loss = step => ClusteringObjectives.RefitLoss(model, settings.BatchSize, weights, step.Generator),
                };
                int stepsPerEpoch = Math.Min(1000, settings.PriorDiffusionIterations);
                int priorEpochs = (settings.PriorDiffusionIterations + stepsPerEpoch - 1) / stepsPerEpoch;
                RunStage(model, [priorFit], new DataFreeSteps(stepsPerEpoch), "prior-diffusion", priorEpochs, seed, runFolder, configuration, observer, cancellationToken);
                var phases = ClusteringPhases.ForDdvi(model, weights, settings.LearningRate, priorBatchSize: settings.BatchSize);
                RunStage(model, phases, new TensorBatches(repeated, null, settings.BatchSize), "clustering-ddvi", settings.Epochs, seed, runFolder, configuration, observer, cancellationToken);
                return Encode(model, data, seed, model.Prior.Means);
            }
            case "vae":
            {
                var widths = Enumerable.Repeat(settings.Hidden, settings.HiddenLayers).ToArray();
                var encoder = new Mlp(inputDim, widths, [settings.LatentDim, settings.LatentDim], settings.Dropout);
                var likelihood = new GaussianLikelihood(new Mlp(settings.LatentDim, widths, [inputDim], settings.Dropout), settings.LatentDim, inputDim, Math.Sqrt(0.5));
                using var vae = new GaussianVae(inputDim, settings.LatentDim, settings.Hidden, settings.Dropout, likelihood, encoder);
                // The release's clustering VAE starts its centres uniformly in the box [−2.5, 2.5]^d.
                using var start = rand([settings.Components, settings.LatentDim], dtype: ScalarType.Float64, generator: init) * Scalars.Of(5) - Scalars.Of(2.5);
                using var prior = new LearnableGaussianMixture(start, initialStd: settings.ComponentStd);
                using var both = new ModuleGroup(vae, prior);
                both.SetNetworkPrecision(settings.Precision);
                both.to(device);
                int epochs = settings.Epochs;
                var phases = ClusteringPhases.ForVae(vae, prior, epoch => settings.VaeKlWeight * Math.Min(1.0, (epoch + 1.0) / epochs),
                    learningRate: settings.LearningRate, pairs: settings.Components, decayEpoch: epochs / 2);
                RunStage(both, phases, new TensorBatches(repeated, null, settings.BatchSize), "clustering-vae", epochs, seed, runFolder, configuration, observer, cancellationToken);
                return Encode(vae, data, seed, prior.Means);
            }
            case "aae":
            {
                var widths = Enumerable.Repeat(settings.Hidden, settings.HiddenLayers).ToArray();
                var encoder = new Mlp(inputDim, widths, [settings.LatentDim], settings.Dropout);
                var likelihood = new GaussianLikelihood(new Mlp(settings.LatentDim, widths, [inputDim], settings.Dropout), settings.LatentDim, inputDim, Math.Sqrt(0.5));
                using var aae = new AdversarialAutoencoder(inputDim, settings.LatentDim, settings.Hidden, settings.Dropout, likelihood: likelihood, encoder: encoder);
                aae.SetNetworkPrecision(settings.Precision);
                aae.to(device);
                var prior = new StandardNormalPrior(settings.LatentDim, device);
                var aaeSettings = new AaeSettings();
                int epochs = settings.Epochs;
                int decay = aaeSettings.DecayEpochFor(epochs);
                Func<int, double> factor = epoch => epoch >= decay ? aaeSettings.LearningRateDecay : 1.0;
                var discriminatorParameters = aae.DiscriminatorParameters();
                TrainingPhase[] phases =
                [
                    new() { Name = "reconstruction", Parameters = aae.AutoencoderParameters(), LearningRate = settings.AaeLearningRate, LearningRateFactor = factor,
                        Loss = step => AaeObjectives.ReconstructionLoss(aae, step.Batch.RequireX()) },
                    new() { Name = "discriminator", Parameters = discriminatorParameters, LearningRate = settings.AaeLearningRate, LearningRateFactor = factor,
                        Loss = step => AaeObjectives.DiscriminatorLoss(aae, step.Batch.RequireX(), prior,
                            AaeDiscriminator.NoiseStdAt(step.Epoch, epochs, aaeSettings.DiscriminatorNoise), aaeSettings.AdversarialWeight, step.Generator) },
                    new() { Name = "generator", Parameters = aae.EncoderParameters(), LearningRate = settings.AaeLearningRate, LearningRateFactor = factor,
                        FrozenParameters = _ => discriminatorParameters,
                        Loss = step => AaeObjectives.GeneratorLoss(aae, step.Batch.RequireX(), aaeSettings.AdversarialWeight) },
                ];
                RunStage(aae, phases, new TensorBatches(repeated, null, settings.BatchSize), "aae", epochs, seed, runFolder, configuration, observer, cancellationToken);
                return Encode(aae, data, seed, null);
            }
            default:
                throw new ArgumentException($"ddvi ancestry: '{method}' is not a learned method; expected one of {string.Join(", ", Names)}.", nameof(method));
        }
    }

    private static void RunStage(nn.Module module, IReadOnlyList<TrainingPhase> phases, IBatchSource batches, string stage, int epochs,
        long seed, string runFolder, string configuration, ITrainingObserver observer, CancellationToken cancellationToken)
    {
        string folder = Path.Combine(runFolder, "checkpoints", stage);
        Directory.CreateDirectory(folder);
        bool resume = Checkpoint.Latest(folder) is not null;
        new Trainer(observer).Fit(module, phases, batches, new TrainerOptions(stage, epochs, seed, folder, CheckpointEvery: 10),
            configuration, resume, cancellationToken);
    }

    private static LearnedEmbedding Encode(nn.Module module, Tensor data, long seed, Tensor? centres)
    {
        var model = (ILatentVariableModel)module;
        module.eval();
        using var noGrad = no_grad();
        var latents = EncodeAll(model, data, (ulong)seed + 1);
        using var second = EncodeAll(model, data, (ulong)seed + 2);
        return new LearnedEmbedding(latents, centres?.detach().cpu().clone().DetachFromDisposeScope(), NoiseShare(latents, second));
    }

    static Tensor EncodeAll(ILatentVariableModel model, Tensor data, ulong seed)
    {
        using var generator = new Generator(seed);
        var parts = new List<Tensor>();
        for (long start = 0; start < data.shape[0]; start += 1024)
        {
            using var rows = data.narrow(0, start, Math.Min(1024, data.shape[0] - start));
            parts.Add(model.EncodeLatents(rows, generator).cpu());
        }
        var latents = cat(parts, 0).DetachFromDisposeScope();
        foreach (var part in parts) part.Dispose();
        return latents;
    }

    /// <summary>
    /// The share of the latents' variance that is posterior noise rather than the input, from two independent draws
    /// z⁽¹⁾, z⁽²⁾ <c>[n, d]</c> of every sample's latent: by the law of total variance, tr Cov(z) = E tr Var(z | x) +
    /// tr Var(E[z | x]), and E tr Var(z | x) = E‖z⁽¹⁾ − z⁽²⁾‖² / 2, so the share is that over tr Cov(z⁽¹⁾) (both
    /// averaged over the samples). 0 for a deterministic encoder; about 1 when the latents do not depend on the input
    /// (a collapsed posterior: every sample's latent is a draw from the same distribution); 0 when nothing varies.
    /// </summary>
    public static double NoiseShare(Tensor first, Tensor second) // [n, d], [n, d]
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (first.dim() != 2 || !first.shape.SequenceEqual(second.shape) || first.shape[0] < 2)
            throw new ArgumentException($"AncestryModels.NoiseShare: two draws [n, d] of the same shape with n ≥ 2 are needed, got [{string.Join(", ", first.shape)}] and [{string.Join(", ", second.shape)}].");
        using var scope = NewDisposeScope();
        var a = first.to(float64);
        var within = (a - second.to(float64)).pow(Scalars.Of(2)).sum(1).mean().item<double>() / 2;
        var total = (a - a.mean([0], keepdim: true)).pow(Scalars.Of(2)).sum(1).mean().item<double>();
        return total > 0 ? within / total : 0;
    }

    /// <summary>Two modules trained and checkpointed together (the clustering VAE and its prior).</summary>
    private sealed class ModuleGroup : nn.Module
    {
        public ModuleGroup(nn.Module model, nn.Module prior) : base(nameof(ModuleGroup))
        {
            register_module("model", model);
            register_module("prior", prior);
        }
    }
}
