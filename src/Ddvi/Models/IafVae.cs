using Ddvi.Likelihoods;
using Ddvi.Flows;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// One draw from a flow posterior: z_0 = μ + σ·ε with ε ~ N(0, I), then z = f(z_0) through an IAF stack.
/// log q(z|x) = log N(z_0; μ, σ²) − log|det ∂z/∂z_0|, where log N(z_0; μ, σ²) follows from ε and log σ² alone.
/// </summary>
/// <param name="Z0">The base sample <c>[B, d]</c>.</param>
/// <param name="Epsilon">Its standard-normal noise <c>[B, d]</c>.</param>
/// <param name="LogVariance">log σ² of the base Gaussian <c>[B, d]</c>.</param>
/// <param name="Z">The flow's output <c>[B, d]</c>, the latent.</param>
/// <param name="LogDet">log|det ∂z/∂z_0| <c>[B]</c>.</param>
public sealed record FlowPosteriorSample(Tensor Z0, Tensor Epsilon, Tensor LogVariance, Tensor Z, Tensor LogDet);

/// <summary>
/// The IAF-VAE baseline of the paper (arXiv:2401.02739; the authors' release; Kingma et al. 2016): the MNIST-format
/// encoder gives μ(x), σ²(x) = sigmoid(·) (as the release's VAE) and a context h(x) of size 10; z_0 = μ + σ·ε is pushed
/// through an <see cref="IafStack"/> conditioned on h, and the Bernoulli decoder reads z = z_K. Holds no optimiser and
/// runs no loop; the prior and the weights of the loss belong to the objective.
/// </summary>
public sealed class IafVae : Module, ILatentVariableModel, IPosteriorDensity, IClassifyingModel
{
    private readonly Module<Tensor, Tensor> encoder;
    private readonly long[] encoderHeads;
    private readonly IafStack flow;
    private readonly Likelihood likelihood;

    /// <param name="inputDim">Pixels per image.</param>
    /// <param name="latentDim">Latent width d.</param>
    /// <param name="hidden">Width of the encoder's and decoder's two hidden layers.</param>
    /// <param name="dropoutRate">Dropout of the encoder and decoder (training mode only).</param>
    /// <param name="contextSize">Width of the flow context h.</param>
    /// <param name="flowLayers">Number of IAF layers.</param>
    /// <param name="madeHidden">Units per hidden layer of each MADE.</param>
    public IafVae(int inputDim, int latentDim = 2, int hidden = 1000, double dropoutRate = 0.2,
        int contextSize = 10, int flowLayers = 4, int madeHidden = 128, Likelihood? likelihood = null,
        Module<Tensor, Tensor>? encoder = null, int classes = 0) : base(nameof(IafVae))
    {
        LatentDim = latentDim;
        ClassCount = classes;
        encoderHeads = classes > 0 ? [latentDim, latentDim, contextSize, classes] : [latentDim, latentDim, contextSize];
        this.encoder = encoder ?? new Mlp(inputDim, [hidden, hidden], [.. encoderHeads.Select(w => (int)w)], dropoutRate);
        flow = new IafStack(latentDim, contextSize, flowLayers, madeHidden);
        this.likelihood = likelihood ?? new BernoulliLikelihood(new Mlp(latentDim, [hidden, hidden], [inputDim], dropoutRate), latentDim, inputDim);
        if (this.likelihood.LatentDim != latentDim || this.likelihood.DataDim != inputDim)
            throw new ArgumentException($"{GetType().Name}: the likelihood maps d = {this.likelihood.LatentDim} → D = {this.likelihood.DataDim}, expected {latentDim} → {inputDim}.", nameof(likelihood));
        RegisterComponents();
    }

    public int LatentDim { get; }

    /// <summary>C, the width of the encoder's class-logit head (the semi-supervised <c>iaf-vae-semi</c>); 0 = no classifier.</summary>
    public int ClassCount { get; }

    /// <summary>log q(c|x) up to a constant, <c>[B, C]</c>: the encoder's last head (only with <see cref="ClassCount"/> &gt; 0).</summary>
    public Tensor ClassLogits(Tensor x)
    {
        if (ClassCount == 0) throw new InvalidOperationException("IafVae: this model was built without a class head (classes = 0).");
        var heads = Mlp.HeadsOf(encoder, x, encoderHeads);
        for (int i = 0; i < 3; i++) heads[i].Dispose();
        return heads[3];
    }

    /// <summary>A posterior draw as <see cref="SamplePosterior"/> and, with a class head, the class logits (else null), from one encoder pass.</summary>
    public (FlowPosteriorSample Sample, Tensor? Logits) SamplePosteriorAndLogits(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        var heads = Mlp.HeadsOf(encoder, x, encoderHeads);
        var sample = FlowPosterior.Draw(heads[0], functional.logsigmoid(heads[1]), heads[2], flow, generator).MoveToOuterDisposeScope();
        return (sample, ClassCount > 0 ? heads[3].MoveToOuterDisposeScope() : null);
    }

    /// <summary>p(x | z) with its decoder.</summary>
    public Likelihood Likelihood => likelihood;

    public IafStack Flow => flow;

    /// <summary>Draws z ~ q(z|x) for x <c>[B, D]</c> with every intermediate needed for log q(z|x).</summary>
    public FlowPosteriorSample SamplePosterior(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        var heads = Mlp.HeadsOf(encoder, x, encoderHeads);
        // log sigmoid stays finite where sigmoid underflows to 0, so log q(z_0|x) never becomes infinite.
        var logVariance = functional.logsigmoid(heads[1]);
        return FlowPosterior.Draw(heads[0], logVariance, heads[2], flow, generator).MoveToOuterDisposeScope();
    }

    /// <summary>Decoder logits <c>[B, D]</c> for z <c>[B, d]</c>.</summary>
    /// <summary>The decoder's output for z (logits for the Bernoulli likelihood).</summary>
    public Tensor DecodeOutput(Tensor z) => likelihood.Decode(z);

    public Tensor EncodeLatents(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        return SamplePosterior(x, generator).Z.MoveToOuterDisposeScope();
    }

    public Tensor DecodeMeans(Tensor z) => likelihood.Mean(z);

    public string PosteriorDensityDescription =>
        "IAF: log q(z|x) = log N(z0; μ(x), diag σ²(x)) − log|det ∂z/∂z0|, the flow's exact triangular log-determinant";

    /// <summary>K draws z = IAF(μ + σ·ε; h) per row, with log q(z|x) = log N(z_0; μ, σ²) − log|det ∂z/∂z_0| (exact).</summary>
    public PosteriorDraws DrawWithLogDensity(Tensor x, int samples, Generator generator)
    {
        using var scope = NewDisposeScope();
        var heads = Mlp.HeadsOf(encoder, x, encoderHeads);
        var logVariance = functional.logsigmoid(heads[1]);
        var sample = FlowPosterior.Draw(PosteriorDrawShapes.Repeat(heads[0], samples), PosteriorDrawShapes.Repeat(logVariance, samples),
            PosteriorDrawShapes.Repeat(heads[2], samples), flow, generator);
        var logQ = Objectives.FlowObjective.LogQ(sample);                                             // [K·B]
        return new PosteriorDraws(
            PosteriorDrawShapes.Split(sample.Z, samples).MoveToOuterDisposeScope(),
            PosteriorDrawShapes.Split(logQ, samples).MoveToOuterDisposeScope());
    }
}

/// <summary>The draw shared by the IAF models: reparameterise the base Gaussian, then run the flow.</summary>
internal static class FlowPosterior
{
    public static FlowPosteriorSample Draw(Tensor mean, Tensor logVariance, Tensor context, IafStack flow, Generator generator)
    {
        var (z0, epsilon) = GaussianVae.Reparameterise(mean, logVariance, generator);
        var (z, logDet) = flow.call(z0, context);
        return new FlowPosteriorSample(z0, epsilon, logVariance, z, logDet);
    }

    /// <summary>Keeps every tensor of the sample alive after the caller's dispose scope closes.</summary>
    public static FlowPosteriorSample MoveToOuterDisposeScope(this FlowPosteriorSample sample) => new(
        sample.Z0.MoveToOuterDisposeScope(), sample.Epsilon.MoveToOuterDisposeScope(),
        sample.LogVariance.MoveToOuterDisposeScope(), sample.Z.MoveToOuterDisposeScope(),
        sample.LogDet.MoveToOuterDisposeScope());
}
