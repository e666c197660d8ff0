using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// A fixed prior p(z) on R^2 whose mass is split into <see cref="ClassCount"/> labelled segments
/// (pinwheel arm, swiss-roll segment, ...), as REFERENCE.md §5 defines them. Every draw takes the
/// caller's generator, so a seed fixes the samples; tensors are created on the prior's device.
/// </summary>
public interface IPrior
{
    /// <summary>Canonical command-line name (e.g. <c>pinwheel</c>).</summary>
    string Name { get; }

    int ClassCount { get; }

    /// <summary>True when <see cref="LogDensity"/> is the exact density; false when it is a kernel density estimate.</summary>
    bool HasExactDensity { get; }

    /// <summary>Human-readable description of how log p(z) is computed (exact, or KDE with its bandwidths).</summary>
    string DensityDescription { get; }

    /// <summary>n points <c>[n, 2]</c> and their class <c>[n]</c> (int64), classes drawn uniformly.</summary>
    (Tensor Z, Tensor Classes) Sample(long n, Generator generator);

    /// <summary>n points <c>[n, 2]</c> from class <paramref name="classIndex"/> only.</summary>
    Tensor SampleClass(int classIndex, long n, Generator generator);

    /// <summary>log p(z) for z <c>[B, 2]</c> → <c>[B]</c>, differentiable in z.</summary>
    Tensor LogDensity(Tensor z);

}
