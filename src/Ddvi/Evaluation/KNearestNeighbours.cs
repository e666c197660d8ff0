using Ddvi.Runtime;
using Ddvi.Geometry;
using static TorchSharp.torch;

namespace Ddvi.Evaluation;

/// <summary>
/// k-nearest-neighbour classification of latents, the KNN accuracy of the paper's latent metrics (arXiv:2401.02739; the
/// authors' release): a test latent gets the majority label among its k nearest training latents under Euclidean
/// distance,
/// and the accuracy is the fraction of test latents whose prediction equals their label.
/// </summary>
/// <remarks>
/// A vote tie goes to the smallest label. Training points at exactly the same distance across the k-th
/// place are chosen by the search (unspecified order), as in any KNN without an index tie rule.
/// Two exact searches give the same neighbours: for 2-D latents (the paper's) a bucket grid on the
/// host (<see cref="NeighbourSearch.Grid"/>), which visits a few dozen training points per query; otherwise the full
/// distance matrix on the inputs' device (<see cref="NeighbourSearch.DistanceMatrix"/>), <c>blockRows</c> test rows at a
/// time, so memory is about <c>blockRows · N</c> distances (256 · 60,000 float32 ≈ 60 MB) and cost O(M · N · d).
/// </remarks>
public static class KNearestNeighbours
{
    /// <summary>How the neighbours are found; both are exact.</summary>
    public enum NeighbourSearch
    {
        /// <summary>The grid for 2-D latents, the distance matrix otherwise.</summary>
        Auto,
        /// <summary>A bucket grid over the training latents, on the host; 2-D only.</summary>
        Grid,
        /// <summary>Blocks of the full test × train distance matrix, on the inputs' device.</summary>
        DistanceMatrix,
    }

    public const int DefaultK = 20;
    public const int DefaultBlockRows = 256;

    const string Metric = "KNN";

    /// <summary>Predicted label of every test latent → <c>[M]</c> int64 on the inputs' device.</summary>
    /// <param name="trainLatents"><c>[N, d]</c> floating point.</param>
    /// <param name="trainLabels"><c>[N]</c> integer labels in [0, <paramref name="classCount"/>).</param>
    /// <param name="testLatents"><c>[M, d]</c>, same device and dtype as <paramref name="trainLatents"/>.</param>
    /// <param name="classCount">Number of classes C.</param>
    /// <param name="k">Neighbours per vote, 1 ≤ k ≤ N.</param>
    /// <param name="blockRows">Test rows per block of the distance-matrix search.</param>
    /// <param name="search">The search to use.</param>
    public static Tensor Predict(Tensor trainLatents, Tensor trainLabels, Tensor testLatents, int classCount,
        int k = DefaultK, int blockRows = DefaultBlockRows, NeighbourSearch search = NeighbourSearch.Auto)
    {
        Validate(trainLatents, trainLabels, testLatents, classCount, k, blockRows);
        bool planar = trainLatents.shape[1] == 2;
        if (search == NeighbourSearch.Grid && !planar)
            throw new ArgumentException($"{Metric}: the grid search needs 2-D latents, got {trainLatents.shape[1]} dimensions.", nameof(search));
        if (search == NeighbourSearch.Grid || (search == NeighbourSearch.Auto && planar))
            return PredictOnGrid(trainLatents, trainLabels, testLatents, classCount, k);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();

        long testCount = testLatents.shape[0];
        var device = trainLatents.device;
        var trainColumns = trainLatents.detach().t().contiguous(); // [d, N]
        var labels = trainLabels.to(int64);                        // [N]
        // score = votes · C + (C − 1 − c) is unique per class, so argmax picks the most votes and, among equal
        // votes, the smallest label whatever argmax does with equal maxima.
        var smallerLabelBonus = arange(Scalars.Of(classCount - 1), Scalars.Of(-1), Scalars.Of(-1), int64, device); // [C]
        var oneVote = ones(1, 1, int64, device).expand(Math.Min(blockRows, testCount), k);

        var predictions = new List<Tensor>();
        for (long start = 0; start < testCount; start += blockRows)
        {
            using var blockScope = NewDisposeScope();
            long rows = Math.Min(blockRows, testCount - start);
            var squaredDistance = SquaredDistances(testLatents.detach().narrow(0, start, rows), trainColumns); // [b, N]
            var nearest = squaredDistance.topk(k, dim: 1, largest: false, sorted: false).Item2;                  // [b, k]
            var neighbourLabels = labels.index_select(0, nearest.flatten()).view(rows, k);                       // [b, k]
            var votes = zeros(rows, classCount, int64, device)
                .scatter_add_(1, neighbourLabels, oneVote.narrow(0, 0, rows));                                      // [b, C]
            predictions.Add((votes * Scalars.Of(classCount)).add(smallerLabelBonus, Scalars.One).argmax(1).MoveToOuterDisposeScope());
        }
        return (predictions.Count == 1 ? predictions[0] : cat(predictions, 0)).MoveToOuterDisposeScope();
    }

    /// <summary>Fraction of test latents whose KNN prediction equals their label, in [0, 1].</summary>
    /// <param name="trainLatents"><c>[N, d]</c> floating point.</param>
    /// <param name="trainLabels"><c>[N]</c> integer labels in [0, <paramref name="classCount"/>).</param>
    /// <param name="testLatents"><c>[M, d]</c>, same device and dtype as <paramref name="trainLatents"/>.</param>
    /// <param name="testLabels"><c>[M]</c> integer labels.</param>
    /// <param name="classCount">Number of classes C.</param>
    /// <param name="k">Neighbours per vote, 1 ≤ k ≤ N.</param>
    /// <param name="blockRows">Test rows per block of the distance-matrix search.</param>
    /// <param name="search">The search to use.</param>
    public static double Accuracy(Tensor trainLatents, Tensor trainLabels, Tensor testLatents, Tensor testLabels,
        int classCount, int k = DefaultK, int blockRows = DefaultBlockRows, NeighbourSearch search = NeighbourSearch.Auto)
    {
        TensorArguments.RequireMatrix(Metric, nameof(testLatents), testLatents);
        TensorArguments.RequireLabels(Metric, nameof(testLabels), testLabels, testLatents.shape[0]);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var predicted = Predict(trainLatents, trainLabels, testLatents, classCount, k, blockRows, search);
        long correct = predicted.eq(testLabels.to(int64, predicted.device)).sum().item<long>();
        return correct / (double)testLatents.shape[0];
    }

    static Tensor PredictOnGrid(Tensor trainLatents, Tensor trainLabels, Tensor testLatents, int classCount, int k)
    {
        var (trainX, trainY) = PlanarNeighbourGrid.Coordinates(trainLatents);
        var (testX, testY) = PlanarNeighbourGrid.Coordinates(testLatents);
        long[] labels;
        using (NewDisposeScope()) labels = trainLabels.detach().to(int64).cpu().data<long>().ToArray();
        var grid = new PlanarNeighbourGrid(trainX, trainY);
        var predictions = new long[testX.Length];
        Parallel.For(0, (testX.Length + GridQueriesPerTask - 1) / GridQueriesPerTask,
            () => (Indices: new int[k], Distances: new double[k], Votes: new int[classCount]),
            (task, _, scratch) =>
            {
                int end = Math.Min(testX.Length, (task + 1) * GridQueriesPerTask);
                for (int q = task * GridQueriesPerTask; q < end; q++)
                {
                    grid.Nearest(testX[q], testY[q], scratch.Indices, scratch.Distances);
                    Array.Clear(scratch.Votes);
                    foreach (int i in scratch.Indices) scratch.Votes[labels[i]]++;
                    // The first maximum: the most votes, and among equal votes the smallest label.
                    int best = 0;
                    for (int c = 1; c < classCount; c++)
                        if (scratch.Votes[c] > scratch.Votes[best]) best = c;
                    predictions[q] = best;
                }
                return scratch;
            },
            _ => { });
        return tensor(predictions, device: trainLatents.device);
    }

    const int GridQueriesPerTask = 512;

    /// <summary>‖q_i − c_j‖² for queries <c>[b, d]</c> and centres as columns <c>[d, N]</c> → <c>[b, N]</c>.</summary>
    static Tensor SquaredDistances(Tensor queries, Tensor centreColumns)
    {
        // Summing explicit squared differences one coordinate at a time keeps only [b, N] alive and avoids the
        // cancellation of ‖q‖² + ‖c‖² − 2 q·c, which could reorder near neighbours.
        var total = zeros(queries.shape[0], centreColumns.shape[1], queries.dtype, queries.device);
        for (long j = 0; j < queries.shape[1]; j++)
        {
            using var difference = queries.narrow(1, j, 1) - centreColumns.narrow(0, j, 1); // [b, N]
            total.addcmul_(difference, difference, Scalars.Of(1));
        }
        return total;
    }

    static void Validate(Tensor trainLatents, Tensor trainLabels, Tensor testLatents, int classCount, int k, int blockRows)
    {
        TensorArguments.RequireMatrix(Metric, nameof(trainLatents), trainLatents);
        TensorArguments.RequireMatrix(Metric, nameof(testLatents), testLatents);
        TensorArguments.RequireLabels(Metric, nameof(trainLabels), trainLabels, trainLatents.shape[0]);
        TensorArguments.RequireSameDeviceAndType(Metric, nameof(trainLatents), trainLatents, nameof(testLatents), testLatents);
        if (testLatents.shape[1] != trainLatents.shape[1])
            throw new ArgumentException(
                $"{Metric}: test latents have {testLatents.shape[1]} dimensions but train latents have {trainLatents.shape[1]}.",
                nameof(testLatents));
        TensorArguments.RequirePositive(Metric, nameof(classCount), classCount);
        TensorArguments.RequirePositive(Metric, nameof(blockRows), blockRows);
        if (k < 1 || k > trainLatents.shape[0])
            throw new ArgumentOutOfRangeException(nameof(k), k,
                $"{Metric}: k must be between 1 and the number of training points ({trainLatents.shape[0]}).");

        // One host read for the whole call: a label outside [0, C) would be silently dropped or crash scatter_add_.
        using var scope = NewDisposeScope();
        long min = trainLabels.min().to(int64).item<long>();
        long max = trainLabels.max().to(int64).item<long>();
        if (min < 0 || max >= classCount)
            throw new ArgumentException(
                $"{Metric}: train labels must lie in [0, {classCount}) for classCount = {classCount}, got range [{min}, {max}].",
                nameof(trainLabels));
    }
}
