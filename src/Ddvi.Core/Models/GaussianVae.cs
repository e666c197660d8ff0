using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// The AEVB baseline of the paper (REFERENCE.md §6): q(z|x) = N(μ(x), diag σ²(x)) with
/// σ² = sigmoid(encoder output) as in the release, a Bernoulli decoder p(x|z), and a fixed prior
/// supplied by the objective. Holds no optimiser and runs no loop.
/// </summary>
public sealed class GaussianVae : Module, ILatentVariableModel
{
    private readonly MlpEncoder encoder;
    private readonly MlpDecoder decoder;

    public GaussianVae(int inputDim, int latentDim = 2, int hidden = 1000, double dropoutRate = 0.2) : base(nameof(GaussianVae))
    {
        LatentDim = latentDim;
        encoder = new MlpEncoder(inputDim, [latentDim, latentDim], hidden, dropoutRate);
        decoder = new MlpDecoder(latentDim, inputDim, hidden, dropoutRate);
        RegisterComponents();
    }

    public int LatentDim { get; }

    public MlpEncoder Encoder => encoder;
    public MlpDecoder Decoder => decoder;

    /// <summary>Mean and variance of q(z|x), each <c>[B, LatentDim]</c>.</summary>
    public (Tensor Mean, Tensor Variance) Posterior(Tensor x)
    {
        var heads = encoder.call(x);
        using var varianceLogit = heads[1];
        return (heads[0], functional.sigmoid(varianceLogit));
    }

    /// <summary>Reparameterised z = μ + σ·ε with ε from <paramref name="generator"/>.</summary>
    public static Tensor Reparameterise(Tensor mean, Tensor variance, Generator generator)
    {
        using var epsilon = randn(mean.shape, dtype: mean.dtype, device: mean.device, generator: generator);
        return mean + variance.sqrt() * epsilon;
    }

    public Tensor DecodeLogits(Tensor z) => decoder.call(z);

    public Tensor EncodeLatents(Tensor x, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (mean, variance) = Posterior(x);
        return Reparameterise(mean, variance, generator).MoveToOuterDisposeScope();
    }

    public Tensor DecodeMeans(Tensor z)
    {
        using var logits = DecodeLogits(z);
        return functional.sigmoid(logits);
    }
}
