using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// A prior whose log density is the kernel density estimate of the authors' release (arXiv:2401.02739):
/// log p̂(z) = log (1/H) Σ_h (1/N) Σ_i N(z; z_i, h² I), clamped to [−1000, 1000], over N = <see cref="DefaultSampleCount"/>
/// samples z_i of the sampler drawn from a generator seeded at construction. Sampling is delegated to the sampler.
/// Used for priors without a closed-form density (swiss roll, square) and, on request, to reproduce the release's
/// density for the others.
/// </summary>
public sealed class KernelDensityPrior : ILabelledPrior, IDisposable
{
    public const int DefaultSampleCount = 10_000;

    readonly ILabelledPrior _sampler;
    readonly GaussianKernelDensity _density;
    readonly Device _device;

    /// <param name="sampler">The prior to sample from; its own density is not used.</param>
    /// <param name="seed">Seed of the generator that draws the KDE's centres.</param>
    /// <param name="device">Where the KDE's centres live; must be the sampler's device.</param>
    /// <param name="sampleCount">Number of KDE centres.</param>
    /// <param name="bandwidths">Kernel standard deviations; the release's {0.005, 0.008, 0.01, 0.03, 0.05} by default.</param>
    public KernelDensityPrior(ILabelledPrior sampler, long seed, Device device, int sampleCount = DefaultSampleCount,
                              IReadOnlyList<double>? bandwidths = null)
    {
        _sampler = sampler;
        _device = device;
        _density = KernelDensityOf(sampler, seed, device, sampleCount, bandwidths);
        DensityDescription = Describe(_density, sampler.Name, seed);
    }

    public string Name => _sampler.Name;
    public int Dimension => _sampler.Dimension;
    public int ClassCount => _sampler.ClassCount;
    public bool HasExactDensity => false;
    public string DensityDescription { get; }
    public IReadOnlyList<double> Bandwidths => _density.Bandwidths;

    public (Tensor Z, Tensor Classes) SampleLabelled(long n, Generator generator) => _sampler.SampleLabelled(n, generator);

    public Tensor SampleClass(int classIndex, long n, Generator generator) => _sampler.SampleClass(classIndex, n, generator);

    public Tensor LogDensity(Tensor z) => LogDensityOf(_density, Name, _device, z);

    /// <summary>The KDE's log density without the release's clamp: the log of a proper mixture density.</summary>
    public Tensor NormalisedLogDensity(Tensor z) => LogDensityOf(_density, Name, _device, z, clamp: false);

    public void Dispose() => _density.Dispose();

    /// <summary>A KDE over <paramref name="sampleCount"/> samples of <paramref name="sampler"/> from a CPU generator seeded by <paramref name="seed"/>.</summary>
    internal static GaussianKernelDensity KernelDensityOf(ILabelledPrior sampler, long seed, Device device, int sampleCount,
                                                          IReadOnlyList<double>? bandwidths)
    {
        if (sampleCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(sampleCount), sampleCount, $"{sampler.Name} prior: KDE sample count must be positive.");
        // A CPU generator whatever the device, so the same seed gives the same KDE everywhere.
        using var generator = new Generator(unchecked((ulong)seed));
        Tensor centres;
        using (NewDisposeScope())
        {
            centres = sampler.SampleLabelled(sampleCount, generator).Z.to(device).DetachFromDisposeScope();
        }
        try
        {
            return new GaussianKernelDensity(centres, bandwidths);
        }
        finally
        {
            centres.Dispose();
        }
    }

    internal static string Describe(GaussianKernelDensity density, string prior, long seed) =>
        $"{density.Description} (approximate: {prior} prior samples, seed {seed}, log density clamped to " +
        $"[{GaussianKernelDensity.MinLogDensity}, {GaussianKernelDensity.MaxLogDensity}])";

    internal static Tensor LogDensityOf(GaussianKernelDensity density, string prior, Device device, Tensor z, bool clamp = true)
    {
        PriorChecks.LatentBatch(prior, z, device, density.Dimension);
        using var scope = NewDisposeScope();
        return density.LogDensity(z, clamp: clamp).to(float32).MoveToOuterDisposeScope();
    }
}
