using System.Text.Json;
using System.Text.Json.Serialization;
using Ddvi.FastPaths;
using Ddvi.Likelihoods;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Runtime;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Inference;

/// <summary>
/// Networks to use in place of <see cref="DdviFit"/>'s defaults. Each null entry is built from <see cref="DdviOptions"/>:
/// an <see cref="Mlp"/> encoder D → hidden → 2d (μ, log σ²), an <see cref="Mlp"/> auxiliary encoder D → hidden → c, and a
/// <see cref="ConditionalDenoiser"/> over d-dimensional states with T = <see cref="DdviOptions.PosteriorSteps"/>.
/// Injected networks must be given again, built the same way, to <see cref="FittedDdvi.Load"/>.
/// </summary>
/// <param name="Encoder">x <c>[B, D]</c> → <c>[B, 2d]</c>: μ then log σ² of q(y_T | x).</param>
/// <param name="AuxiliaryEncoder">x <c>[B, D]</c> → the context a_φ(x) <c>[B, c]</c>, c = the denoiser's context width.</param>
/// <param name="PosteriorDenoiser">ε_φ(y_t, a, t).</param>
public sealed record DdviNetworks(
    nn.Module<Tensor, Tensor>? Encoder = null,
    nn.Module<Tensor, Tensor>? AuxiliaryEncoder = null,
    ConditionalDenoiser? PosteriorDenoiser = null);

/// <summary>One finished epoch of <see cref="DdviFit.Fit"/>.</summary>
/// <param name="Epoch">1-based epoch just finished.</param>
/// <param name="Epochs">Epochs in all.</param>
/// <param name="Seconds">Seconds the epoch took.</param>
/// <param name="Losses">Mean of each loss term over the epoch (<c>wake/loss</c>, <c>wake/bce</c>, <c>sleep/noise</c>, …).</param>
public sealed record FitProgress(int Epoch, int Epochs, double Seconds, IReadOnlyDictionary<string, double> Losses);

/// <summary>
/// Denoising diffusion variational inference as a black-box method (Piriyakulkij, Wang and Kuleshov, arXiv:2401.02739):
/// give a likelihood p(x | z) (a <see cref="Likelihood"/> module owning its decoder) and a prior p(z) (any
/// <see cref="IPrior"/>, learnable when it is a module), get a <see cref="FittedDdvi"/> whose posterior q(z | x) is a
/// learned x-conditioned diffusion chain y_T ~ N(μ(x), σ²(x)) → … → z.
/// </summary>
/// <example>
/// <code>
/// var likelihood = new PoissonLikelihood(new Mlp(5, [64, 64], [D]), latentDim: 5, dataDim: D);
/// var prior = new LearnableGaussianMixture(components: 4, dimension: 5, seed: 0);
/// using var fitted = DdviFit.Fit(counts, likelihood, prior, new DdviOptions { Epochs = 50 });
/// var z = fitted.PosteriorMean(newCounts);
/// fitted.Save("counts.ddvi");
/// </code>
/// </example>
public static class DdviFit
{
    internal const string StageName = "ddvi";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>
    /// Fits the posterior (and, unless <see cref="DdviOptions.TrainLikelihood"/> is off, the likelihood; and a learnable
    /// prior's parameters) to data <paramref name="x"/> <c>[N, D]</c>. Entries that are NaN are missing: they are left
    /// out of log p(x | z) and read as 0 by the encoders.
    /// </summary>
    /// <param name="x">Training data <c>[N, D]</c> (float32 or float64; any device: it is moved).</param>
    /// <param name="likelihood">p(x | z); its parameters are trained in place.</param>
    /// <param name="prior">p(z) on R^d, d = the likelihood's latent width.</param>
    /// <param name="options">Settings (<see cref="DdviOptions"/>'s defaults when null).</param>
    /// <param name="progress">Told after every epoch.</param>
    /// <param name="cancellationToken">Checked after every step; cancelling throws <see cref="OperationCanceledException"/>
    /// and keeps the checkpoints written so far; with a checkpoint folder, it first writes a checkpoint of the step where it
    /// stopped (a <see cref="Training.TrainingStoppedException"/>), from which the same call continues exactly.</param>
    /// <param name="networks">Networks to use in place of the defaults.</param>
    public static FittedDdvi Fit(Tensor x, Likelihood likelihood, IPrior prior, DdviOptions? options = null,
        IProgress<FitProgress>? progress = null, CancellationToken cancellationToken = default, DdviNetworks? networks = null)
    {
        CpuRuntime.Configure(); // Ddvi's process-wide CPU settings, once (a no-op when the program applied them already)
        ArgumentNullException.ThrowIfNull(x);
        options ??= new DdviOptions();
        options.Validate();
        CheckParts(likelihood, prior);
        if (x.dim() != 2 || x.shape[1] != likelihood.DataDim || x.shape[0] < 1)
            throw new ArgumentException($"DdviFit.Fit: data must be [N, {likelihood.DataDim}] with N ≥ 1 (the likelihood's D), got [{string.Join(", ", x.shape)}].", nameof(x));
        if (!x.is_floating_point())
            throw new ArgumentException($"DdviFit.Fit: data must be float32 or float64, got {x.dtype}.", nameof(x));

        var device = ComputeDevice.Resolve(options.Device);
        var state = Assemble(likelihood, prior, options, networks, device);
        var model = state.Model;
        // A copy of its own: missing entries are filled in place, and the caller's tensor is left alone.
        var dtype = model.parameters().First().dtype;
        var data = x.to(dtype, device, copy: true).DetachFromDisposeScope();
        try
        {
            bool hasMissing;
            using (NewDisposeScope())
                hasMissing = data.isnan().any().item<bool>();
            var observed = hasMissing ? data.isnan().logical_not().DetachFromDisposeScope() : null;
            if (hasMissing)
                data.nan_to_num_(0.0);
            likelihood.CheckData(data, "DdviFit.Fit data", observed);

            var likelihoodParameters = likelihood.parameters().ToList();
            var wakeParameters = new List<TorchSharp.Modules.Parameter>(model.WakeParameters()
                .Where(p => options.TrainLikelihood || !likelihoodParameters.Contains(p)));
            // A prior that is a module is trained through all its trainable parameters, whether or not it lists them.
            var priorParameters = prior is nn.Module priorModule
                ? priorModule.parameters().Where(p => p.requires_grad).Union(prior.PriorParameters).ToList()
                : prior.PriorParameters;
            wakeParameters.AddRange(priorParameters.Where(p => !wakeParameters.Contains(p)));
            var (wake, sleep) = DdviPhases.WakeAndSleep(model, prior, options.Weights, options.LearningRate, options.SleepLearningRate,
                options.SleepSteps, options.BatchSize, wakeParameters,
                frozenParameters: epoch => epoch < options.FrozenLikelihoodEpochs && options.TrainLikelihood ? likelihoodParameters : [],
                mask: observed is null ? null : step => MaskRows(observed, step));

            // Missing-entry masks travel as the batch's "labels": the row indices select the same rows of the mask.
            var batches = new TensorBatches(data, observed is null ? null : arange(Scalars.Of(0), Scalars.Of(data.shape[0]), Scalars.Of(1), device: device), options.BatchSize);
            if (options.CheckpointFolder is not null) Directory.CreateDirectory(options.CheckpointFolder);
            bool resume = options.CheckpointFolder is not null && Checkpoint.Latest(options.CheckpointFolder) is not null;
            var trainerOptions = new TrainerOptions(StageName, options.Epochs, options.Seed, options.CheckpointFolder, options.CheckpointEvery);
            var history = new Trainer(new ProgressObserver(progress)).Fit(state, [wake, sleep], batches, trainerOptions,
                FittedDdvi.Header(state, options, networks is not null).ToJsonString(Json), resume, cancellationToken);
            observed?.Dispose();
            return new FittedDdvi(state, options, networks is not null, history);
        }
        catch
        {
            state.Dispose();
            throw;
        }
        finally
        {
            data.Dispose();
        }
    }

    private static Tensor MaskRows(Tensor observed, PhaseStep step)
    {
        var rows = step.Batch.Labels ?? throw new InvalidOperationException("DdviFit: the batch lost its row indices.");
        return observed.index_select(0, rows);
    }

    internal static void CheckParts(Likelihood likelihood, IPrior prior)
    {
        ArgumentNullException.ThrowIfNull(likelihood);
        ArgumentNullException.ThrowIfNull(prior);
        if (prior.Dimension != likelihood.LatentDim)
            throw new ArgumentException($"DdviFit: the prior '{prior.Name}' is on R^{prior.Dimension} but the likelihood reads d = {likelihood.LatentDim} latents.", nameof(prior));
    }

    /// <summary>Builds the model around the parts (default networks seeded by the options) and moves it to the device.</summary>
    internal static FitState Assemble(Likelihood likelihood, IPrior prior, DdviOptions options, DdviNetworks? networks, Device device)
    {
        int d = likelihood.LatentDim, D = likelihood.DataDim;
        ComputeDevice.SeedGlobal(options.Seed);
        var encoder = networks?.Encoder ?? new Mlp(D, options.HiddenWidths, [d, d], options.Dropout);
        var auxiliary = networks?.AuxiliaryEncoder ?? new Mlp(D, options.HiddenWidths, [options.ContextDim], options.Dropout);
        var denoiser = networks?.PosteriorDenoiser ?? new ConditionalDenoiser(options.PosteriorSteps, d, options.ContextDim, options.DenoiserHidden);
        var model = new DdviModel(encoder, likelihood, auxiliary, denoiser, priorDenoiser: null, options.Schedule);
        model.SetNetworkPrecision(options.Precision);
        var state = new FitState(model, prior);
        // Before any optimiser sees the parameters: .to() replaces parameter objects.
        state.to(device);
        return state;
    }

    private sealed class ProgressObserver(IProgress<FitProgress>? progress) : ITrainingObserver
    {
        public void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch) { }
        public void StepCompleted(string stage, int epoch, int step, IReadOnlyDictionary<string, double>? runningLosses) { }
        public void EpochCompleted(string stage, EpochRecord record, int epochs)
            => progress?.Report(new FitProgress(record.Epoch + 1, epochs, record.Seconds, record.Losses));
        public void Message(string text) { }
    }
}

/// <summary>
/// Everything a fit trains and saves, as one module: <c>model</c> (the <see cref="DdviModel"/> with the likelihood) and,
/// when the prior is a module, <c>prior</c>.
/// </summary>
internal sealed class FitState : nn.Module
{
    public FitState(DdviModel model, IPrior prior) : base(nameof(FitState))
    {
        Model = model;
        Prior = prior;
        register_module("model", model);
        if (prior is nn.Module module) register_module("prior", module);
    }

    public DdviModel Model { get; }
    public IPrior Prior { get; }
}
