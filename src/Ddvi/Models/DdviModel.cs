using Ddvi.FastPaths;
using Ddvi.Flows;
using Ddvi.Runtime;
using Ddvi.Diffusion;
using Ddvi.Likelihoods;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>Which posterior <see cref="DdviModel"/> uses when asked for latents without naming one.</summary>
public enum DdviStage
{
    /// <summary>
    /// Stage 2 of the pipeline (the release's <c>diff_vae</c>): y ~ N(μ(x), σ²(x)) → the unconditional DDIM chain of the
    /// prior denoiser ε_θ(y_t, t) over T_prior steps → z.
    /// </summary>
    Warmup,

    /// <summary>
    /// Stage 3 (the release's <c>diff_vae_warmup</c>, i.e. DDVI): y_T ~ N(μ(x), σ²(x)) → the x-conditioned DDIM chain of
    /// the posterior denoiser ε_φ(y_t, a_φ(x), t) over T_post steps → z.
    /// </summary>
    Ddvi,
}

/// <summary>
/// One draw from a DDVI-style posterior: the start y_T ~ N(μ, diag σ²), the end z = y_0 of the deterministic DDIM chain,
/// and what produced them.
/// </summary>
/// <param name="Z">z = y_0 <c>[B, d]</c>.</param>
/// <param name="YT">y_T = μ + σ ⊙ ε <c>[B, d]</c> (reparameterised).</param>
/// <param name="Mean">μ(x) <c>[B, d]</c>.</param>
/// <param name="LogVariance">log σ²(x) <c>[B, d]</c>, the encoder's second head.</param>
/// <param name="Variance">σ²(x) = exp(log σ²) <c>[B, d]</c>.</param>
/// <param name="Context">a_φ(x) <c>[B, c]</c> for the DDVI posterior; null for the warm-up posterior.</param>
/// <param name="Trajectory">The chain's steps t = T, …, 1 (y_t entering step t and ε̂_t), or null when not asked for.</param>
/// <param name="States">y_T, y_{T−1}, …, y_0 = z stacked as <c>[T + 1, B, d]</c>, or null when not asked for.</param>
public sealed record DdviPosteriorSample(
    Tensor Z, Tensor YT, Tensor Mean, Tensor LogVariance, Tensor Variance, Tensor? Context, IReadOnlyList<ReverseChainStep>? Trajectory,
    Tensor? States = null);

/// <summary>
/// A latent variable model p(x, z) = p(z) p(x|z) with a denoising diffusion posterior (DDVI, Piriyakulkij, Wang and
/// Kuleshov, arXiv:2401.02739): every weight of its training in one module, so that one checkpoint serves every stage.
/// The parts are given to it:
/// <list type="bullet">
/// <item><c>encoder</c>: q(y_T | x) = N(μ(x), diag σ²(x)); any module x <c>[B, D]</c> → <c>[B, 2d]</c>, μ then log σ².</item>
/// <item><c>likelihood</c>: p_θ(x | z), a <see cref="Likelihood"/> module that owns its decoder.</item>
/// <item><c>priorDenoiser</c> (optional): ε_θ(y_t, t), an unconditional <see cref="TimeConditionedMlp"/> trained on prior
/// samples; the warm-up posterior's chain (the release's <c>diff_vae</c>). Without it there is no warm-up posterior.</item>
/// <item><c>auxiliaryEncoder</c>: a_φ(x), any module x <c>[B, D]</c> → <c>[B, c]</c>.</item>
/// <item><c>posteriorDenoiser</c>: ε_φ(y_t, a_φ(x), t), the x-conditioned <see cref="ConditionalDenoiser"/> of the
/// DDVI posterior chain over T_post steps.</item>
/// <item><c>priorSchedule</c>, <c>posteriorSchedule</c>: the two <see cref="NoiseSchedule"/>s (non-persistent tables:
/// no checkpoint keys).</item>
/// </list>
/// <see cref="Paper"/> builds the paper's MNIST-format networks with a Bernoulli likelihood. Each chain step is the
/// deterministic DDIM update y_{t−1} = √ᾱ_{t−1} ŷ_0 + √(1 − ᾱ_{t−1}) ε̂, ŷ_0 = (y_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t. Holds no
/// optimiser and runs no loop; the objectives live in <c>Ddvi.Objectives.DdviObjectives</c>.
/// </summary>
/// <remarks>
/// <para><see cref="Stage"/> selects the posterior behind <see cref="EncodeLatents"/>, <see cref="EncodeWithStart"/>,
/// <see cref="Posterior"/> and the ELBO. It is plain state, not a checkpoint entry: the pipeline sets it when a stage
/// starts, and whoever loads a checkpoint sets it to the stage that wrote it. It defaults to <see cref="DdviStage.Ddvi"/>,
/// the final model's posterior. The training objectives name their posterior explicitly and ignore it.</para>
/// <para>Dropout in the networks is active only in <c>train()</c> mode and draws from libtorch's global generator; every
/// other draw takes the caller's generator.</para>
/// </remarks>
public sealed class DdviModel : Module, ILatentVariableModel, IDiffusionPosterior, IPosteriorDensity
{
    private readonly Module<Tensor, Tensor> encoder;
    private readonly Likelihood likelihood;
    private readonly TimeConditionedMlp? priorDenoiser;
    private readonly Module<Tensor, Tensor> auxiliaryEncoder;
    private readonly ConditionalDenoiser posteriorDenoiser;
    private readonly NoiseSchedule priorSchedule;
    private readonly NoiseSchedule posteriorSchedule;

    /// <param name="encoder">x <c>[B, D]</c> → <c>[B, 2d]</c>: μ(x) in the first d columns, log σ²(x) in the last d.</param>
    /// <param name="likelihood">p_θ(x | z) with its decoder; sets D and d.</param>
    /// <param name="auxiliaryEncoder">a_φ(x): x <c>[B, D]</c> → <c>[B, c]</c>, c = the posterior denoiser's context width.</param>
    /// <param name="posteriorDenoiser">ε_φ(y_t, a, t) over d-dimensional states; its step count is T_post.</param>
    /// <param name="priorDenoiser">ε_θ(y_t, t) for the prior diffusion and the warm-up posterior, or null.</param>
    /// <param name="schedule">β schedule of both chains (linear 1e-4 → 0.02, as the release).</param>
    public DdviModel(Module<Tensor, Tensor> encoder, Likelihood likelihood, Module<Tensor, Tensor> auxiliaryEncoder,
        ConditionalDenoiser posteriorDenoiser, TimeConditionedMlp? priorDenoiser = null,
        NoiseScheduleKind schedule = NoiseScheduleKind.Linear) : base(nameof(DdviModel))
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(likelihood);
        ArgumentNullException.ThrowIfNull(auxiliaryEncoder);
        ArgumentNullException.ThrowIfNull(posteriorDenoiser);
        if (posteriorDenoiser.DataDim != likelihood.LatentDim)
            throw new ArgumentException($"DdviModel: the posterior denoiser runs on {posteriorDenoiser.DataDim}-dimensional states but the likelihood reads d = {likelihood.LatentDim} latents.", nameof(posteriorDenoiser));
        if (priorDenoiser is not null && priorDenoiser.DataDim != likelihood.LatentDim)
            throw new ArgumentException($"DdviModel: the prior denoiser runs on {priorDenoiser.DataDim}-dimensional states but the likelihood reads d = {likelihood.LatentDim} latents.", nameof(priorDenoiser));
        if (encoder is Mlp mlp && (mlp.InputDim != likelihood.DataDim || mlp.OutputDim != 2L * likelihood.LatentDim))
            throw new ArgumentException($"DdviModel: the encoder maps {mlp.InputDim} → {mlp.OutputDim} values, expected D = {likelihood.DataDim} → 2d = {2 * likelihood.LatentDim} (μ and log σ²).", nameof(encoder));
        if (auxiliaryEncoder is Mlp aux && (aux.InputDim != likelihood.DataDim || aux.OutputDim != posteriorDenoiser.ContextDim))
            throw new ArgumentException($"DdviModel: the auxiliary encoder maps {aux.InputDim} → {aux.OutputDim} values, expected D = {likelihood.DataDim} → c = {posteriorDenoiser.ContextDim} (the posterior denoiser's context).", nameof(auxiliaryEncoder));

        InputDim = likelihood.DataDim;
        LatentDim = likelihood.LatentDim;
        this.encoder = encoder;
        this.likelihood = likelihood;
        this.priorDenoiser = priorDenoiser;
        this.auxiliaryEncoder = auxiliaryEncoder;
        this.posteriorDenoiser = posteriorDenoiser;
        priorSchedule = new NoiseSchedule(schedule, priorDenoiser?.Steps ?? posteriorDenoiser.Steps);
        posteriorSchedule = new NoiseSchedule(schedule, posteriorDenoiser.Steps);
        RegisterComponents();
    }

    /// <summary>
    /// The paper's model for MNIST-format data (arXiv:2401.02739 and the authors' release): MLP encoder, decoder and
    /// auxiliary encoder D → hidden → hidden (LeakyReLU 0.2, dropout), a Bernoulli likelihood, and the two denoisers with
    /// 4 hidden layers. Networks are created in the order encoder, decoder, prior denoiser, auxiliary encoder, posterior
    /// denoiser, so a seed gives the same initial weights as before the parts were injected.
    /// </summary>
    /// <param name="inputDim">D, the data width (784 for MNIST format).</param>
    /// <param name="latentDim">d, the latent width (2 in every experiment of the paper).</param>
    /// <param name="hidden">Width of the encoder, decoder and auxiliary encoder hidden layers (1000).</param>
    /// <param name="priorSteps">T_prior, the prior diffusion's and the warm-up chain's length (20).</param>
    /// <param name="posteriorSteps">T_post, the DDVI posterior chain's length (40).</param>
    /// <param name="schedule">β schedule of both chains (linear 1e-4 → 0.02, as the release).</param>
    /// <param name="dropout">Dropout of the encoder and decoder (0.2).</param>
    /// <param name="auxiliaryDropout">Dropout of the auxiliary encoder (0.4, the release's MNIST value).</param>
    /// <param name="contextDim">c, the width of a_φ(x) (2).</param>
    /// <param name="denoiserHidden">Width of the denoisers' 4 hidden layers (128).</param>
    public static DdviModel Paper(int inputDim = 784, int latentDim = PaperSettings.LatentDim, int hidden = PaperSettings.Hidden,
        int priorSteps = PaperSettings.PriorSteps, int posteriorSteps = PaperSettings.PosteriorSteps,
        NoiseScheduleKind schedule = NoiseScheduleKind.Linear, double dropout = PaperSettings.Dropout,
        double auxiliaryDropout = PaperSettings.AuxiliaryDropout, int contextDim = PaperSettings.ContextDim,
        int denoiserHidden = PaperSettings.DenoiserHidden)
    {
        if (inputDim < 1)
            throw new ArgumentOutOfRangeException(nameof(inputDim), inputDim, "DdviModel: input width must be at least 1.");
        if (latentDim < 1)
            throw new ArgumentOutOfRangeException(nameof(latentDim), latentDim, "DdviModel: latent width must be at least 1.");
        if (priorSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(priorSteps), priorSteps, "DdviModel: prior diffusion steps T_prior must be at least 1.");
        if (posteriorSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(posteriorSteps), posteriorSteps, "DdviModel: posterior diffusion steps T_post must be at least 1.");
        if (!(dropout >= 0 && dropout < 1))
            throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "DdviModel: encoder/decoder dropout must lie in [0, 1).");
        if (!(auxiliaryDropout >= 0 && auxiliaryDropout < 1))
            throw new ArgumentOutOfRangeException(nameof(auxiliaryDropout), auxiliaryDropout, "DdviModel: auxiliary encoder dropout must lie in [0, 1).");
        if (contextDim < 1)
            throw new ArgumentOutOfRangeException(nameof(contextDim), contextDim, "DdviModel: context dimension must be at least 1.");

        var encoder = new Mlp(inputDim, [hidden, hidden], [latentDim, latentDim], dropout);
        var decoder = new Mlp(latentDim, [hidden, hidden], [inputDim], dropout);
        var priorDenoiser = new TimeConditionedMlp(priorSteps, latentDim, denoiserHidden);
        var auxiliaryEncoder = new Mlp(inputDim, [hidden, hidden], [contextDim], auxiliaryDropout);
        var posteriorDenoiser = new ConditionalDenoiser(posteriorSteps, latentDim, contextDim, denoiserHidden);
        return new DdviModel(encoder, new BernoulliLikelihood(decoder, latentDim, inputDim), auxiliaryEncoder, posteriorDenoiser,
            priorDenoiser, schedule);
    }

    public int InputDim { get; }
    public int LatentDim { get; }

    /// <summary>The posterior used by <see cref="EncodeLatents"/>, <see cref="EncodeWithStart"/>, <see cref="Posterior"/>
    /// and the ELBO; set by the pipeline (see the remarks on the class). Defaults to <see cref="DdviStage.Ddvi"/>.</summary>
    public DdviStage Stage { get; set; } = DdviStage.Ddvi;

    /// <summary>
    /// Whether the chains run with prepared predictors (<see cref="ReverseChain.RunPrepared"/>, the default) or with a
    /// module call per step (<see cref="ReverseChain.Run"/>). Both compute the same chain; the second is the
    /// straightforward reference the tests compare the first with.
    /// </summary>
    public bool PreparedChains { get; set; } = true;

    /// <summary>
    /// Whether a prepared chain runs as one autograd operation with a written-out backward pass where
    /// <see cref="ChainRunner.Supports"/> says it applies (gradients being recorded, no step list asked for, on the CPU;
    /// the default) instead of step by step. The same function and gradients; it saves the autograd engine's
    /// per-operation work in stages 2 and 3. Off, without <see cref="PreparedChains"/>, or where the runner does not
    /// apply, the chain is recorded operation by operation.
    /// </summary>
    public bool ChainAsOneOperation { get; set; } = true;

    public Module<Tensor, Tensor> Encoder => encoder;
    public Likelihood Likelihood => likelihood;
    /// <summary>The likelihood's decoder network.</summary>
    public Module<Tensor, Tensor> Decoder => likelihood.Decoder;
    /// <summary>True when the model has a prior denoiser (stage 1 and the warm-up posterior).</summary>
    public bool HasPriorDenoiser => priorDenoiser is not null;
    public TimeConditionedMlp PriorDenoiser => priorDenoiser
        ?? throw new InvalidOperationException("DdviModel: this model was built without a prior denoiser, so it has no prior diffusion and no warm-up posterior.");
    public Module<Tensor, Tensor> AuxiliaryEncoder => auxiliaryEncoder;
    public ConditionalDenoiser PosteriorDenoiser => posteriorDenoiser;
    public NoiseSchedule PriorSchedule => priorSchedule;
    public NoiseSchedule PosteriorSchedule => posteriorSchedule;

    /// <summary>The schedule of the chain <see cref="Stage"/> selects.</summary>
    public NoiseSchedule CurrentSchedule => Stage == DdviStage.Warmup ? priorSchedule : posteriorSchedule;

    /// <summary>Stage 1: the prior denoiser alone.</summary>
    public IReadOnlyList<Parameter> PriorDiffusionParameters() => [.. PriorDenoiser.parameters()];

    /// <summary>Stage 2, trained end to end as the release: encoder, likelihood (decoder and its own parameters) and prior denoiser.</summary>
    public IReadOnlyList<Parameter> WarmupParameters()
        => [.. encoder.parameters(), .. likelihood.parameters(), .. PriorDenoiser.parameters()];

    /// <summary>
    /// Stage 3's wake phase: encoder, auxiliary encoder, posterior denoiser and likelihood (freeze
    /// <see cref="DecoderParameters"/> for the first 30 epochs, as the release). The prior denoiser is not among them.
    /// </summary>
    public IReadOnlyList<Parameter> WakeParameters()
        => [.. encoder.parameters(), .. auxiliaryEncoder.parameters(), .. posteriorDenoiser.parameters(), .. likelihood.parameters()];

    /// <summary>Stage 3's sleep phase: the only parameters the sleep loss reaches, auxiliary encoder and posterior denoiser.</summary>
    public IReadOnlyList<Parameter> SleepParameters() => [.. auxiliaryEncoder.parameters(), .. posteriorDenoiser.parameters()];

    /// <summary>The likelihood p_θ(x|z) (its decoder and own parameters), frozen in stage 3's early epochs.</summary>
    public IReadOnlyList<Parameter> DecoderParameters() => [.. likelihood.parameters()];

    /// <summary>Parameters of q(y_T | x): μ and log σ², each <c>[B, d]</c>, for x <c>[B, D]</c>.</summary>
    public (Tensor Mean, Tensor LogVariance) Encode(Tensor x)
    {
        CheckInput(x);
        var heads = Mlp.HeadsOf(encoder, x, [LatentDim, LatentDim]);                                // μ, log σ²: [B, d] each
        return (heads[0], heads[1]);
    }

    /// <summary>
    /// The warm-up posterior of stage 2: y ~ N(μ(x), σ²(x)) reparameterised with <paramref name="generator"/>, then the
    /// unconditional DDIM chain of the prior denoiser over T_prior steps → z. Keeps the autograd graph.
    /// </summary>
    public DdviPosteriorSample WarmupPosterior(Tensor x, Generator generator, bool keepTrajectory = false, bool keepStates = false) // [B, D]
        => Sample(x, generator, keepTrajectory, keepStates, conditioned: false);

    /// <summary>
    /// The DDVI posterior of stage 3: y_T ~ N(μ(x), σ²(x)) reparameterised with <paramref name="generator"/>, a = a_φ(x),
    /// then the x-conditioned DDIM chain of ε_φ(y_t, a, t) over T_post steps → z. Keeps the autograd graph.
    /// </summary>
    public DdviPosteriorSample DdviPosterior(Tensor x, Generator generator, bool keepTrajectory = false, bool keepStates = false) // [B, D]
        => Sample(x, generator, keepTrajectory, keepStates, conditioned: true);

    /// <summary>The posterior <see cref="Stage"/> selects.</summary>
    public DdviPosteriorSample Posterior(Tensor x, Generator generator, bool keepTrajectory = false, bool keepStates = false) // [B, D]
        => Sample(x, generator, keepTrajectory, keepStates, conditioned: Stage == DdviStage.Ddvi);

    /// <summary>The chain's start y_T and end z, each <c>[B, d]</c>, from the posterior <see cref="Stage"/> selects.</summary>
    public (Tensor YT, Tensor Z) EncodeWithStart(Tensor x, Generator generator) // [B, D] → [B, d], [B, d]
    {
        using var scope = NewDisposeScope();
        var sample = Posterior(x, generator);
        return (sample.YT.MoveToOuterDisposeScope(), sample.Z.MoveToOuterDisposeScope());
    }

    /// <summary>z ~ q(z|x) from the posterior <see cref="Stage"/> selects.</summary>
    public Tensor EncodeLatents(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        return Posterior(x, generator).Z.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Draws from the learned prior diffusion (stage 1's result): y_T ~ N(0, I) with <paramref name="generator"/>, then the
    /// prior denoiser's DDIM chain → <c>[n, d]</c>. As in the release, N(0, I) stands in for r(y_T).
    /// </summary>
    public Tensor SamplePriorDiffusion(long n, Generator generator)
    {
        if (n < 1)
            throw new ArgumentOutOfRangeException(nameof(n), n, "DdviModel.SamplePriorDiffusion: the sample count must be at least 1.");
        using var scope = NewDisposeScope();
        var yT = RandomDraws.Normal([n, LatentDim], priorSchedule.DType, priorSchedule.Device, generator);
        return RunPriorChain(yT, keepTrajectory: false).Z.MoveToOuterDisposeScope();
    }

    public string PosteriorDensityDescription =>
        $"{(Stage == DdviStage.Ddvi ? "DDVI" : "warm-up")} posterior by change of variables through its deterministic DDIM chain: " +
        "log q(z|x) = log N(y_T; μ(x), diag σ²(x)) − log|det ∂z/∂y_T|, the d × d Jacobian from autograd (one backward pass per " +
        "latent coordinate, float64 determinant); exact where the chain is injective";

    /// <summary>
    /// K draws per row from the posterior <see cref="Stage"/> selects, with its exact density by change of variables: the
    /// chain y_T ↦ z is deterministic given x, so where it is injective
    /// log q(z|x) = log N(y_T; μ(x), diag σ²(x)) − log|det ∂z/∂y_T|. The Jacobian comes from autograd through the
    /// step-by-step tensor chain (not the fused kernel), so this builds a graph even under <c>no_grad()</c>; the encoder
    /// and auxiliary encoder run once per row without one. <see cref="PosteriorDraws.JacobianSign"/> carries sign(det) of
    /// every draw: a continuous injective map keeps one sign, so mixed signs for one x show the chain folds there (and a
    /// fold makes log q too low, the bounds too high). One sign does not prove injectivity.
    /// </summary>
    public PosteriorDraws DrawWithLogDensity(Tensor x, int samples, Generator generator) // [B, D] → [K, B, d], [K, B], [K, B]
    {
        ArgumentNullException.ThrowIfNull(generator);
        using var scope = NewDisposeScope();
        var (mean, logVariance) = Encode(x);                                                          // [B, d] each
        bool conditioned = Stage == DdviStage.Ddvi;
        var context = conditioned ? PosteriorDrawShapes.Repeat(auxiliaryEncoder.call(x), samples) : null; // [K·B, c]
        var logVarianceK = PosteriorDrawShapes.Repeat(logVariance, samples);                        // [K·B, d]
        var eps = RandomDraws.Normal([samples * x.shape[0], LatentDim], mean.dtype, mean.device, generator);
        var yT = PosteriorDrawShapes.Repeat(mean, samples).add((Scalars.Of(0.5) * logVarianceK).exp() * eps, Scalars.One);       // [K·B, d]
        var chain = ChangeOfVariables.LogAbsDetJacobian(y => RunChain(context, y, keepTrajectory: false).Z, yT);
        var logQ = Objectives.GaussianMath.LogDensityOfReparameterised(eps, logVarianceK) - chain.LogAbsDet; // [K·B]
        return new PosteriorDraws(
            PosteriorDrawShapes.Split(chain.Output, samples).MoveToOuterDisposeScope(),
            PosteriorDrawShapes.Split(logQ, samples).MoveToOuterDisposeScope(),
            PosteriorDrawShapes.Split(chain.Sign, samples).MoveToOuterDisposeScope());
    }

    /// <summary>The decoder's output <c>[B, D]</c> for z <c>[B, d]</c> (logits for a Bernoulli likelihood).</summary>
    public Tensor DecodeOutput(Tensor z) => likelihood.Decode(z);

    /// <summary>E[x | z] <c>[B, D]</c> under the likelihood, for z <c>[B, d]</c>.</summary>
    public Tensor DecodeMeans(Tensor z) => likelihood.Mean(z);

    private DdviPosteriorSample Sample(Tensor x, Generator generator, bool keepTrajectory, bool keepStates, bool conditioned)
    {
        ArgumentNullException.ThrowIfNull(generator);
        using var scope = NewDisposeScope();
        var (mean, logVariance) = Encode(x);
        var variance = logVariance.exp();
        var eps = RandomDraws.Normal(mean.shape, mean.dtype, mean.device, generator);
        var yT = mean.add((Scalars.Of(0.5) * logVariance).exp() * eps, Scalars.One);

        var context = conditioned ? auxiliaryEncoder.call(x) : null;
        var schedule = conditioned ? posteriorSchedule : priorSchedule;
        Tensor z;
        Tensor? states = null;
        IReadOnlyList<ReverseChainStep>? trajectory = null;
        Module denoiser = conditioned ? posteriorDenoiser : PriorDenoiser;
        if (PreparedChains && ChainAsOneOperation && ChainRunner.Supports(denoiser, yT.device_type, is_grad_enabled(), keepTrajectory))
        {
            states = context is null ? ChainRunner.RunChain(PriorDenoiser, yT, schedule) : ChainRunner.RunChain(posteriorDenoiser, context, yT, schedule);
            z = states[schedule.Steps];
            if (!keepStates) states = null;
        }
        else
        {
            var chain = RunChain(context, yT, keepTrajectory || keepStates);
            z = chain.Z;
            if (keepTrajectory) trajectory = chain.Steps;
            if (keepStates) states = stack(chain.Steps!.Select(s => s.Yt).Append(z).ToArray());
        }

        var sample = new DdviPosteriorSample(z, yT, mean, logVariance, variance, context, trajectory, states);
        IEnumerable<Tensor> results = [z, yT, mean, logVariance, variance];
        if (context is not null) results = results.Append(context);
        if (states is not null) results = results.Append(states);
        if (trajectory is not null) results = results.Concat(trajectory.SelectMany(s => new[] { s.Yt, s.EpsHat }));
        foreach (var result in results.Distinct<Tensor>(ReferenceEqualityComparer.Instance))
        {
            if (scope.Contains(result)) scope.MoveToOuter(result);
        }
        return sample;
    }

    // Step by step: with prepared predictors (the default) or with a module call per step (the reference).
    private ReverseChainResult RunChain(Tensor? context, Tensor yT, bool keepTrajectory)
    {
        if (context is null) return RunPriorChain(yT, keepTrajectory);
        return PreparedChains
            ? ReverseChain.RunPrepared(posteriorDenoiser.PrepareChain(context), yT, posteriorSchedule, keepTrajectory)
            : ReverseChain.Run((y, t) => posteriorDenoiser.call(y, context, t), yT, posteriorSchedule, keepTrajectory);
    }

    private ReverseChainResult RunPriorChain(Tensor yT, bool keepTrajectory) => PreparedChains
        ? ReverseChain.RunPrepared(PriorDenoiser.PrepareChain(), yT, priorSchedule, keepTrajectory)
        : ReverseChain.Run(PriorDenoiser.call, yT, priorSchedule, keepTrajectory);

    private void CheckInput(Tensor x)
    {
        if (x.dim() != 2 || x.shape[1] != InputDim)
            throw new ArgumentException($"DdviModel: x must be [B, {InputDim}], got [{string.Join(", ", x.shape)}].", nameof(x));
    }
}
