using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// The square prior of the paper (arXiv:2401.02739; the authors' release):
/// the perimeter of [−1, 1]² (length 8), walked clockwise from the corner (−1, 1)
/// as the release does (top edge left to right, right edge downwards, bottom edge right to left, left edge upwards),
/// is split into 10 equal segments of length 0.8; class c is segment c. A point is uniform along its segment plus
/// Gaussian noise across its edge with standard deviation noiseLevel/50.
/// Noise level 3 is the paper's "square" (the release's <c>less_noisy_square</c>), level 1 the release's plain <c>square</c>.
/// The density has no tidy closed form at the corners, so log p(z) is the release's Gaussian KDE
/// (<see cref="KernelDensityPrior"/>) over 10,000 samples drawn with the construction seed.
/// </summary>
public sealed class SquarePrior : SegmentedPrior, IDisposable
{
    public const int SegmentCount = 10;
    public const double DefaultNoiseLevel = 3.0;
    public const double NoiseLevelUnit = 1.0 / 50; // across-edge std = noiseLevel / 50

    readonly GaussianKernelDensity _density;

    /// <param name="noiseLevel">Across-edge noise in units of 1/50 (≥ 0).</param>
    /// <param name="seed">Seed of the generator that draws the KDE's 10,000 centres.</param>
    /// <param name="device">Where samples and the KDE live.</param>
    /// <param name="bandwidths">KDE bandwidths; the release's by default.</param>
    public SquarePrior(double noiseLevel, long seed, Device device, IReadOnlyList<double>? bandwidths = null) : base(device)
    {
        PriorChecks.Scale("square", nameof(noiseLevel), noiseLevel, strictlyPositive: false);
        NoiseLevel = noiseLevel;
        _density = KernelDensityPrior.KernelDensityOf(this, seed, device, KernelDensityPrior.DefaultSampleCount, bandwidths);
        DensityDescription = KernelDensityPrior.Describe(_density, $"{Name} (noise level {noiseLevel})", seed);
    }

    public double NoiseLevel { get; }

    /// <summary>Standard deviation of the across-edge noise, <see cref="NoiseLevel"/>/50.</summary>
    public double AcrossEdgeStd => NoiseLevel * NoiseLevelUnit;

    public override string Name => "square";
    public override int ClassCount => SegmentCount;
    public override bool HasExactDensity => false;
    public override string DensityDescription { get; }
    public IReadOnlyList<double> Bandwidths => _density.Bandwidths;

    protected override Tensor Generate(Tensor classes, Generator generator) // [n] → [n, 2]
    {
        long n = classes.shape[0];
        var position = classes.to(float64).add(PriorChecks.Uniform(n, generator), Scalars.One) * Scalars.Of(4.0 / SegmentCount); // [0, 4): edge + fraction
        var edge = position.floor();
        var t = position - edge;
        var across = Scalars.Of(AcrossEdgeStd) * PriorChecks.Normal(n, generator);

        var alongForward = Scalars.Of(2) * t - Scalars.Of(1); // −1 → 1
        var top = edge.eq(Scalars.Of(0));
        var right = edge.eq(Scalars.Of(1));
        var bottom = edge.eq(Scalars.Of(2));
        var x = where(top, alongForward, where(right, across.add(Scalars.Of(1), Scalars.One), where(bottom, -alongForward, across.add(Scalars.Of(-1), Scalars.One))));
        var y = where(top, across.add(Scalars.Of(1), Scalars.One), where(right, -alongForward, where(bottom, across.add(Scalars.Of(-1), Scalars.One), alongForward)));
        return PriorChecks.Points(x, y, Device);
    }

    public override Tensor LogDensity(Tensor z) => KernelDensityPrior.LogDensityOf(_density, Name, Device, z);

    /// <summary>The KDE's log density without the release's clamp: the log of a proper mixture density.</summary>
    public override Tensor NormalisedLogDensity(Tensor z) => KernelDensityPrior.LogDensityOf(_density, Name, Device, z, clamp: false);

    public void Dispose() => _density.Dispose();
}
