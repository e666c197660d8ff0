using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// log p(z | c) for each segment c of a labelled prior, as the authors' release estimates it for its semi-supervised
/// models (arXiv:2401.02739; its <c>evaluate_partition</c>): a Gaussian kernel density estimate per class over
/// <see cref="DefaultSamplesPerClass"/> samples of that class, bandwidth 0.05, clamped as
/// <see cref="GaussianKernelDensity"/> clamps. The centres are drawn once from a generator seeded at construction.
/// </summary>
public sealed class ClassConditionalDensity : IDisposable
{
    public const int DefaultSamplesPerClass = 2_000;

    /// <summary>The release's bandwidth of the per-class estimates.</summary>
    public static readonly IReadOnlyList<double> DefaultBandwidths = [0.05];

    private readonly GaussianKernelDensity[] _classes;

    public ClassConditionalDensity(ILabelledPrior prior, long seed, Device device, int samplesPerClass = DefaultSamplesPerClass,
        IReadOnlyList<double>? bandwidths = null)
    {
        ArgumentNullException.ThrowIfNull(prior);
        if (samplesPerClass < 1)
            throw new ArgumentOutOfRangeException(nameof(samplesPerClass), samplesPerClass, "ClassConditionalDensity: needs at least 1 sample per class.");
        using var generator = new Generator(unchecked((ulong)seed));
        _classes = new GaussianKernelDensity[prior.ClassCount];
        for (int c = 0; c < prior.ClassCount; c++)
        {
            using var centres = prior.SampleClass(c, samplesPerClass, generator).to(device);
            _classes[c] = new GaussianKernelDensity(centres, bandwidths ?? DefaultBandwidths);
        }
        Description = $"per-class {_classes[0].Description} of each class's prior samples (seed {seed})";
    }

    public int ClassCount => _classes.Length;

    public string Description { get; }

    /// <summary>log p(z | c) for z <c>[B, d]</c> → <c>[B]</c> (differentiable in z).</summary>
    public Tensor LogDensity(int classIndex, Tensor z) => _classes[classIndex].LogDensity(z);

    /// <summary>log p(z_c | c) for every class at once: z <c>[C, B, d]</c> (row c scored by class c) → <c>[C, B]</c>.</summary>
    public Tensor LogDensityByClass(Tensor z)
    {
        if (z.dim() != 3 || z.shape[0] != ClassCount)
            throw new ArgumentException($"ClassConditionalDensity: z must be [{ClassCount}, B, d], got [{string.Join(", ", z.shape)}].", nameof(z));
        using var scope = NewDisposeScope();
        return stack(Enumerable.Range(0, ClassCount).Select(c => _classes[c].LogDensity(z[c])).ToArray(), 0).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var density in _classes) density.Dispose();
    }
}
