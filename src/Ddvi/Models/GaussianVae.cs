using Ddvi.Likelihoods;
using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// The AEVB baseline of the paper (arXiv:2401.02739; the authors' release): q(z|x) = N(μ(x), diag σ²(x)) with
/// σ² = sigmoid(encoder output) as in the release, a Bernoulli decoder p(x|z), and a fixed prior
/// supplied by the objective. Holds no optimiser and runs no loop.
/// </summary>
public sealed class GaussianVae : Module, ILatentVariableModel, IPosteriorDensity, IClassifyingModel
{
    private readonly Module<Tensor, Tensor> encoder;
    private readonly long[] encoderHeads;
    private readonly Likelihood likelihood;

    public GaussianVae(int inputDim, int latentDim = 2, int hidden = 1000, double dropoutRate = 0.2, Likelihood? likelihood = null,
        Module<Tensor, Tensor>? encoder = null, int classes = 0) : base(nameof(GaussianVae))
    {
        LatentDim = latentDim;
        ClassCount = classes;
        encoderHeads = classes > 0 ? [latentDim, latentDim, classes] : [latentDim, latentDim];
        this.encoder = encoder ?? new Mlp(inputDim, [hidden, hidden], [.. encoderHeads.Select(w => (int)w)], dropoutRate);
        this.likelihood = likelihood ?? new BernoulliLikelihood(new Mlp(latentDim, [hidden, hidden], [inputDim], dropoutRate), latentDim, inputDim);
        if (this.likelihood.LatentDim != latentDim || this.likelihood.DataDim != inputDim)
            throw new ArgumentException($"{GetType().Name}: the likelihood maps d = {this.likelihood.LatentDim} → D = {this.likelihood.DataDim}, expected {latentDim} → {inputDim}.", nameof(likelihood));
        RegisterComponents();
    }

    public int LatentDim { get; }

    /// <summary>C, the width of the encoder's class-logit head (the semi-supervised <c>vae-semi</c>); 0 = no classifier.</summary>
    public int ClassCount { get; }

    /// <summary>log q(c|x) up to a constant, <c>[B, C]</c>: the encoder's third head (only with <see cref="ClassCount"/> &gt; 0).</summary>
    public Tensor ClassLogits(Tensor x)
    {
        if (ClassCount == 0) throw new InvalidOperationException("GaussianVae: this model was built without a class head (classes = 0).");
        var heads = Mlp.HeadsOf(encoder, x, encoderHeads);
        heads[0].Dispose();
        heads[1].Dispose();
        return heads[2];
    }

    /// <summary>μ, log σ² (σ² = sigmoid of the encoder output) and, with a class head, the class logits (else null), from one encoder pass.</summary>
    public (Tensor Mean, Tensor LogVariance, Tensor? Logits) PosteriorAndLogits(Tensor x)
    {
        var heads = Mlp.HeadsOf(encoder, x, encoderHeads);
        using var varianceLogit = heads[1];
        return (heads[0], functional.logsigmoid(varianceLogit), ClassCount > 0 ? heads[2] : null);
    }

    public Module<Tensor, Tensor> Encoder => encoder;
    public Likelihood Likelihood => likelihood;
    public nn.Module<Tensor, Tensor> Decoder => likelihood.Decoder;

    /// <summary>Mean and log-variance of q(z|x), each <c>[B, LatentDim]</c>; σ² = sigmoid(encoder output) as in the release.</summary>
    public (Tensor Mean, Tensor LogVariance) Posterior(Tensor x)
    {
        var heads = Mlp.HeadsOf(encoder, x, encoderHeads);
        using var varianceLogit = heads[1];
        if (heads.Length > 2) heads[2].Dispose();
        // log sigmoid stays finite where sigmoid underflows to 0, so log q(z|x) never becomes infinite.
        return (heads[0], functional.logsigmoid(varianceLogit));
    }

    /// <summary>A reparameterised sample z = μ + σ·ε and its standard-normal noise ε (drawn from <paramref name="generator"/>).</summary>
    public static (Tensor Z, Tensor Epsilon) Reparameterise(Tensor mean, Tensor logVariance, Generator generator)
    {
        var epsilon = RandomDraws.Normal(mean.shape, mean.dtype, mean.device, generator);
        using var std = (Scalars.Of(0.5) * logVariance).exp();
        return (mean.add(std * epsilon, Scalars.One), epsilon);
    }

    /// <summary>The decoder's output for z (logits for the Bernoulli likelihood).</summary>
    public Tensor DecodeOutput(Tensor z) => likelihood.Decode(z);

    public Tensor EncodeLatents(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (mean, logVariance) = Posterior(x);
        return Reparameterise(mean, logVariance, generator).Z.MoveToOuterDisposeScope();
    }

    public Tensor DecodeMeans(Tensor z) => likelihood.Mean(z);

    public string PosteriorDensityDescription => "Gaussian: log q(z|x) = log N(z; μ(x), diag σ²(x)), exact";

    /// <summary>K draws z = μ + σ·ε per row, with log q(z|x) = −½ Σ (ε² + log σ² + log 2π) (exact).</summary>
    public PosteriorDraws DrawWithLogDensity(Tensor x, int samples, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (mean, logVariance) = Posterior(x);                                                     // [B, d] each
        var logVarianceK = PosteriorDrawShapes.Repeat(logVariance, samples);                        // [K·B, d]
        var (z, epsilon) = Reparameterise(PosteriorDrawShapes.Repeat(mean, samples), logVarianceK, generator);
        var logQ = Objectives.GaussianMath.LogDensityOfReparameterised(epsilon, logVarianceK);     // [K·B]
        return new PosteriorDraws(
            PosteriorDrawShapes.Split(z, samples).MoveToOuterDisposeScope(),
            PosteriorDrawShapes.Split(logQ, samples).MoveToOuterDisposeScope());
    }
}
