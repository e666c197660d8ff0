using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Evaluation;

/// <summary>
/// Squared maximum mean discrepancy with a mixture of RBF kernels, the release's image-quality metric
/// (arXiv:2401.02739; the authors' release), in the "mix RBF" form of the common MMD implementations:
/// k(a, b) = Σ_σ exp(−‖a − b‖² / (2σ²)) (a sum, not an average, over σ), and the biased V-statistic
/// MMD² = (1/N²) Σ_ij k(x_i, x_j) + (1/M²) Σ_ij k(y_i, y_j) − (2/(NM)) Σ_ij k(x_i, y_j), diagonals included.
/// </summary>
/// <remarks>
/// Each kernel sum is taken over blocks of <c>blockRows</c> rows against the whole other set, so a
/// 10,000 × 10,000 problem holds a few blockRows · 10,000 buffers at once (20 MB each in float32, whatever D),
/// and blockRows · D for the block's squared norms, never a full kernel matrix nor a copy of the inputs. Distances use ‖a‖² + ‖b‖² − 2 a·b (one matrix product per block, clamped at 0);
/// sums accumulate in float64 on the inputs' device, with one host read at the end. Runs under <c>no_grad</c>.
/// </remarks>
public static class MaximumMeanDiscrepancy
{
    /// <summary>The release's kernel widths σ.</summary>
    public static readonly IReadOnlyList<double> DefaultSigmas = [2, 5, 10, 20, 40, 80];

    public const int DefaultBlockRows = 512;

    const string Metric = "MMD";

    /// <summary>MMD² between the rows of <paramref name="x"/> and of <paramref name="y"/>.</summary>
    /// <param name="x"><c>[N, ...]</c> floating point; each row is flattened to D features.</param>
    /// <param name="y"><c>[M, ...]</c> with the same D, device and dtype.</param>
    /// <param name="sigmas">Kernel widths, all positive and finite; null → <see cref="DefaultSigmas"/>.</param>
    /// <param name="blockRows">Rows per block.</param>
    public static double Compute(Tensor x, Tensor y, IReadOnlyList<double>? sigmas = null, int blockRows = DefaultBlockRows)
    {
        sigmas ??= DefaultSigmas;
        if (x.dim() < 2 || y.dim() < 2)
            throw new ArgumentException($"{Metric}: x and y must be [rows, features...] tensors, got {TensorArguments.Shape(x)} and {TensorArguments.Shape(y)}.");
        if (sigmas.Count == 0 || sigmas.Any(s => !(s > 0) || double.IsInfinity(s)))
            throw new ArgumentException($"{Metric}: kernel widths σ must be positive and finite, got [{string.Join(", ", sigmas)}].", nameof(sigmas));
        TensorArguments.RequirePositive(Metric, nameof(blockRows), blockRows);

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var xRows = x.detach().flatten(1); // [N, D]
        var yRows = y.detach().flatten(1); // [M, D]
        TensorArguments.RequireMatrix(Metric, nameof(x), xRows);
        TensorArguments.RequireMatrix(Metric, nameof(y), yRows);
        TensorArguments.RequireSameDeviceAndType(Metric, nameof(x), xRows, nameof(y), yRows);
        if (xRows.shape[1] != yRows.shape[1])
            throw new ArgumentException($"{Metric}: x rows have {xRows.shape[1]} features but y rows have {yRows.shape[1]} features.", nameof(y));

        var negativeInverseTwoSigma2 = sigmas.Select(s => -1.0 / (2 * s * s)).ToArray();
        var total = zeros(1, float64, xRows.device); // [1]
        total.add_(KernelSum(xRows, xRows, negativeInverseTwoSigma2, blockRows, symmetric: true), alpha: Scalars.Of(1.0 / (xRows.shape[0] * (double)xRows.shape[0])));
        total.add_(KernelSum(yRows, yRows, negativeInverseTwoSigma2, blockRows, symmetric: true), alpha: Scalars.Of(1.0 / (yRows.shape[0] * (double)yRows.shape[0])));
        total.add_(KernelSum(xRows, yRows, negativeInverseTwoSigma2, blockRows, symmetric: false), alpha: Scalars.Of(-2.0 / (xRows.shape[0] * (double)yRows.shape[0])));
        return total.item<double>();
    }

    /// <summary>MMD from MMD²: √max(0, mmd²), since the estimate can dip just below zero for near-identical sets.</summary>
    public static double Root(double squaredMmd)
    {
        if (double.IsNaN(squaredMmd))
            throw new ArgumentException($"{Metric}: squared MMD is NaN.", nameof(squaredMmd));
        return Math.Sqrt(Math.Max(0, squaredMmd));
    }

    /// <summary>Σ_ij k(a_i, b_j) for a <c>[N, D]</c> and b <c>[M, D]</c> → float64 <c>[1]</c>.</summary>
    /// <summary>Σ_ij Σ_σ k_σ(a_i, b_j); with <paramref name="symmetric"/> (a is b) only the upper triangle is computed and the
    /// off-diagonal part counted twice, which halves the work of the two within-sample sums.</summary>
    static Tensor KernelSum(Tensor a, Tensor b, double[] negativeInverseTwoSigma2, int blockRows, bool symmetric)
    {
        using var scope = NewDisposeScope();
        var bSquaredNorms = SquaredNorms(b, blockRows).unsqueeze(0); // [1, M]
        var sum = zeros(1, float64, a.device);              // [1]
        for (long start = 0; start < a.shape[0]; start += blockRows)
        {
            using var blockScope = NewDisposeScope();
            long rows = Math.Min(blockRows, a.shape[0] - start);
            var block = a.narrow(0, start, rows);                                    // [b, D]
            long from = symmetric ? start : 0;                                       // columns j ≥ the block's first row
            var columns = b.narrow(0, from, b.shape[0] - from);                      // [M', D]
            // One [b, M'] buffer for the distances, built in place: −2 a·b + ‖a‖² + ‖b‖², clamped at 0.
            var squaredDistance = block.matmul(columns.t()).mul_(Scalars.Of(-2));               // [b, M']
            using (var blockNorms = SquaredNorms(block, blockRows).unsqueeze(1))    // [b, 1]
                squaredDistance.add_(blockNorms, Scalars.One);
            squaredDistance.add_(bSquaredNorms.narrow(1, from, columns.shape[0]), Scalars.One).clamp_min_(Scalars.Of(0));
            foreach (double scale in negativeInverseTwoSigma2)
            {
                // The kernel and every view of it are disposed per σ, so a block holds two [b, M'] buffers, not one per
                // kernel (a view left to the block's scope keeps its buffer alive). Rows are summed in float32 (libtorch's
                // cascade sum, vectorised) and only the row sums in float64: a float64 reduction of the whole block costs
                // more than the exponentials.
                using var kernel = squaredDistance.mul(Scalars.Of(scale));                       // [b, M']
                kernel.exp_();
                using var rowSums = kernel.sum(1);                                   // [b]
                if (!symmetric)
                {
                    using var blockSum = rowSums.sum(type: float64);
                    sum.add_(blockSum, Scalars.One);
                    continue;
                }
                // Within the block's own columns (the diagonal square) each pair appears in both orders already; the
                // columns after it stand for their mirror images below the diagonal too.
                using var diagonalSquare = kernel.narrow(1, 0, rows);                 // [b, b]
                using var diagonal = diagonalSquare.sum(type: float64);
                using var all = rowSums.sum(type: float64);
                sum.add_(all, alpha: Scalars.Of(2)).sub_(diagonal);
            }
        }
        return sum.MoveToOuterDisposeScope();
    }

    /// <summary>‖r_i‖² of every row of <paramref name="rows"/> <c>[N, D]</c> → <c>[N]</c>, a block of rows at a time, so that
    /// no <c>[N, D]</c> temporary is made (123 MB for 10,000 colour images).</summary>
    static Tensor SquaredNorms(Tensor rows, int blockRows)
    {
        var norms = empty(rows.shape[0], rows.dtype, rows.device); // [N]
        for (long start = 0; start < rows.shape[0]; start += blockRows)
        {
            using var blockScope = NewDisposeScope();
            long count = Math.Min(blockRows, rows.shape[0] - start);
            norms.narrow(0, start, count).copy_(rows.narrow(0, start, count).pow(Scalars.Of(2)).sum(1));
        }
        return norms;
    }
}
