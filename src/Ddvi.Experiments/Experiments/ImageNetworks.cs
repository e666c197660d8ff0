using Ddvi.Data;
using Ddvi.Likelihoods;
using Ddvi.Models;
using static TorchSharp.torch.nn;
using Tensor = TorchSharp.torch.Tensor;

namespace Ddvi.Experiments;

/// <summary>Which networks the image models use (<c>--networks</c>).</summary>
public enum NetworkChoice
{
    /// <summary>Conv networks for colour images (3 channels) whose sides suit the conv trunk (≥ 28 pixels), else MLPs.</summary>
    Auto,

    /// <summary>The paper's MNIST-format MLPs (D → hidden → hidden), whatever the images.</summary>
    Mlp,

    /// <summary>The paper's CIFAR-10 conv networks (<see cref="ConvTrunk"/>, <see cref="ConvDecoder"/>), on any images that suit them.</summary>
    Conv,
}

/// <summary>
/// The networks and the likelihood of one run's models, chosen from the data (arXiv:2401.02739, appendix; the authors'
/// release): each method asks it for its encoder, likelihood (with its decoder), auxiliary encoder and image features, so
/// that the models themselves know nothing of the data. The likelihood follows the pixel range: Bernoulli for [0, 1]
/// (the paper's MNIST setting, decoder logits), Gaussian with σ = 1/√2 for [−1, 1] (the release's MSE, decoder mean
/// squashed into [−1, 1] by <see cref="BoundedOutput"/>). The networks follow <see cref="NetworkChoice"/>.
/// </summary>
public sealed class ImageNetworks
{
    private readonly ImageShape shape;
    private readonly PixelRange range;

    private ImageNetworks(ImageShape shape, PixelRange range, bool convolutional)
    {
        this.shape = shape;
        this.range = range;
        Convolutional = convolutional;
    }

    /// <summary>The networks for <paramref name="train"/> under <paramref name="choice"/>; conv networks on images too small
    /// for them, or a last batch of one image (batch norm cannot normalise it), are errors naming the option.</summary>
    public static ImageNetworks For(NetworkChoice choice, ImageDataset train, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(train);
        var shape = train.Shape;
        bool suits = ConvTrunk.Suits(shape.Height, shape.Width);
        bool conv = choice switch
        {
            NetworkChoice.Conv => suits ? true
                : throw new ArgumentException($"--networks conv: the {shape} images of {train.Name} are too small for the conv networks (both sides must be at least {ConvTrunk.MinimumSide})."),
            NetworkChoice.Mlp => false,
            _ => shape.Channels == 3 && suits,
        };
        if (conv && train.Count % batchSize == 1)
            throw new ArgumentException($"--batch-size {batchSize}: the {train.Count} training images leave a last batch of one image, which the conv " +
                                        "networks' batch norm cannot normalise; choose another batch size.");
        return new ImageNetworks(shape, train.Range, conv);
    }

    /// <summary>True for the conv networks, false for the MLPs.</summary>
    public bool Convolutional { get; }

    /// <summary>
    /// True for MLPs on [0, 1] pixels with the Bernoulli likelihood: the paper's MNIST-format networks, which every model
    /// builds itself when given none. The methods then let it, so that a seed gives the same initial weights as before
    /// networks were chosen here (the IAF models create their flows between encoder and decoder).
    /// </summary>
    public bool AreModelDefaults => !Convolutional && range == PixelRange.UnitInterval;

    private int InputDim => shape.Size;

    /// <summary>What was chosen, for the run's log.</summary>
    public string Description => (Convolutional
            ? $"conv networks (trunk {string.Join("→", ConvTrunk.Widths.Prepend(shape.Channels))} with batch norm, transposed-conv decoder)"
            : "MLP networks") +
        $" on {shape} images in {(range == PixelRange.Symmetric ? "[−1, 1]" : "[0, 1]")}, " +
        (range == PixelRange.Symmetric
            ? $"Gaussian likelihood with σ = 1/√2 (the release's MSE; decoder mean squashed into [−1, 1])"
            : "Bernoulli likelihood (decoder logits)");

    /// <summary>An encoder x <c>[B, D]</c> → the heads side by side: MLP D → hidden → hidden → heads, or conv trunk → hidden → heads.</summary>
    public Module<Tensor, Tensor> Encoder(IReadOnlyList<int> heads, int hidden, double dropout) => Convolutional
        ? new ConvEncoder(shape.Channels, shape.Height, shape.Width, [hidden], heads, dropout)
        : new Mlp(InputDim, [hidden, hidden], heads, dropout);

    /// <summary>The auxiliary encoder a(x) of DDVI: MLP D → hidden → hidden → c (dropout <paramref name="mlpDropout"/>), or
    /// the conv trunk → 24 → 24 → c (dropout 0.2), as the release.</summary>
    public Module<Tensor, Tensor> AuxiliaryEncoder(int contextDim, int hidden, double mlpDropout) => Convolutional
        ? new ConvEncoder(shape.Channels, shape.Height, shape.Width, PaperSettings.ConvAuxiliaryHidden, [contextDim], PaperSettings.ConvAuxiliaryDropout)
        : new Mlp(InputDim, [hidden, hidden], [contextDim], mlpDropout);

    /// <summary>The image features f(x) of the hierarchical IAF-VAE: MLP D → hidden → hidden → size, or the conv trunk → hidden → size.</summary>
    public Module<Tensor, Tensor> Features(int size, int hidden, double dropout) => Encoder([size], hidden, dropout);

    /// <summary>The decoder network alone (unbounded output): MLP d → hidden → hidden → D, or <see cref="ConvDecoder"/>.</summary>
    public Module<Tensor, Tensor> DecoderNetwork(int latentDim, int hidden, double dropout) => Convolutional
        ? new ConvDecoder(latentDim, shape.Channels, shape.Height, shape.Width)
        : new Mlp(latentDim, [hidden, hidden], [InputDim], dropout);

    /// <summary>The likelihood with its decoder (see the class summary).</summary>
    public Likelihood Likelihood(int latentDim, int hidden, double dropout) => LikelihoodAround(DecoderNetwork(latentDim, hidden, dropout), latentDim);

    /// <summary>The likelihood of the data's pixel range around a decoder network built already.</summary>
    public Likelihood LikelihoodAround(Module<Tensor, Tensor> decoder, int latentDim)
    {
        if (range == PixelRange.UnitInterval) return new BernoulliLikelihood(decoder, latentDim, InputDim);
        var (low, high) = range.Bounds();
        return new GaussianLikelihood(new BoundedOutput(decoder, low, high), latentDim, InputDim, PaperSettings.MseGaussianSigma);
    }
}
