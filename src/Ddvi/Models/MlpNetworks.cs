using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// The release's MNIST-format encoder trunk (REFERENCE.md §4): input → 1000 → 1000, each layer
/// LeakyReLU(0.2) then dropout, followed by linear heads of the sizes asked for (e.g. mean and
/// variance of q(z|x), class logits, flow context). Dropout is active only in training mode.
/// </summary>
public sealed class MlpEncoder : Module<Tensor, Tensor[]>
{
    private readonly Linear hidden1;
    private readonly Linear hidden2;
    private readonly LeakyReLU activation;
    private readonly UniformMaskDropout dropout;
    private readonly ModuleList<Linear> heads;

    /// <param name="headSizes">Output width of each head, in the order <see cref="forward"/> returns them.</param>
    public MlpEncoder(int inputDim, int[] headSizes, int hidden = 1000, double dropoutRate = 0.2) : base(nameof(MlpEncoder))
    {
        if (inputDim <= 0 || hidden <= 0 || headSizes.Length == 0 || headSizes.Any(s => s <= 0))
            throw new ArgumentException($"MlpEncoder needs positive sizes, got input {inputDim}, hidden {hidden}, heads [{string.Join(", ", headSizes)}].");
        hidden1 = Linear(inputDim, hidden);
        hidden2 = Linear(hidden, hidden);
        activation = LeakyReLU(0.2);
        dropout = new UniformMaskDropout(dropoutRate);
        heads = new ModuleList<Linear>(headSizes.Select(size => Linear(hidden, size)).ToArray());
        RegisterComponents();
    }

    /// <summary>x <c>[B, inputDim]</c> → one tensor <c>[B, headSize]</c> per head.</summary>
    public override Tensor[] forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = dropout.call(activation.call(hidden1.call(x)));
        h = dropout.call(activation.call(hidden2.call(h)));
        return heads.Select(head => head.call(h).MoveToOuterDisposeScope()).ToArray();
    }
}

/// <summary>
/// The release's MNIST-format decoder (REFERENCE.md §4): latent → 1000 → 1000 → output, LeakyReLU(0.2)
/// and dropout between layers. It returns logits; <c>sigmoid(logits)</c> are the Bernoulli means
/// (pixel intensities), and the loss uses the logits directly for a numerically stable BCE.
/// </summary>
public sealed class MlpDecoder : Module<Tensor, Tensor>
{
    private readonly Linear hidden1;
    private readonly Linear hidden2;
    private readonly Linear output;
    private readonly LeakyReLU activation;
    private readonly UniformMaskDropout dropout;

    public MlpDecoder(int latentDim, int outputDim, int hidden = 1000, double dropoutRate = 0.2) : base(nameof(MlpDecoder))
    {
        if (latentDim <= 0 || outputDim <= 0 || hidden <= 0)
            throw new ArgumentException($"MlpDecoder needs positive sizes, got latent {latentDim}, output {outputDim}, hidden {hidden}.");
        hidden1 = Linear(latentDim, hidden);
        hidden2 = Linear(hidden, hidden);
        output = Linear(hidden, outputDim);
        activation = LeakyReLU(0.2);
        dropout = new UniformMaskDropout(dropoutRate);
        RegisterComponents();
    }

    /// <summary>z <c>[B, latentDim]</c> → logits <c>[B, outputDim]</c>.</summary>
    public override Tensor forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        var h = dropout.call(activation.call(hidden1.call(z)));
        h = dropout.call(activation.call(hidden2.call(h)));
        return output.call(h).MoveToOuterDisposeScope();
    }
}
