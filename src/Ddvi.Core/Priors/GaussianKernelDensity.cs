using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// Gaussian kernel density estimate on R^d with a mixture of bandwidths, as the DDVI release uses for
/// structured priors and for the latent NLL metric (REFERENCE.md §2, §7):
/// q̂(z) = (1/H) Σ_h (1/N) Σ_i N(z; c_i, h² I). Log densities are clamped to
/// [<see cref="MinLogDensity"/>, <see cref="MaxLogDensity"/>] like the release, so far-away points stay finite.
/// </summary>
public sealed class GaussianKernelDensity : IDisposable
{
    /// <summary>The release's bandwidths.</summary>
    public static readonly IReadOnlyList<double> DefaultBandwidths = [0.005, 0.008, 0.01, 0.03, 0.05];

    public const double MinLogDensity = -1000;
    public const double MaxLogDensity = 1000;

    readonly Tensor _centres;       // [N, d]
    readonly Tensor _inverseTwoH2;  // [H] 1 / (2 h²)
    readonly Tensor _logNormaliser; // [H] −(d/2) log(2π h²) − log(H N)

    /// <param name="centres">Kernel centres <c>[N, d]</c>; copied (detached).</param>
    /// <param name="bandwidths">Kernel standard deviations; all must be positive.</param>
    public GaussianKernelDensity(Tensor centres, IReadOnlyList<double>? bandwidths = null)
    {
        bandwidths ??= DefaultBandwidths;
        if (centres.dim() != 2 || centres.shape[0] == 0)
            throw new ArgumentException($"KDE centres must be a non-empty [N, d] tensor, got [{string.Join(", ", centres.shape)}].");
        if (bandwidths.Count == 0 || bandwidths.Any(h => !(h > 0) || double.IsInfinity(h)))
            throw new ArgumentException($"KDE bandwidths must be positive and finite, got [{string.Join(", ", bandwidths)}].");

        Bandwidths = bandwidths.ToArray();
        _centres = centres.detach().clone().DetachFromDisposeScope();
        long n = centres.shape[0];
        long d = centres.shape[1];
        using var h = tensor(Bandwidths.ToArray(), dtype: float64);
        // Owned by this object, not by any dispose scope the caller may have open.
        using var inverseTwoH2 = 1.0 / (2 * h * h);
        using var logNormaliser = -(d / 2.0) * (2 * Math.PI * h * h).log() - Math.Log(Bandwidths.Count * (double)n);
        _inverseTwoH2 = inverseTwoH2.to(centres.dtype, centres.device).DetachFromDisposeScope();
        _logNormaliser = logNormaliser.to(centres.dtype, centres.device).DetachFromDisposeScope();
    }

    public IReadOnlyList<double> Bandwidths { get; }
    public long CentreCount => _centres.shape[0];

    /// <summary>"Gaussian KDE over N points, bandwidths {…}", for logs and metrics files.</summary>
    public string Description => $"Gaussian KDE over {CentreCount} points, bandwidths {{{string.Join(", ", Bandwidths)}}}";

    /// <summary>log q̂(z) for z <c>[B, d]</c> → <c>[B]</c>, in blocks of <paramref name="blockRows"/> queries so memory stays bounded.</summary>
    public Tensor LogDensity(Tensor z, int blockRows = 512)
    {
        if (z.dim() != 2 || z.shape[1] != _centres.shape[1])
            throw new ArgumentException($"KDE query must be [B, {_centres.shape[1]}], got [{string.Join(", ", z.shape)}].");
        var blocks = new List<Tensor>();
        for (long start = 0; start < z.shape[0]; start += blockRows)
        {
            long rows = Math.Min(blockRows, z.shape[0] - start);
            blocks.Add(BlockLogDensity(z.narrow(0, start, rows)));
        }
        return blocks.Count == 1 ? blocks[0] : cat(blocks, 0);
    }

    Tensor BlockLogDensity(Tensor z) // [b, d] → [b]
    {
        // Each block frees its [b, H, N] temporaries before the next one starts.
        using var scope = NewDisposeScope();
        // Explicit differences rather than cdist: the gradient stays finite when z sits on a centre.
        var squaredDistance = (z.unsqueeze(1) - _centres.unsqueeze(0)).square().sum(-1); // [b, N]
        var logKernels = _logNormaliser.view(1, -1, 1) - squaredDistance.unsqueeze(1) * _inverseTwoH2.view(1, -1, 1); // [b, H, N]
        return logKernels.flatten(1).logsumexp(1).clamp(MinLogDensity, MaxLogDensity).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        _centres.Dispose();
        _inverseTwoH2.Dispose();
        _logNormaliser.Dispose();
    }
}
