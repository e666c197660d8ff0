using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// A prior whose mass is split into <see cref="ClassCount"/> labelled segments (pinwheel arm, swiss-roll segment, square
/// edge, mixture component), as the paper's 2-D priors are (arXiv:2401.02739; the authors' release).
/// The paper's latent metrics and the semi-supervised models use the labels; <see cref="IPrior.Sample"/> draws labelled
/// points and drops the labels.
/// </summary>
public interface ILabelledPrior : IPrior
{
    int ClassCount { get; }

    /// <summary>
    /// n points <c>[n, d]</c> and their class <c>[n]</c> (int64), classes drawn with the prior's class probabilities:
    /// uniformly for the paper's priors, by the mixture weights for <see cref="LearnableGaussianMixture"/>.
    /// </summary>
    (Tensor Z, Tensor Classes) SampleLabelled(long n, Generator generator);

    /// <summary>n points <c>[n, d]</c> from class <paramref name="classIndex"/> only.</summary>
    Tensor SampleClass(int classIndex, long n, Generator generator);

    Tensor IPrior.Sample(long n, Generator generator)
    {
        var (z, classes) = SampleLabelled(n, generator);
        classes.Dispose();
        return z;
    }
}
