using System.Numerics;
using Ddvi.FastPaths;
using Ddvi.Geometry;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// Gaussian kernel density estimate on R^d with a mixture of bandwidths, as the DDVI release uses for
/// structured priors and for the latent NLL metric (arXiv:2401.02739; the authors' release):
/// q̂(z) = (1/H) Σ_h (1/N) Σ_i N(z; c_i, h² I). Log densities are clamped to
/// [<see cref="MinLogDensity"/>, <see cref="MaxLogDensity"/>] like the release, so far-away points stay finite.
/// <para>
/// Two evaluations give the same numbers. On the CPU in 2-D (the paper's priors and latents) a bucket grid of
/// the centres visits only those whose kernel is not negligible next to the nearest one's: with m the nearest squared
/// distance, a centre at squared distance D contributes exp(−(D − m)/(2h²)) relative to it, below e^−40 ≈ 4e−18 (under
/// float64 resolution, even summed over 10,000 centres) once D − m &gt; 80 h²; the grid visits centres within that reach
/// of the widest bandwidth and each narrower bandwidth skips the kernels beyond its own. The value and its gradient are summed on the host in double precision
/// and handed to autograd as value + (z − sg(z))·∇, which has that value and that gradient. Elsewhere every block of
/// queries is set against every centre with tensor operations.
/// </para>
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
    readonly PlanarNeighbourGrid? _grid; // CPU 2-D centres only
    readonly double _negligibleExcess;  // D − m beyond which a kernel is negligible next to the nearest one

    // exp(−40) ≈ 4e−18: kernels this much smaller than the nearest one cannot change a float64 sum's digits, even 10,000 of them.
    const double NegligibleExponent = 40;

    /// <param name="centres">Kernel centres <c>[N, d]</c>; copied (detached).</param>
    /// <param name="bandwidths">Kernel standard deviations; all must be positive.</param>
    /// <param name="planarGrid">Use the bucket grid for 2-D centres on the CPU (the same numbers, much faster); false forces the tensor path.</param>
    public GaussianKernelDensity(Tensor centres, IReadOnlyList<double>? bandwidths = null, bool planarGrid = true)
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
        double widest = Bandwidths.Max();
        _negligibleExcess = 2 * widest * widest * NegligibleExponent;
        if (planarGrid && d == 2 && _centres.device_type == TorchSharp.DeviceType.CPU)
        {
            var (x, y) = PlanarNeighbourGrid.Coordinates(_centres);
            _grid = new PlanarNeighbourGrid(x, y);
        }
    }

    public IReadOnlyList<double> Bandwidths { get; }
    public long CentreCount => _centres.shape[0];

    /// <summary>d, the dimension of the centres and of the queries.</summary>
    public long Dimension => _centres.shape[1];

    /// <summary>"Gaussian KDE over N points, bandwidths {…}", for logs and metrics files.</summary>
    public string Description => $"Gaussian KDE over {CentreCount} points, bandwidths {{{string.Join(", ", Bandwidths)}}}";

    /// <summary>log q̂(z) for z <c>[B, d]</c> → <c>[B]</c>, in blocks of <paramref name="blockRows"/> queries so memory stays bounded.</summary>
    /// <param name="z">Queries <c>[B, d]</c>.</param>
    /// <param name="blockRows">Queries per block of the tensor path.</param>
    /// <param name="clamp">
    /// Clamp to [<see cref="MinLogDensity"/>, <see cref="MaxLogDensity"/>] as the release (the default). Unclamped, the value
    /// is the log of the mixture itself, a density that integrates to one (finite however far z is: the nearest centre is
    /// factored out); the clamp raises it to −1000 far from every centre, where the clamped function no longer integrates
    /// to one (its floor e^−1000 has infinite mass over R^d).
    /// </param>
    public Tensor LogDensity(Tensor z, int blockRows = 512, bool clamp = true)
    {
        if (z.dim() != 2 || z.shape[1] != _centres.shape[1])
            throw new ArgumentException($"KDE query must be [B, {_centres.shape[1]}], got [{string.Join(", ", z.shape)}].");
        if (_grid is not null && z.device_type == TorchSharp.DeviceType.CPU)
            return PlanarLogDensity(z, clamp);
        var blocks = new List<Tensor>();
        for (long start = 0; start < z.shape[0]; start += blockRows)
        {
            long rows = Math.Min(blockRows, z.shape[0] - start);
            blocks.Add(BlockLogDensity(z.narrow(0, start, rows), clamp));
        }
        return blocks.Count == 1 ? blocks[0] : cat(blocks, 0);
    }

    Tensor BlockLogDensity(Tensor z, bool clamp) // [b, d] → [b]
    {
        // Each block frees its [b, N] temporaries before the next one starts.
        using var scope = NewDisposeScope();
        // Squared distances one coordinate at a time (explicit differences, no [b, N, d] tensor; the gradient stays
        // finite when z sits on a centre).
        var squaredDistance = zeros(z.shape[0], _centres.shape[0], z.dtype, z.device);             // [b, N]
        for (long j = 0; j < z.shape[1]; j++)
        {
            var difference = z.narrow(1, j, 1) - _centreColumns.narrow(0, j, 1);                     // [b, N]
            squaredDistance = squaredDistance.addcmul(difference, difference, Scalars.Of(1));
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
            var inner = (excess * Scalars.Of(-inverseTwoH2)).exp_().sum(1).log_();                              // [b]
            perBandwidth[h] = (inner - nearest.squeeze(1) * Scalars.Of(inverseTwoH2)).add(Scalars.Of(_logNormalisers[h]), Scalars.One);
        }
        var logDensity = stack(perBandwidth, 1).logsumexp(1);
        return (clamp ? logDensity.clamp(Scalars.Of(MinLogDensity), Scalars.Of(MaxLogDensity)) : logDensity).MoveToOuterDisposeScope();
    }

    Tensor PlanarLogDensity(Tensor z, bool clamp) // [B, 2] → [B]
    {
        using var scope = NewDisposeScope();
        var (x, y) = PlanarNeighbourGrid.Coordinates(z);
        var values = new double[x.Length];
        var gradients = new double[2 * x.Length];
        var inverseTwoH2 = Bandwidths.Select(h => 1 / (2 * h * h)).ToArray();
        OpenMpTeam.For((x.Length + PlanarQueriesPerTask - 1) / PlanarQueriesPerTask, get_num_threads(), chunk =>
        {
            int task = (int)chunk;
            var sums = new KernelSums(inverseTwoH2);
            Span<double> logTerms = stackalloc double[inverseTwoH2.Length];
            for (int q = task * PlanarQueriesPerTask, end = Math.Min(x.Length, q + PlanarQueriesPerTask); q < end; q++)
            {
                double nearest = _grid!.NearestSquaredDistance(x[q], y[q]);
                sums.Reset(x[q], y[q], nearest);
                _grid.VisitRuns(x[q], y[q], Math.Sqrt(nearest + _negligibleExcess), ref sums);
                sums.Finish();
                // log p = logsumexp_h(ℓ_h), ℓ_h = c_h − m/(2h²) + log S_h; ∇ log p = Σ_h softmax(ℓ)_h · (Σ_i w_hi (c_i − z)/h²) / S_h.
                double top = double.NegativeInfinity;
                for (int h = 0; h < logTerms.Length; h++)
                {
                    logTerms[h] = _logNormalisers[h] - nearest * inverseTwoH2[h] + Math.Log(sums.Weights[h]);
                    top = Math.Max(top, logTerms[h]);
                }
                double total = 0, gx = 0, gy = 0;
                for (int h = 0; h < logTerms.Length; h++)
                {
                    double share = Math.Exp(logTerms[h] - top);
                    total += share;
                    double scale = share * 2 * inverseTwoH2[h] / sums.Weights[h];
                    gx += scale * sums.WeightedDx[h];
                    gy += scale * sums.WeightedDy[h];
                }
                double logDensity = top + Math.Log(total);
                bool clamped = clamp && (logDensity < MinLogDensity || logDensity > MaxLogDensity);
                values[q] = clamp ? Math.Clamp(logDensity, MinLogDensity, MaxLogDensity) : logDensity;
                gradients[2 * q] = clamped ? 0 : gx / total;
                gradients[2 * q + 1] = clamped ? 0 : gy / total;
            }
        });
        var value = tensor(values).to(z.dtype);
        if (!z.requires_grad || !is_grad_enabled()) return value.MoveToOuterDisposeScope();
        var gradient = tensor(gradients, [x.Length, 2]).to(z.dtype);
        return value.add(((z - z.detach()) * gradient).sum(1), Scalars.One).MoveToOuterDisposeScope();
    }

    const int PlanarQueriesPerTask = 32;

    /// <summary>
    /// Per bandwidth, Σ_i w_i and Σ_i w_i (c_i − z) with w_i = exp(−(D_i − m)/(2h²)), over whole vectors of centres at a
    /// time; a kernel whose exponent exceeds <see cref="NegligibleExponent"/> counts as 0 (which also drops every centre
    /// outside the visited disc, since the widest bandwidth's limit is the disc's radius).
    /// </summary>
    struct KernelSums(double[] inverseTwoH2) : IPointRunVisitor
    {
        public readonly double[] Weights = new double[inverseTwoH2.Length];
        public readonly double[] WeightedDx = new double[inverseTwoH2.Length];
        public readonly double[] WeightedDy = new double[inverseTwoH2.Length];
        readonly Vector<double>[] _weights = new Vector<double>[inverseTwoH2.Length];
        readonly Vector<double>[] _weightedDx = new Vector<double>[inverseTwoH2.Length];
        readonly Vector<double>[] _weightedDy = new Vector<double>[inverseTwoH2.Length];
        double _qx, _qy, _nearest;

        public void Reset(double qx, double qy, double nearest)
        {
            (_qx, _qy, _nearest) = (qx, qy, nearest);
            Array.Clear(Weights);
            Array.Clear(WeightedDx);
            Array.Clear(WeightedDy);
            Array.Clear(_weights);
            Array.Clear(_weightedDx);
            Array.Clear(_weightedDy);
        }

        public void Visit(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
        {
            int i = 0;
            if (Vector.IsHardwareAccelerated && x.Length >= Vector<double>.Count)
            {
                var qx = new Vector<double>(_qx);
                var qy = new Vector<double>(_qy);
                var nearest = new Vector<double>(_nearest);
                var limit = new Vector<double>(NegligibleExponent);
                for (; i <= x.Length - Vector<double>.Count; i += Vector<double>.Count)
                {
                    var dx = new Vector<double>(x.Slice(i)) - qx;
                    var dy = new Vector<double>(y.Slice(i)) - qy;
                    var excess = dx * dx + dy * dy - nearest;
                    for (int h = 0; h < _weights.Length; h++)
                    {
                        var exponent = excess * inverseTwoH2[h];
                        // Most vectors of a run lie beyond the narrow bandwidths' reach: no exponential for them (the
                        // lanes would all be 0, so the sums are the same).
                        if (!Vector.LessThanOrEqualAny(exponent, limit)) continue;
                        var w = Vector.ConditionalSelect(Vector.LessThanOrEqual(exponent, limit), Vector.Exp(-Vector.Min(exponent, limit)), Vector<double>.Zero);
                        _weights[h] += w;
                        _weightedDx[h] += w * dx;
                        _weightedDy[h] += w * dy;
                    }
                }
            }
            for (; i < x.Length; i++)
            {
                double dx = x[i] - _qx, dy = y[i] - _qy;
                double excess = dx * dx + dy * dy - _nearest;
                for (int h = 0; h < Weights.Length; h++)
                {
                    double exponent = excess * inverseTwoH2[h];
                    if (exponent > NegligibleExponent) continue;
                    double w = Math.Exp(-exponent);
                    Weights[h] += w;
                    WeightedDx[h] += w * dx;
                    WeightedDy[h] += w * dy;
                }
            }
        }

        /// <summary>Adds the vector lanes into <see cref="Weights"/>, <see cref="WeightedDx"/> and <see cref="WeightedDy"/>.</summary>
        public void Finish()
        {
            for (int h = 0; h < Weights.Length; h++)
            {
                Weights[h] += Vector.Sum(_weights[h]);
                WeightedDx[h] += Vector.Sum(_weightedDx[h]);
                WeightedDy[h] += Vector.Sum(_weightedDy[h]);
            }
        }
    }

    public void Dispose()
    {
        _centres.Dispose();
        _centreColumns.Dispose();
    }
}
