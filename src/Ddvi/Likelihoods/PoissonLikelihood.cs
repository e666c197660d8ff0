using Ddvi.Runtime;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Likelihoods;

/// <summary>
/// p(x | z) = Π_j Poisson(x_j; λ_j) with the log-rate η = log λ from the decoder:
/// log p(x_j | z) = x_j η_j − e^{η_j} − lgamma(x_j + 1). Support: the integers 0, 1, 2, ….
/// </summary>
public sealed class PoissonLikelihood : Likelihood
{
    /// <param name="decoder">z <c>[B, d]</c> → log-rates η <c>[B, D]</c>.</param>
    /// <param name="latentDim">d.</param>
    /// <param name="dataDim">D.</param>
    public PoissonLikelihood(Module<Tensor, Tensor> decoder, int latentDim, int dataDim)
        : base(nameof(PoissonLikelihood), decoder, latentDim, dataDim)
    {
        RegisterComponents();
    }

    public override string Kind => "poisson";
    public override string SupportDescription => "integers 0, 1, 2, …";

    /// <summary>λ = e^η.</summary>
    public override Tensor MeanFromOutput(Tensor output) => output.exp();

    /// <summary>x_j ~ Poisson(e^{η_j}) drawn exactly with <paramref name="generator"/>, as floats.</summary>
    public override Tensor SampleFromOutput(Tensor output, Generator generator)
    {
        using var scope = NewDisposeScope();
        return LikelihoodDraws.Poisson(output.exp(), generator).MoveToOuterDisposeScope();
    }

    protected override Tensor ElementLogProb(Tensor output, Tensor x, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var xs = Filled(x, mask, 0);
        return (xs * output - output.exp() - lgamma(xs.add(Scalars.Of(1), Scalars.One))).MoveToOuterDisposeScope();
    }

    protected override Tensor InvalidValues(Tensor x) => x.lt(Scalars.Of(0)).logical_or(x.ne(x.floor()));
}
