using Ddvi.Runtime;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Likelihoods;

/// <summary>
/// p(x | z) = Π_j Bernoulli(x_j; sigmoid(ℓ_j(z))) with logits ℓ from the decoder: the paper's likelihood for
/// MNIST-format images (pixel intensities in [0, 1] used as soft targets, as the authors' release does).
/// log p(x_j | z) = x_j ℓ_j − log(1 + e^{ℓ_j}), computed as −BCE-with-logits.
/// </summary>
public sealed class BernoulliLikelihood : Likelihood
{
    /// <param name="decoder">z <c>[B, d]</c> → logits <c>[B, D]</c>.</param>
    public BernoulliLikelihood(Module<Tensor, Tensor> decoder, int latentDim, int dataDim)
        : base(nameof(BernoulliLikelihood), decoder, latentDim, dataDim)
    {
        RegisterComponents();
    }

    public override string Kind => "bernoulli";
    public override string SupportDescription => "values in [0, 1]";

    /// <summary>sigmoid(logits).</summary>
    public override Tensor MeanFromOutput(Tensor output) => functional.sigmoid(output);

    /// <summary>x_j ~ Bernoulli(sigmoid(ℓ_j)), as 0/1 floats.</summary>
    public override Tensor SampleFromOutput(Tensor output, Generator generator)
    {
        using var scope = NewDisposeScope();
        var p = functional.sigmoid(output);
        var u = Runtime.RandomDraws.Uniform(p.shape, p.dtype, p.device, generator);
        return u.lt(p).to(p.dtype).MoveToOuterDisposeScope();
    }

    /// <summary><c>bce</c>, the release's name for the term.</summary>
    public override string ReconstructionTermName => "bce";

    /// <summary>BCE with logits, averaged over pixels and batch: exactly the release's reconstruction loss.</summary>
    public override Tensor MeanNegativeLogProbPerFeature(Tensor output, Tensor x)
    {
        CheckShape(output, x, null);
        return functional.binary_cross_entropy_with_logits(output, x);
    }

    protected override Tensor ElementLogProb(Tensor output, Tensor x, Tensor? mask)
        => -functional.binary_cross_entropy_with_logits(output, Filled(x, mask, 0), reduction: Reduction.None);

    protected override Tensor InvalidValues(Tensor x) => x.lt(Scalars.Of(0)).logical_or(x.gt(Scalars.Of(1)));
}
