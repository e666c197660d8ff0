using Ddvi.Likelihoods;
using Ddvi.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// The adversarial autoencoder baseline of the paper (arXiv:2401.02739; the authors' release; Makhzani et al. 2016): a
/// deterministic encoder z = f(x), a decoder with Bernoulli-mean outputs sigmoid(g(z)), and a
/// discriminator D(z) that tells prior samples from encodings. The encoder is pushed to make its
/// aggregate posterior look like p(z) by fooling D, so no likelihood bound is defined. Holds no
/// optimiser and runs no loop: see <c>AaeObjectives</c> and <c>AaeMethod</c>.
/// </summary>
public sealed class AdversarialAutoencoder : Module, ILatentVariableModel
{
    private readonly Module<Tensor, Tensor> encoder;
    private readonly Likelihood likelihood;
    private readonly AaeDiscriminator discriminator;

    public AdversarialAutoencoder(int inputDim, int latentDim = 2, int hidden = 1000, double dropoutRate = 0.2,
        int discriminatorHidden = 1000, double discriminatorDropout = 0.2, Likelihood? likelihood = null,
        Module<Tensor, Tensor>? encoder = null, int discriminatorExtraInputs = 0) : base(nameof(AdversarialAutoencoder))
    {
        LatentDim = latentDim;
        this.encoder = encoder ?? new Mlp(inputDim, [hidden, hidden], [latentDim], dropoutRate);
        this.likelihood = likelihood ?? new BernoulliLikelihood(new Mlp(latentDim, [hidden, hidden], [inputDim], dropoutRate), latentDim, inputDim);
        if (this.likelihood.LatentDim != latentDim || this.likelihood.DataDim != inputDim)
            throw new ArgumentException($"{GetType().Name}: the likelihood maps d = {this.likelihood.LatentDim} → D = {this.likelihood.DataDim}, expected {latentDim} → {inputDim}.", nameof(likelihood));
        // The semi-supervised AAE's discriminator also reads a one-hot label (C classes and "unlabelled"): its extra inputs.
        discriminator = new AaeDiscriminator(latentDim + discriminatorExtraInputs, discriminatorHidden, discriminatorDropout);
        RegisterComponents();
    }

    public int LatentDim { get; }

    public Module<Tensor, Tensor> Encoder => encoder;
    public Likelihood Likelihood => likelihood;
    public nn.Module<Tensor, Tensor> Decoder => likelihood.Decoder;
    public AaeDiscriminator Discriminator => discriminator;

    /// <summary>The deterministic code z = f(x): x <c>[B, D]</c> → <c>[B, LatentDim]</c>.</summary>
    public Tensor Encode(Tensor x) => Mlp.HeadsOf(encoder, x, [LatentDim])[0];

    /// <summary>Decoder logits for z <c>[B, LatentDim]</c> → <c>[B, D]</c>; sigmoid of them are the reconstructions.</summary>
    /// <summary>The decoder's output for z (logits for the Bernoulli likelihood).</summary>
    public Tensor DecodeOutput(Tensor z) => likelihood.Decode(z);

    /// <summary>The encoder output itself: an AAE's posterior is a point mass, so <paramref name="generator"/> is not used.</summary>
    public Tensor EncodeLatents(Tensor x, Generator generator) => Encode(x);

    public Tensor DecodeMeans(Tensor z) => likelihood.Mean(z);

    /// <summary>Encoder and decoder: what the reconstruction step updates.</summary>
    public IReadOnlyList<Parameter> AutoencoderParameters() => [.. encoder.parameters(), .. likelihood.parameters()];

    /// <summary>The encoder alone: what the generator (regularisation) step updates.</summary>
    public IReadOnlyList<Parameter> EncoderParameters() => [.. encoder.parameters()];

    /// <summary>The discriminator alone: what the discriminator step updates.</summary>
    public IReadOnlyList<Parameter> DiscriminatorParameters() => [.. discriminator.parameters()];
}

/// <summary>
/// The AAE's discriminator on latent codes, as the authors' release builds it (arXiv:2401.02739):
/// z → 1000 → 1000 → 1, LeakyReLU(0.2) and dropout 0.2 after each hidden layer. It returns the logit l(z) of D(z) =
/// sigmoid(l(z)), the probability
/// that z came from the prior, so losses can use log-sigmoid forms that never overflow.
/// In training mode its input can be perturbed by multiplicative noise z + σ·|z|·ε, ε ~ N(0, I), which
/// blurs both distributions early in training so the encoder gets a useful signal; σ follows
/// <see cref="NoiseStdAt"/>. Dropout and noise are both off in eval mode.
/// </summary>
public sealed class AaeDiscriminator : Module<Tensor, Tensor>
{
    private readonly Mlp network;

    public AaeDiscriminator(int latentDim = 2, int hidden = 1000, double dropoutRate = 0.2) : base(nameof(AaeDiscriminator))
    {
        if (latentDim <= 0 || hidden <= 0)
            throw new ArgumentException($"AaeDiscriminator needs positive sizes, got latent {latentDim}, hidden {hidden}.");
        network = new Mlp(latentDim, [hidden, hidden], [1], dropoutRate);
        RegisterComponents();
    }

    /// <summary>Noise-free logits: z <c>[B, d]</c> → <c>[B]</c>.</summary>
    public override Tensor forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        return network.call(z).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Logits of z <c>[B, d]</c> → <c>[B]</c>, with the input first perturbed as z + σ·|z|·ε when the module is
    /// training and <paramref name="noiseStd"/> σ &gt; 0 (ε drawn from <paramref name="generator"/>).
    /// </summary>
    public Tensor Logits(Tensor z, double noiseStd, Generator generator)
    {
        if (!training || noiseStd == 0) return forward(z);
        using var noisy = PerturbInput(z, noiseStd, generator);
        return forward(noisy);
    }

    /// <summary>
    /// z + σ·|z|·ε with ε ~ N(0, I) from <paramref name="generator"/>: noise relative to each coordinate's size.
    /// The scale |z| is detached, so the encoder is not rewarded for shrinking its codes to escape the noise.
    /// </summary>
    public static Tensor PerturbInput(Tensor z, double noiseStd, Generator generator)
    {
        if (!(noiseStd >= 0) || !double.IsFinite(noiseStd))
            throw new ArgumentOutOfRangeException(nameof(noiseStd), noiseStd, "discriminator input noise σ must be finite and ≥ 0");
        using var scope = NewDisposeScope();
        var epsilon = RandomDraws.Normal(z.shape, z.dtype, z.device, generator);
        return z.add(Scalars.Of(noiseStd) * z.detach().abs() * epsilon, Scalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// σ of the input noise in 0-based <paramref name="epoch"/> of <paramref name="epochs"/>: σ₀ in the first
    /// quarter (epoch &lt; E/4), σ₀/2 in the second (E/4 ≤ epoch &lt; E/2), 0 from the half-way mark on. With the
    /// release's σ₀ = 0.2 and E = 200: 0.2 in epochs 0–49, 0.1 in 50–99, 0 in 100–199 (1-based: 1–50, 51–100,
    /// 101–200). The release sets σ after each epoch, so its first epoch runs at its module default 0.3 and its
    /// steps come one epoch later (0.2 in epochs 1–50, 0.1 in 51–100, 0 from 101, 0-based); Ddvi applies the
    /// stated schedule from the first epoch.
    /// </summary>
    public static double NoiseStdAt(int epoch, int epochs, double initialStd)
    {
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "epochs must be ≥ 1");
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "epoch must be ≥ 0");
        // Compare 4·epoch with E rather than epoch with E/4, so E not divisible by 4 needs no rounding rule.
        if (4L * epoch < epochs) return initialStd;
        if (4L * epoch < 2L * epochs) return initialStd / 2;
        return 0;
    }
}
