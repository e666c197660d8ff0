using Ddvi.Diffusion;
using Ddvi.Likelihoods;
using Ddvi.Priors;
using Ddvi.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// Clustering DDVI, the model of the paper's genomics experiment (arXiv:2401.02739; the authors' release,
/// <c>diff_vae_autoclustering_mse</c>): a prior p(z) that is a Gaussian mixture with learned centres
/// (<see cref="LearnableGaussianMixture"/>, isotropic, fixed σ), and a posterior that is the prior's own diffusion run
/// backwards from an encoded start: y ~ q(y|x) = N(μ(x), diag σ²(x)), then the unconditional deterministic DDIM chain of
/// the prior denoiser ε_θ(y_t, t) over T steps → z. The prior denoiser is trained two ways: end to end through the
/// reconstruction (the chain is the posterior) and, after every epoch, on draws of the current mixture, which the
/// centres follow (<c>Ddvi.Objectives.ClusteringObjectives</c>).
/// </summary>
/// <remarks>
/// The parts are injected: <c>encoder</c> (x <c>[B, D]</c> → <c>[B, 2d]</c>, μ then log σ²), <c>likelihood</c> (p(x | z)
/// with its decoder), <c>priorDenoiser</c> (ε_θ over d-dimensional states; its step count is T) and the mixture
/// <c>prior</c>. All four are submodules, so one checkpoint carries the networks and the learned centres. Holds no
/// optimiser and runs no loop.
/// </remarks>
public sealed class ClusteringDdvi : Module, ILatentVariableModel, IDiffusionPosterior
{
    private readonly Module<Tensor, Tensor> encoder;
    private readonly Likelihood likelihood;
    private readonly TimeConditionedMlp priorDenoiser;
    private readonly LearnableGaussianMixture prior;
    private readonly NoiseSchedule schedule;

    /// <param name="encoder">x <c>[B, D]</c> → <c>[B, 2d]</c>: μ(x) then log σ²(x).</param>
    /// <param name="likelihood">p(x | z) with its decoder; sets D and d.</param>
    /// <param name="priorDenoiser">ε_θ(y_t, t) on d-dimensional states; its step count is the chain's T.</param>
    /// <param name="prior">The mixture p(z) on R^d whose centres are learned.</param>
    /// <param name="scheduleKind">β schedule of the chain (linear 1e-4 → 0.02, as the release).</param>
    public ClusteringDdvi(Module<Tensor, Tensor> encoder, Likelihood likelihood, TimeConditionedMlp priorDenoiser,
        LearnableGaussianMixture prior, NoiseScheduleKind scheduleKind = NoiseScheduleKind.Linear) : base(nameof(ClusteringDdvi))
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(likelihood);
        ArgumentNullException.ThrowIfNull(priorDenoiser);
        ArgumentNullException.ThrowIfNull(prior);
        if (priorDenoiser.DataDim != likelihood.LatentDim)
            throw new ArgumentException($"ClusteringDdvi: the prior denoiser runs on {priorDenoiser.DataDim}-dimensional states but the likelihood reads d = {likelihood.LatentDim} latents.", nameof(priorDenoiser));
        if (prior.Dimension != likelihood.LatentDim)
            throw new ArgumentException($"ClusteringDdvi: the prior is on R^{prior.Dimension} but the likelihood reads d = {likelihood.LatentDim} latents.", nameof(prior));
        if (encoder is Mlp mlp && (mlp.InputDim != likelihood.DataDim || mlp.OutputDim != 2L * likelihood.LatentDim))
            throw new ArgumentException($"ClusteringDdvi: the encoder maps {mlp.InputDim} → {mlp.OutputDim} values, expected D = {likelihood.DataDim} → 2d = {2 * likelihood.LatentDim} (μ and log σ²).", nameof(encoder));
        InputDim = likelihood.DataDim;
        LatentDim = likelihood.LatentDim;
        this.encoder = encoder;
        this.likelihood = likelihood;
        this.priorDenoiser = priorDenoiser;
        this.prior = prior;
        schedule = new NoiseSchedule(scheduleKind, priorDenoiser.Steps);
        RegisterComponents();
    }

    /// <summary>
    /// The release's networks for the genomics experiment: encoder and decoder MLPs with four hidden layers of
    /// <paramref name="hidden"/> units (LeakyReLU 0.2, dropout 0.2), a Gaussian likelihood with fixed σ = 1/√2 (so that its
    /// per-feature negative log-likelihood is the release's mean squared error plus a constant), a 4-layer prior denoiser
    /// of width 128 over T = <paramref name="steps"/>, and a mixture of <paramref name="components"/> isotropic components
    /// of standard deviation <paramref name="componentStd"/> whose initial centres are drawn from U[0, 0.1)^d (the
    /// release's start: all centres near the origin, pushed apart by the separation loss). Networks are created in the
    /// order encoder, decoder, prior denoiser, with the global generator (seed it first); the centres come from
    /// <paramref name="generator"/>.
    /// </summary>
    public static ClusteringDdvi Paper(int inputDim, Generator generator, int latentDim = 2, int hidden = 1000, int hiddenLayers = 4,
        int steps = 20, int components = 20, double componentStd = 0.125, double dropout = 0.2)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var widths = Enumerable.Repeat(hidden, hiddenLayers).ToArray();
        var encoder = new Mlp(inputDim, widths, [latentDim, latentDim], dropout);
        var likelihood = new GaussianLikelihood(new Mlp(latentDim, widths, [inputDim], dropout), latentDim, inputDim, sigma: Math.Sqrt(0.5));
        var denoiser = new TimeConditionedMlp(steps, latentDim);
        using var start = rand([components, latentDim], dtype: ScalarType.Float64, generator: generator) * Scalars.Of(0.1);
        var prior = new LearnableGaussianMixture(start, initialStd: componentStd);
        return new ClusteringDdvi(encoder, likelihood, denoiser, prior);
    }

    public int InputDim { get; }
    public int LatentDim { get; }

    public Module<Tensor, Tensor> Encoder => encoder;
    public Likelihood Likelihood => likelihood;
    public TimeConditionedMlp PriorDenoiser => priorDenoiser;
    public LearnableGaussianMixture Prior => prior;
    public NoiseSchedule Schedule => schedule;

    /// <summary>Encoder, decoder (with the likelihood's own parameters) and prior denoiser: what the wake step trains,
    /// end to end through the chain (the release's main optimiser).</summary>
    public IReadOnlyList<Parameter> NetworkParameters() => [.. encoder.parameters(), .. likelihood.parameters(), .. priorDenoiser.parameters()];

    /// <summary>The prior denoiser's parameters (the chain; re-fitted to the mixture after every epoch).</summary>
    public IReadOnlyList<Parameter> DenoiserParameters() => [.. priorDenoiser.parameters()];

    /// <summary>The mixture's learned parameters (the centres).</summary>
    public IReadOnlyList<Parameter> CentreParameters() => prior.PriorParameters;

    /// <summary>μ(x) and log σ²(x) of q(y | x), each <c>[B, d]</c>.</summary>
    public (Tensor Mean, Tensor LogVariance) Encode(Tensor x) // [B, D]
    {
        CheckInput(x);
        var heads = Mlp.HeadsOf(encoder, x, [LatentDim, LatentDim]);
        return (heads[0], heads[1]);
    }

    /// <summary>
    /// One posterior draw with its graph: y = μ + σ ⊙ ε (ε from <paramref name="generator"/>), z = the DDIM chain of the
    /// prior denoiser from y. Returns y, z, μ and log σ², each <c>[B, d]</c>.
    /// </summary>
    public (Tensor YT, Tensor Z, Tensor Mean, Tensor LogVariance) Posterior(Tensor x, Generator generator) // [B, D]
    {
        ArgumentNullException.ThrowIfNull(generator);
        using var scope = NewDisposeScope();
        var (mean, logVariance) = Encode(x);
        var epsilon = RandomDraws.Normal(mean.shape, mean.dtype, mean.device, generator);
        var yT = mean.add((Scalars.Of(0.5) * logVariance).exp() * epsilon, Scalars.One);
        var z = RunChain(yT);
        return (yT.MoveToOuterDisposeScope(), z.MoveToOuterDisposeScope(), mean.MoveToOuterDisposeScope(), logVariance.MoveToOuterDisposeScope());
    }

    /// <summary>The chain from given starts y_T <c>[B, d]</c> → z <c>[B, d]</c>.</summary>
    public Tensor RunChain(Tensor yT) =>
        ReverseChain.RunPrepared(priorDenoiser.PrepareChain(), yT, schedule).Z;

    public Tensor EncodeLatents(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        return Posterior(x, generator).Z.MoveToOuterDisposeScope();
    }

    public (Tensor YT, Tensor Z) EncodeWithStart(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        var draw = Posterior(x, generator);
        return (draw.YT.MoveToOuterDisposeScope(), draw.Z.MoveToOuterDisposeScope());
    }

    /// <summary>The decoder's output for z (the Gaussian likelihood's means).</summary>
    public Tensor DecodeOutput(Tensor z) => likelihood.Decode(z);

    public Tensor DecodeMeans(Tensor z) => likelihood.Mean(z);

    /// <summary>Draws of the learned prior diffusion from N(0, I) starts → <c>[n, d]</c>: what the chain makes of noise.</summary>
    public Tensor SampleChainFromNoise(long n, Generator generator)
    {
        if (n < 1)
            throw new ArgumentOutOfRangeException(nameof(n), n, "ClusteringDdvi.SampleChainFromNoise: the sample count must be at least 1.");
        using var scope = NewDisposeScope();
        var yT = RandomDraws.Normal([n, LatentDim], schedule.DType, schedule.Device, generator);
        return RunChain(yT).MoveToOuterDisposeScope();
    }

    private void CheckInput(Tensor x)
    {
        if (x.dim() != 2 || x.shape[1] != InputDim)
            throw new ArgumentException($"ClusteringDdvi: x must be [B, {InputDim}], got [{string.Join(", ", x.shape)}].", nameof(x));
    }
}
