using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// The sampling every segmented prior shares: draw classes (uniform, or one fixed class), then let the prior place
/// a point of each class with <see cref="Generate"/>. Derived priors supply the geometry and the density.
/// </summary>
public abstract class SegmentedPrior(Device device) : ILabelledPrior
{
    /// <summary>Where the prior's samples and densities live.</summary>
    protected Device Device { get; } = device;

    public abstract string Name { get; }
    public int Dimension => 2;
    public abstract int ClassCount { get; }
    public abstract bool HasExactDensity { get; }
    public abstract string DensityDescription { get; }
    public abstract Tensor LogDensity(Tensor z);

    /// <summary>See <see cref="IPrior.NormalisedLogDensity"/>: <see cref="LogDensity"/> unless the prior's density is a clamped KDE.</summary>
    public virtual Tensor NormalisedLogDensity(Tensor z) => LogDensity(z);

    public (Tensor Z, Tensor Classes) SampleLabelled(long n, Generator generator)
    {
        PriorChecks.SampleCount(Name, n);
        using var scope = NewDisposeScope();
        var classes = PriorChecks.UniformClasses(n, ClassCount, generator);
        var z = Generate(classes, generator);
        return (z.MoveToOuterDisposeScope(), RandomDraws.Place(classes, Device).MoveToOuterDisposeScope());
    }

    public Tensor SampleClass(int classIndex, long n, Generator generator)
    {
        PriorChecks.ClassIndex(Name, classIndex, ClassCount);
        PriorChecks.SampleCount(Name, n);
        using var scope = NewDisposeScope();
        return Generate(PriorChecks.OneClass(n, classIndex), generator).MoveToOuterDisposeScope();
    }

    /// <summary>One point per class index: classes <c>[n]</c> int64 on the CPU → <c>[n, 2]</c> float32 on <see cref="Device"/>.</summary>
    protected abstract Tensor Generate(Tensor classes, Generator generator);
}
