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

    readonly Tensor _centres;        // [N, d]
    readonly Tensor _centreColumns;  // [d, N]
    readonly double[] _logNormalisers; // per bandwidth: −(d/2) log(2π h²) − log(H N)

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
        _centreColumns = _centres.t().contiguous().DetachFromDisposeScope();
        _logNormalisers = Bandwidths.Select(h => -(d / 2.0) * Math.Log(2 * Math.PI * h * h) - Math.Log(Bandwidths.Count * (double)n)).ToArray();
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
        // Each block frees its [b, N] temporaries before the next one starts.
        using var scope = NewDisposeScope();
        // Squared distances one coordinate at a time (explicit differences, no [b, N, d] tensor; the gradient stays
        // finite when z sits on a centre).
        var squaredDistance = zeros(z.shape[0], _centres.shape[0], z.dtype, z.device);             // [b, N]
        for (long j = 0; j < z.shape[1]; j++)
        {
            var difference = z.narrow(1, j, 1) - _centreColumns.narrow(0, j, 1);                     // [b, N]
            squaredDistance = squaredDistance.addcmul(difference, difference, 1);
        }
        // log Σ_h Σ_i exp(c_h − D_i/(2h²)) with the nearest centre's distance m factored out of every kernel:
        // = logsumexp_h(c_h − m/(2h²) + log Σ_i exp(−(D_i − m)/(2h²))). Each inner sum is ≥ 1 (the nearest centre
        // contributes exp(0)), so nothing underflows however far z is; m is treated as a constant, which is exact
        // because the identity holds for every m.
        var nearest = squaredDistance.min(1, keepdim: true).values.detach();                        // [b, 1]
        var excess = squaredDistance - nearest;                                                     // [b, N]
        var perBandwidth = new Tensor[Bandwidths.Count];
        for (int h = 0; h < Bandwidths.Count; h++)
        {
            double inverseTwoH2 = 1.0 / (2 * Bandwidths[h] * Bandwidths[h]);
            var inner = (excess * -inverseTwoH2).exp_().sum(1).log_();                              // [b]
            perBandwidth[h] = inner - nearest.squeeze(1) * inverseTwoH2 + _logNormalisers[h];
        }
        return stack(perBandwidth, 1).logsumexp(1).clamp(MinLogDensity, MaxLogDensity).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        _centres.Dispose();
        _centreColumns.Dispose();
    }
}
