using Ddvi.Runtime;
using Ddvi.Evaluation;
using static TorchSharp.torch;

namespace Ddvi.Embeddings;

/// <summary>Exact k nearest neighbours under Euclidean distance, the neighbour graph t-SNE and UMAP start from.</summary>
internal static class ExactNeighbours
{
    const int BlockRows = 512;

    /// <summary>
    /// Reads <paramref name="data"/> <c>[n, D]</c>, checks it, and returns each row's <paramref name="k"/> nearest other
    /// rows (the row itself excluded, even when duplicated) in ascending distance: indices and Euclidean distances, both
    /// row-major <c>[n, k]</c>.
    /// </summary>
    /// <remarks>
    /// The candidates come from squared distances ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j in float64 blocks of rows through libtorch's
    /// matrix product (O(n² D), memory <c>512 · n</c> doubles); the chosen k distances are then recomputed as
    /// √Σ (x_i − x_j)², so that duplicated points are at distance exactly 0 (UMAP's ρ_i skips zeros), and re-sorted
    /// (ties by index).
    /// </remarks>
    public static (int[] Indices, double[] Distances) Compute(Tensor data, int k)
    {
        int n = (int)data.shape[0];
        var indices = new int[n * k];
        var distances = new double[n * k];
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var x = data.detach().to(ScalarType.Float64).cpu().contiguous();   // [n, D]
        int features = (int)x.shape[1];
        double[] values = x.data<double>().ToArray();
        var norms = x.pow(Scalars.Of(2)).sum(1);                                       // [n]
        var columns = x.t();                                                 // [D, n]
        for (int start = 0; start < n; start += BlockRows)
        {
            using var blockScope = NewDisposeScope();
            int rows = Math.Min(BlockRows, n - start);
            var squared = norms.narrow(0, start, rows).unsqueeze(1).add(norms.unsqueeze(0), Scalars.One)
                          - Scalars.Of(2) * x.narrow(0, start, rows).matmul(columns);  // [b, n]
            squared.clamp_min_(Scalars.Of(0));
            var self = arange(Scalars.Of(start), Scalars.Of(start + rows), Scalars.Of(1), ScalarType.Int64).unsqueeze(1);
            squared.scatter_(1, self, full(rows, 1, Scalars.Of(double.PositiveInfinity), ScalarType.Float64));
            var nearest = squared.topk(k, dim: 1, largest: false, sorted: false).Item2;
            var indexArray = nearest.contiguous().data<long>().ToArray();
            for (int t = 0; t < rows * k; t++) indices[start * k + t] = (int)indexArray[t];
        }
        Parallel.For(0, n, i =>
        {
            var row = new (double Distance, int Index)[k];
            for (int t = 0; t < k; t++)
            {
                int j = indices[i * k + t];
                double sum = 0;
                for (int c = 0; c < features; c++)
                {
                    double difference = values[(long)i * features + c] - values[(long)j * features + c];
                    sum += difference * difference;
                }
                row[t] = (Math.Sqrt(sum), j);
            }
            Array.Sort(row);
            for (int t = 0; t < k; t++) (distances[i * k + t], indices[i * k + t]) = row[t];
        });
        return (indices, distances);
    }

    /// <summary>Shape, dtype, size and finiteness checks shared by the embeddings.</summary>
    public static void Validate(string method, Tensor data, string name)
    {
        ArgumentNullException.ThrowIfNull(data, name);
        TensorArguments.RequireMatrix(method, name, data);
        if (data.shape[0] < 2)
            throw new ArgumentException($"{method}: {name} needs at least 2 rows to embed, got {TensorArguments.Shape(data)}.", name);
        if (data.shape[0] > int.MaxValue / 128)
            throw new ArgumentException($"{method}: {name} has too many rows for an exact embedding, got {TensorArguments.Shape(data)}.", name);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var finite = data.detach().isfinite();
        if (!finite.all().item<bool>())
        {
            long first = finite.logical_not().flatten().nonzero()[0, 0].item<long>();
            throw new ArgumentException(
                $"{method}: {name} must be finite, got a non-finite value at row {first / data.shape[1]}, column {first % data.shape[1]}.", name);
        }
    }
}
