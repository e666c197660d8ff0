using Ddvi.Runtime;
using Ddvi.Likelihoods;
using Ddvi.Flows;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// The hierarchical IAF-VAE baseline of the paper (arXiv:2401.02739; the authors' release): a two-level flow posterior
/// q(z₁, z₂|x) = q(z₁|x) q(z₂|x, z₁) and the generative model p(z₁) p(z₂) p(x|z₂) with p(z₁) = N(0, I).
/// <list type="bullet">
/// <item>Level 1, as <see cref="IafVae"/>: encoder → μ₁, σ₁² = sigmoid(·), h₁ → z₁ = IAF₁(μ₁ + σ₁ε₁; h₁).</item>
/// <item>Level 2: an image feature net f(x) (input → hidden → hidden → 128, LeakyReLU(0.2), dropout), then
/// concat(f(x), z₁) → 24 → 24 → (μ₂, σ₂² = max(sigmoid(·), 10⁻⁶), h₂) → z₂ = IAF₂(μ₂ + σ₂ε₂; h₂).</item>
/// <item>The decoder reads z₂, and z₂ is the latent the model reports.</item>
/// </list>
/// </summary>
/// <remarks>
/// Read from the release (algorithms/vaes/vanilla_vae.py, H_IAF_VAE): the decoder is applied to the level-2 sample,
/// both levels' MADEs have 64 hidden units, and level 2's variance is clipped to [10⁻⁶, 1] in its loss and ELBO
/// (Ddvi clips it everywhere, so reported latents come from the same q as the bound). Because z₁ has its own prior
/// N(0, I) and the decoder ignores it, E_q[log p(x|z₂) + log p(z₂) + log N(z₁) − log q(z₁, z₂|x)] is a valid lower
/// bound on log p(x): z₁ is an auxiliary variable whose prior integrates to one.
/// </remarks>
public sealed class HierarchicalIafVae : Module, ILatentVariableModel, IPosteriorDensity
{
    private static readonly double MinLogVariance2 = Math.Log(1e-6);

    private readonly Module<Tensor, Tensor> encoder1;
    private readonly IafStack flow1;
    private readonly Module<Tensor, Tensor> features;
    private readonly long[] level1Heads;
    private readonly long[] featureHeads;
    private readonly Mlp encoder2;
    private readonly IafStack flow2;
    private readonly Likelihood likelihood;

    /// <param name="inputDim">Pixels per image.</param>
    /// <param name="latentDim">Width d of z₁ and z₂.</param>
    /// <param name="hidden">Width of the hidden layers of the level-1 encoder, the feature net and the decoder.</param>
    /// <param name="dropoutRate">Dropout of every MLP (training mode only).</param>
    /// <param name="contextSize">Width of the flow contexts h₁, h₂.</param>
    /// <param name="flowLayers">IAF layers per level.</param>
    /// <param name="madeHidden">Units per hidden layer of each MADE (64 in the release).</param>
    /// <param name="featureSize">Width of the image features f(x) (128 in the release).</param>
    /// <param name="level2Hidden">Width of the level-2 encoder's two hidden layers (24 in the release).</param>
    public HierarchicalIafVae(int inputDim, int latentDim = 2, int hidden = 1000, double dropoutRate = 0.2,
        int contextSize = 10, int flowLayers = 4, int madeHidden = 64, int featureSize = 128, int level2Hidden = 24, Likelihood? likelihood = null,
        Module<Tensor, Tensor>? encoder1 = null, Module<Tensor, Tensor>? features = null)
        : base(nameof(HierarchicalIafVae))
    {
        LatentDim = latentDim;
        level1Heads = [latentDim, latentDim, contextSize];
        featureHeads = [featureSize];
        this.encoder1 = encoder1 ?? new Mlp(inputDim, [hidden, hidden], [latentDim, latentDim, contextSize], dropoutRate);
        flow1 = new IafStack(latentDim, contextSize, flowLayers, madeHidden);
        this.features = features ?? new Mlp(inputDim, [hidden, hidden], [featureSize], dropoutRate);
        encoder2 = new Mlp(featureSize + latentDim, [level2Hidden, level2Hidden], [latentDim, latentDim, contextSize], dropoutRate);
        flow2 = new IafStack(latentDim, contextSize, flowLayers, madeHidden);
        this.likelihood = likelihood ?? new BernoulliLikelihood(new Mlp(latentDim, [hidden, hidden], [inputDim], dropoutRate), latentDim, inputDim);
        if (this.likelihood.LatentDim != latentDim || this.likelihood.DataDim != inputDim)
            throw new ArgumentException($"{GetType().Name}: the likelihood maps d = {this.likelihood.LatentDim} → D = {this.likelihood.DataDim}, expected {latentDim} → {inputDim}.", nameof(likelihood));
        RegisterComponents();
    }

    public int LatentDim { get; }

    /// <summary>p(x | z) with its decoder.</summary>
    public Likelihood Likelihood => likelihood;

    /// <summary>Draws z₁ ~ q(z₁|x), then z₂ ~ q(z₂|x, z₁), for x <c>[B, D]</c>, with what log q needs at each level.</summary>
    public (FlowPosteriorSample Level1, FlowPosteriorSample Level2) SamplePosterior(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        var heads1 = Mlp.HeadsOf(encoder1, x, level1Heads);
        var level1 = FlowPosterior.Draw(heads1[0], functional.logsigmoid(heads1[1]), heads1[2], flow1, generator);

        var imageFeatures = Mlp.HeadsOf(features, x, featureHeads)[0];
        var heads2 = encoder2.Heads(cat([imageFeatures, level1.Z], 1));
        var logVariance2 = functional.logsigmoid(heads2[1]).clamp_min(Scalars.Of(MinLogVariance2));
        var level2 = FlowPosterior.Draw(heads2[0], logVariance2, heads2[2], flow2, generator);
        return (level1.MoveToOuterDisposeScope(), level2.MoveToOuterDisposeScope());
    }

    /// <summary>Decoder logits <c>[B, D]</c> for z₂ <c>[B, d]</c>.</summary>
    /// <summary>The decoder's output for z (logits for the Bernoulli likelihood).</summary>
    public Tensor DecodeOutput(Tensor z2) => likelihood.Decode(z2);

    /// <summary>z₂ of a posterior draw: the latent the decoder reads.</summary>
    public Tensor EncodeLatents(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        return SamplePosterior(x, generator).Level2.Z.MoveToOuterDisposeScope();
    }

    public Tensor DecodeMeans(Tensor z) => likelihood.Mean(z);

    public string PosteriorDensityDescription =>
        "two-level IAF with z1 auxiliary: LogQ = log q(z1|x) + log q(z2|x, z1) − log N(z1; 0, I), each level's log q exact " +
        "(base Gaussian minus the flow's log-determinant); the weight p(x|z2) p(z2) N(z1; 0, I) / q(z1, z2|x) is unbiased for p(x), " +
        "so the bounds hold, though looser than with the marginal q(z2|x)";

    /// <summary>
    /// K draws (z₁, z₂) per row. <see cref="PosteriorDraws.Z"/> is z₂ (the decoder's latent) and
    /// <see cref="PosteriorDraws.LogQ"/> = log q(z₁|x) + log q(z₂|x, z₁) − log N(z₁; 0, I): z₁ is an auxiliary variable
    /// scored against its own prior N(0, I), the same bound as this model's ELBO (see the remarks on the class).
    /// </summary>
    public PosteriorDraws DrawWithLogDensity(Tensor x, int samples, Generator generator)
    {
        using var scope = NewDisposeScope();
        var heads1 = Mlp.HeadsOf(encoder1, x, level1Heads);
        var imageFeatures = PosteriorDrawShapes.Repeat(Mlp.HeadsOf(features, x, featureHeads)[0], samples);
        var level1 = FlowPosterior.Draw(PosteriorDrawShapes.Repeat(heads1[0], samples),
            PosteriorDrawShapes.Repeat(functional.logsigmoid(heads1[1]), samples), PosteriorDrawShapes.Repeat(heads1[2], samples), flow1, generator);
        var heads2 = encoder2.Heads(cat([imageFeatures, level1.Z], 1));
        var logVariance2 = functional.logsigmoid(heads2[1]).clamp_min(Scalars.Of(MinLogVariance2));
        var level2 = FlowPosterior.Draw(heads2[0], logVariance2, heads2[2], flow2, generator);
        var logQ = Objectives.FlowObjective.LogQ(level1).add(Objectives.FlowObjective.LogQ(level2), Scalars.One)
                   - Objectives.FlowObjective.StandardNormalLogDensity(level1.Z);                    // [K·B]
        return new PosteriorDraws(
            PosteriorDrawShapes.Split(level2.Z, samples).MoveToOuterDisposeScope(),
            PosteriorDrawShapes.Split(logQ, samples).MoveToOuterDisposeScope());
    }
}
