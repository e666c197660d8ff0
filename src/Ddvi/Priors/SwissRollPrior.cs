using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// The swiss-roll prior of the paper (arXiv:2401.02739; the authors' release):
/// segment c of 10 draws u ~ U[c/10, (c+1)/10), r = 3√u, angle = 4.5π√u,
/// z = r·(cos angle, sin angle) + noise·N(0, I). Noise 0 is the release's <c>swiss_roll</c>, 0.1 its
/// <c>less_noisy_swiss_roll</c>. With noise 0 the prior lives on a curve and has no density on R², so
/// log p(z) is the release's Gaussian KDE (<see cref="KernelDensityPrior"/>) over 10,000 samples drawn with the
/// construction seed; <see cref="DensityDescription"/> records its bandwidths.
/// </summary>
public sealed class SwissRollPrior : SegmentedPrior, IDisposable
{
    public const int SegmentCount = 10;
    public const double MaxRadius = 3.0;
    public const double Turns = 4.5 * Math.PI / MaxRadius; // angle = Turns · r = 4.5π√u

    readonly GaussianKernelDensity _density;

    /// <param name="noise">Standard deviation of the isotropic Gaussian noise added to each point (≥ 0).</param>
    /// <param name="seed">Seed of the generator that draws the KDE's 10,000 centres.</param>
    /// <param name="device">Where samples and the KDE live.</param>
    /// <param name="bandwidths">KDE bandwidths; the release's by default.</param>
    public SwissRollPrior(double noise, long seed, Device device, IReadOnlyList<double>? bandwidths = null) : base(device)
    {
        PriorChecks.Scale("swiss-roll", nameof(noise), noise, strictlyPositive: false);
        Noise = noise;
        _density = KernelDensityPrior.KernelDensityOf(this, seed, device, KernelDensityPrior.DefaultSampleCount, bandwidths);
        DensityDescription = KernelDensityPrior.Describe(_density, $"{Name} (noise {noise})", seed);
    }

    public double Noise { get; }
    public override string Name => "swiss-roll";
    public override int ClassCount => SegmentCount;
    public override bool HasExactDensity => false;
    public override string DensityDescription { get; }
    public IReadOnlyList<double> Bandwidths => _density.Bandwidths;

    protected override Tensor Generate(Tensor classes, Generator generator) // [n] → [n, 2]
    {
        long n = classes.shape[0];
        var u = classes.to(float64).add(PriorChecks.Uniform(n, generator), Scalars.One) / Scalars.Of(SegmentCount);
        var r = Scalars.Of(MaxRadius) * u.sqrt();
        var angle = Scalars.Of(Turns) * r;
        var x = r * angle.cos();
        var y = r * angle.sin();
        if (Noise > 0)
        {
            x = x.add(Scalars.Of(Noise) * PriorChecks.Normal(n, generator), Scalars.One);
            y = y.add(Scalars.Of(Noise) * PriorChecks.Normal(n, generator), Scalars.One);
        }
        return PriorChecks.Points(x, y, Device);
    }

    public override Tensor LogDensity(Tensor z) => KernelDensityPrior.LogDensityOf(_density, Name, Device, z);

    /// <summary>The KDE's log density without the release's clamp: the log of a proper mixture density.</summary>
    public override Tensor NormalisedLogDensity(Tensor z) => KernelDensityPrior.LogDensityOf(_density, Name, Device, z, clamp: false);

    public void Dispose() => _density.Dispose();
}
