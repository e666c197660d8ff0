using Ddvi.Diffusion;
using Ddvi.Likelihoods;
using Ddvi.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>A model that also classifies: q(c|x) from its encoder, for the semi-supervised experiments.</summary>
public interface IClassifyingModel
{
    /// <summary>C, the number of classes q(c|x) ranges over.</summary>
    int ClassCount { get; }

    /// <summary>Unnormalised log q(c|x): x <c>[B, D]</c> → <c>[B, C]</c>.</summary>
    Tensor ClassLogits(Tensor x);
}

/// <summary>
/// Semi-supervised DDVI (arXiv:2401.02739, its semi-supervised experiments; the authors' release, <c>diff_vae_semi</c>
/// then <c>diff_vae_warmup_semi</c>): class c of the data is tied to segment c of a labelled 2-D prior, and the posterior
/// has one diffusion chain per class. Its parts, all in one module so one checkpoint serves every stage:
/// <list type="bullet">
/// <item><c>encoder</c>: x → (μ, log σ², class logits) <c>[B, 2d + C]</c>: q(y_T|x) = N(μ, diag σ²) and q(c|x) = softmax.</item>
/// <item><c>likelihood</c>: p_θ(x|z) with its decoder.</item>
/// <item><c>auxiliaryEncoder</c>: a_φ(x) <c>[B, ctx]</c>, the posterior chains' context.</item>
/// <item><c>priorDenoisers</c>: C unconditional <see cref="ClassDenoisers"/> ε_c(y_t, t), each trained on its prior
/// segment p(z|c) (stage 1) and run as the warm-up posterior's chains (stage 2).</item>
/// <item><c>posteriorDenoisers</c>: C context-conditioned <see cref="ClassDenoisers"/> ε_φ,c(y_t, a, t) of the DDVI
/// posterior (stage 3).</item>
/// </list>
/// Both chains are deterministic DDIM chains over the same T-step schedule. The latents of an example come from the
/// chain of its predicted class argmax_c q(c|x). Holds no optimiser and runs no loop (see
/// <c>Ddvi.Objectives.SemiDdviObjectives</c>).
/// </summary>
public sealed class SemiDdviModel : Module, ILatentVariableModel, IDiffusionPosterior, IClassifyingModel, IPosteriorDensity
{
    private readonly Module<Tensor, Tensor> encoder;
    private readonly Likelihood likelihood;
    private readonly Module<Tensor, Tensor> auxiliaryEncoder;
    private readonly ClassDenoisers priorDenoisers;
    private readonly ClassDenoisers posteriorDenoisers;
    private readonly NoiseSchedule schedule;

    public SemiDdviModel(Module<Tensor, Tensor> encoder, Likelihood likelihood, Module<Tensor, Tensor> auxiliaryEncoder,
        ClassDenoisers priorDenoisers, ClassDenoisers posteriorDenoisers, NoiseScheduleKind scheduleKind = NoiseScheduleKind.Linear)
        : base(nameof(SemiDdviModel))
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(likelihood);
        ArgumentNullException.ThrowIfNull(auxiliaryEncoder);
        ArgumentNullException.ThrowIfNull(priorDenoisers);
        ArgumentNullException.ThrowIfNull(posteriorDenoisers);
        if (priorDenoisers.Classes != posteriorDenoisers.Classes || priorDenoisers.Steps != posteriorDenoisers.Steps)
            throw new ArgumentException($"SemiDdviModel: prior and posterior denoisers must have the same classes and steps, got {priorDenoisers.Classes}/{priorDenoisers.Steps} and {posteriorDenoisers.Classes}/{posteriorDenoisers.Steps}.");
        if (priorDenoisers.ContextDim != 0 || posteriorDenoisers.ContextDim < 1)
            throw new ArgumentException("SemiDdviModel: the prior denoisers take no context and the posterior denoisers do.");
        if (priorDenoisers.DataDim != likelihood.LatentDim || posteriorDenoisers.DataDim != likelihood.LatentDim)
            throw new ArgumentException($"SemiDdviModel: the denoisers must run on the likelihood's d = {likelihood.LatentDim} latents.");
        if (encoder is Mlp mlp && (mlp.InputDim != likelihood.DataDim || mlp.OutputDim != 2L * likelihood.LatentDim + priorDenoisers.Classes))
            throw new ArgumentException($"SemiDdviModel: the encoder maps {mlp.InputDim} → {mlp.OutputDim}, expected D = {likelihood.DataDim} → 2d + C = {2 * likelihood.LatentDim + priorDenoisers.Classes}.", nameof(encoder));
        InputDim = likelihood.DataDim;
        LatentDim = likelihood.LatentDim;
        ClassCount = priorDenoisers.Classes;
        this.encoder = encoder;
        this.likelihood = likelihood;
        this.auxiliaryEncoder = auxiliaryEncoder;
        this.priorDenoisers = priorDenoisers;
        this.posteriorDenoisers = posteriorDenoisers;
        schedule = new NoiseSchedule(scheduleKind, priorDenoisers.Steps);
        RegisterComponents();
    }

    /// <summary>
    /// The release's MNIST-format networks: encoder and decoder D → hidden → hidden (LeakyReLU 0.2, dropout), the encoder with
    /// heads μ, log σ² and C class logits; auxiliary encoder D → hidden → hidden → ctx; C prior and C posterior denoisers
    /// of 4 hidden layers; a Bernoulli likelihood.
    /// </summary>
    public static SemiDdviModel Paper(int inputDim, int latentDim, int classes, int hidden, int steps, double dropout,
        double auxiliaryDropout, int contextDim = PaperSettings.ContextDim, int denoiserHidden = PaperSettings.DenoiserHidden,
        NoiseScheduleKind scheduleKind = NoiseScheduleKind.Linear)
    {
        var encoder = new Mlp(inputDim, [hidden, hidden], [latentDim, latentDim, classes], dropout);
        var decoder = new Mlp(latentDim, [hidden, hidden], [inputDim], dropout);
        var auxiliary = new Mlp(inputDim, [hidden, hidden], [contextDim], auxiliaryDropout);
        return new SemiDdviModel(encoder, new BernoulliLikelihood(decoder, latentDim, inputDim), auxiliary,
            new ClassDenoisers(classes, steps, latentDim, 0, denoiserHidden),
            new ClassDenoisers(classes, steps, latentDim, contextDim, denoiserHidden), scheduleKind);
    }

    public int InputDim { get; }
    public int LatentDim { get; }
    public int ClassCount { get; }

    /// <summary>Which chains <see cref="EncodeLatents"/> and the ELBO use: the warm-up's prior chains or the DDVI posterior's.
    /// Plain state set by the pipeline, not a checkpoint entry.</summary>
    public DdviStage Stage { get; set; } = DdviStage.Ddvi;

    public Module<Tensor, Tensor> Encoder => encoder;
    public Likelihood Likelihood => likelihood;
    public Module<Tensor, Tensor> AuxiliaryEncoder => auxiliaryEncoder;
    public ClassDenoisers PriorDenoisers => priorDenoisers;
    public ClassDenoisers PosteriorDenoisers => posteriorDenoisers;
    public NoiseSchedule Schedule => schedule;

    /// <summary>Stage 1: the C prior denoisers.</summary>
    public IReadOnlyList<Parameter> PriorDiffusionParameters() => [.. priorDenoisers.parameters()];

    /// <summary>Stage 2 (the release's <c>diff_vae_semi</c>, not end to end): encoder and likelihood; the prior chains stay fixed.</summary>
    public IReadOnlyList<Parameter> WarmupParameters() => [.. encoder.parameters(), .. likelihood.parameters()];

    /// <summary>Stage 3's wake phase: encoder, auxiliary encoder, posterior denoisers and likelihood.</summary>
    public IReadOnlyList<Parameter> WakeParameters() =>
        [.. encoder.parameters(), .. auxiliaryEncoder.parameters(), .. posteriorDenoisers.parameters(), .. likelihood.parameters()];

    /// <summary>Stage 3's sleep phase: auxiliary encoder and posterior denoisers.</summary>
    public IReadOnlyList<Parameter> SleepParameters() => [.. auxiliaryEncoder.parameters(), .. posteriorDenoisers.parameters()];

    /// <summary>The likelihood's parameters, frozen in stage 3's first epochs as the release does.</summary>
    public IReadOnlyList<Parameter> DecoderParameters() => [.. likelihood.parameters()];

    /// <summary>μ, log σ² <c>[B, d]</c> and class logits <c>[B, C]</c> for x <c>[B, D]</c>.</summary>
    public (Tensor Mean, Tensor LogVariance, Tensor Logits) Encode(Tensor x)
    {
        CheckInput(x);
        var heads = Mlp.HeadsOf(encoder, x, [LatentDim, LatentDim, ClassCount]);
        return (heads[0], heads[1], heads[2]);
    }

    public Tensor ClassLogits(Tensor x) => Encode(x).Logits;

    /// <summary>y_T = μ + σ ⊙ ε, ε ~ N(0, I) from <paramref name="generator"/>: <c>[B, d]</c>.</summary>
    public Tensor SampleStart(Tensor mean, Tensor logVariance, Generator generator)
    {
        var eps = RandomDraws.Normal(mean.shape, mean.dtype, mean.device, generator);
        return mean.add((Scalars.Of(0.5) * logVariance).exp() * eps, Scalars.One);
    }

    /// <summary>
    /// Every class's chain from the same start: y_T <c>[B, d]</c> (copied to each class) through the prior chains
    /// (<paramref name="conditioned"/> false) or the posterior chains with context a <c>[B, ctx]</c>, as one batched chain.
    /// Returns the states y_T, …, y_0 stacked <c>[T + 1, C, B, d]</c> when <paramref name="keepStates"/>, else only
    /// z = y_0 <c>[1, C, B, d]</c>. Keeps the autograd graph.
    /// </summary>
    public Tensor RunChains(Tensor yT, Tensor? context, bool conditioned, bool keepStates)
    {
        using var scope = NewDisposeScope();
        long b = yT.shape[0];
        var denoisers = conditioned ? posteriorDenoisers : priorDenoisers;
        var start = yT.unsqueeze(0).expand(ClassCount, b, LatentDim).contiguous();
        var contextRows = conditioned ? denoisers.ContextRowsFor(context ?? throw new ArgumentNullException(nameof(context)), b) : null;
        Tensor states;
        if (CheckpointedChains && is_grad_enabled())
        {
            states = FastPaths.ClassChainCheckpoint.Run(denoisers, schedule, start, contextRows?.contiguous());
        }
        else
        {
            var predict = denoisers.PrepareChain(denoisers.Parameters(), contextRows);
            var list = new List<Tensor>(schedule.Steps + 1) { start };
            var y = start;
            for (int step = schedule.Steps; step >= 1; step--)
            {
                // Each step's temporaries die with its scope; autograd keeps what its backward pass needs.
                using var stepScope = NewDisposeScope();
                var (keepY, keepEps) = schedule.DdimCoefficients(step);
                y = predict(y, step).mul(Scalars.Of(keepEps)).add_(y, alpha: Scalars.Of(keepY)).MoveToOuterDisposeScope();
                if (keepStates) list.Add(y);
            }
            states = keepStates ? stack(list, 0) : y.unsqueeze(0);
        }
        return (keepStates ? states : states[-1].unsqueeze(0)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Whether <see cref="RunChains"/> records its chain as one recomputing operation when gradients are recorded
    /// (<c>Ddvi.FastPaths.ClassChainCheckpoint</c>, the default: memory of one 10-step segment instead of all T steps) or
    /// operation by operation (the reference it is tested against).
    /// </summary>
    public bool CheckpointedChains { get; set; } = true;

    /// <summary>
    /// One class's chain, for reference: y_T <c>[B, d]</c> through class <paramref name="classIndex"/>'s network with
    /// per-step <see cref="ClassDenoisers.PredictClass"/> → states <c>[T + 1, B, d]</c>. The same numbers as row c of
    /// <see cref="RunChains"/>, one small product per step.
    /// </summary>
    public Tensor RunClassChain(int classIndex, Tensor yT, Tensor? context, bool conditioned)
    {
        using var scope = NewDisposeScope();
        var denoisers = conditioned ? posteriorDenoisers : priorDenoisers;
        var y = yT;
        var states = new List<Tensor>(schedule.Steps + 1) { y };
        for (int step = schedule.Steps; step >= 1; step--)
        {
            var t = full(yT.shape[0], Scalars.Of(step), dtype: int64, device: yT.device);
            var epsHat = denoisers.PredictClass(classIndex, y, conditioned ? context : null, t);
            var (keepY, keepEps) = schedule.DdimCoefficients(step);
            y = (epsHat * Scalars.Of(keepEps)).add(y * Scalars.Of(keepY), Scalars.One);
            states.Add(y);
        }
        return stack(states, 0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The latents of x by routing: each example's y_T through the chain of its predicted class argmax_c q(c|x) (the
    /// warm-up's prior chains or the DDVI posterior's, as <see cref="Stage"/> says). Rows are grouped by class, so each
    /// example runs one chain. Returns y_T and z, each <c>[B, d]</c>. For evaluation (no_grad, eval mode).
    /// </summary>
    public (Tensor YT, Tensor Z) EncodeWithStart(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (mean, logVariance, logits) = Encode(x);
        var yT = SampleStart(mean, logVariance, generator);
        bool conditioned = Stage == DdviStage.Ddvi;
        var context = conditioned ? auxiliaryEncoder.call(x) : null;
        var z = Route(yT, context, logits.argmax(1), conditioned);
        return (yT.MoveToOuterDisposeScope(), z.MoveToOuterDisposeScope());
    }

    /// <summary>z for each row of y_T <c>[B, d]</c> through the chain of its class in <paramref name="classes"/> <c>[B]</c>.</summary>
    public Tensor Route(Tensor yT, Tensor? context, Tensor classes, bool conditioned)
    {
        using var scope = NewDisposeScope();
        var z = zeros_like(yT);
        var present = classes.cpu().data<long>().ToArray().Distinct().Order();
        foreach (long c in present)
        {
            var rows = classes.eq(Scalars.Of(c)).nonzero().squeeze(1);
            var states = RunClassChain((int)c, yT.index_select(0, rows), context?.index_select(0, rows), conditioned);
            z.index_copy_(0, rows, states[-1]);
        }
        return z.MoveToOuterDisposeScope();
    }

    public string PosteriorDensityDescription =>
        $"semi-supervised {(Stage == DdviStage.Ddvi ? "DDVI" : "warm-up")} posterior as evaluated: each image's y_T ~ N(μ(x), diag σ²(x)) " +
        "through the deterministic DDIM chain of its predicted class argmax_c q(c|x), so log q(z|x) = log N(y_T; μ(x), diag σ²(x)) " +
        "− log|det ∂z/∂y_T| by change of variables (d × d Jacobian from autograd, float64 determinant; exact where the chain is " +
        "injective); the class is not a latent of p(x) = ∫ p(z) p(x|z) dz, whose p(z) is the whole prior, the mixture of its class segments";

    /// <summary>
    /// K draws per row from the posterior the evaluation's latents come from (<see cref="EncodeWithStart"/>): y_T ~ q(y_T|x)
    /// through the chain of the predicted class ĉ(x) = argmax_c q(c|x), with its density by change of variables,
    /// log q(z|x) = log N(y_T; μ(x), diag σ²(x)) − log|det ∂z/∂y_T|. ĉ is a function of x, so this is one proper
    /// posterior q(z|x), and with p(z) the whole prior (the class mixture) the importance weights bound log p(x) of the
    /// model p(z) p(x|z), the same model the semi-supervised baselines' bounds are of. The Jacobian comes from autograd
    /// through the class-by-class chains (rows independent), so this builds a graph even under <c>no_grad()</c>.
    /// </summary>
    public PosteriorDraws DrawWithLogDensity(Tensor x, int samples, Generator generator) // [B, D] → [K, B, d], [K, B], [K, B]
    {
        ArgumentNullException.ThrowIfNull(generator);
        using var scope = NewDisposeScope();
        var (mean, logVariance, logits) = Encode(x);                                                  // [B, d], [B, d], [B, C]
        bool conditioned = Stage == DdviStage.Ddvi;
        var context = conditioned ? PosteriorDrawShapes.Repeat(auxiliaryEncoder.call(x), samples) : null; // [K·B, ctx]
        var classes = PosteriorDrawShapes.Repeat(logits.argmax(1), samples);                         // [K·B]
        var logVarianceK = PosteriorDrawShapes.Repeat(logVariance, samples);                        // [K·B, d]
        var eps = RandomDraws.Normal([samples * x.shape[0], LatentDim], mean.dtype, mean.device, generator);
        var yT = PosteriorDrawShapes.Repeat(mean, samples).add((Scalars.Of(0.5) * logVarianceK).exp() * eps, Scalars.One);       // [K·B, d]
        var chain = Flows.ChangeOfVariables.LogAbsDetJacobian(y => Route(y, context, classes, conditioned), yT);
        var logQ = Objectives.GaussianMath.LogDensityOfReparameterised(eps, logVarianceK) - chain.LogAbsDet; // [K·B]
        return new PosteriorDraws(
            PosteriorDrawShapes.Split(chain.Output, samples).MoveToOuterDisposeScope(),
            PosteriorDrawShapes.Split(logQ, samples).MoveToOuterDisposeScope(),
            PosteriorDrawShapes.Split(chain.Sign, samples).MoveToOuterDisposeScope());
    }

    public Tensor EncodeLatents(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        return EncodeWithStart(x, generator).Z.MoveToOuterDisposeScope();
    }

    public Tensor DecodeOutput(Tensor z) => likelihood.Decode(z);

    public Tensor DecodeMeans(Tensor z) => likelihood.Mean(z);

    private void CheckInput(Tensor x)
    {
        if (x.dim() != 2 || x.shape[1] != InputDim)
            throw new ArgumentException($"SemiDdviModel: x must be [B, {InputDim}], got [{string.Join(", ", x.shape)}].", nameof(x));
    }
}
