using static TorchSharp.torch;

namespace Ddvi.Evaluation;

/// <summary>
/// k-nearest-neighbour classification of latents, the release's KNN accuracy (REFERENCE.md §7):
/// a test latent gets the majority label among its k nearest training latents under Euclidean distance,
/// and the accuracy is the fraction of test latents whose prediction equals their label.
/// </summary>
/// <remarks>
/// A vote tie goes to the smallest label. Training points at exactly the same distance across the k-th
/// place are chosen by <c>topk</c> (unspecified order), as in any KNN without an index tie rule.
/// Test rows are processed <c>blockRows</c> at a time, so memory is about <c>blockRows · N</c> distances
/// (256 · 60,000 float32 ≈ 60 MB); the block size does not change the result. Runs under <c>no_grad</c> on
/// the inputs' device. Cost is O(M · N · d), fine for the 2-D latents the metric is used on.
/// </remarks>
public static class KNearestNeighbours
{
    public const int DefaultK = 20;
    public const int DefaultBlockRows = 256;

    const string Metric = "KNN";

    /// <summary>Predicted label of every test latent → <c>[M]</c> int64 on the inputs' device.</summary>
    /// <param name="trainLatents"><c>[N, d]</c> floating point.</param>
    /// <param name="trainLabels"><c>[N]</c> integer labels in [0, <paramref name="classCount"/>).</param>
    /// <param name="testLatents"><c>[M, d]</c>, same device and dtype as <paramref name="trainLatents"/>.</param>
    /// <param name="classCount">Number of classes C.</param>
    /// <param name="k">Neighbours per vote, 1 ≤ k ≤ N.</param>
    /// <param name="blockRows">Test rows per block.</param>
    public static Tensor Predict(Tensor trainLatents, Tensor trainLabels, Tensor testLatents, int classCount,
        int k = DefaultK, int blockRows = DefaultBlockRows)
    {
        Validate(trainLatents, trainLabels, testLatents, classCount, k, blockRows);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();

        long testCount = testLatents.shape[0];
        var device = trainLatents.device;
        var trainColumns = trainLatents.detach().t().contiguous(); // [d, N]
        var labels = trainLabels.to(int64);                        // [N]
        // score = votes · C + (C − 1 − c) is unique per class, so argmax picks the most votes and, among equal
        // votes, the smallest label whatever argmax does with equal maxima.
        var smallerLabelBonus = arange(classCount - 1, -1, -1, int64, device); // [C]
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
            predictions.Add((votes * classCount + smallerLabelBonus).argmax(1).MoveToOuterDisposeScope());
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
    /// <param name="blockRows">Test rows per block.</param>
    public static double Accuracy(Tensor trainLatents, Tensor trainLabels, Tensor testLatents, Tensor testLabels,
        int classCount, int k = DefaultK, int blockRows = DefaultBlockRows)
    {
        TensorArguments.RequireMatrix(Metric, nameof(testLatents), testLatents);
        TensorArguments.RequireLabels(Metric, nameof(testLabels), testLabels, testLatents.shape[0]);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var predicted = Predict(trainLatents, trainLabels, testLatents, classCount, k, blockRows);
        long correct = predicted.eq(testLabels.to(int64, predicted.device)).sum().item<long>();
        return correct / (double)testLatents.shape[0];
    }

    /// <summary>‖q_i − c_j‖² for queries <c>[b, d]</c> and centres as columns <c>[d, N]</c> → <c>[b, N]</c>.</summary>
    static Tensor SquaredDistances(Tensor queries, Tensor centreColumns)
    {
        // Summing explicit squared differences one coordinate at a time keeps only [b, N] alive and avoids the
        // cancellation of ‖q‖² + ‖c‖² − 2 q·c, which could reorder near neighbours.
        var total = zeros(queries.shape[0], centreColumns.shape[1], queries.dtype, queries.device);
        for (long j = 0; j < queries.shape[1]; j++)
        {
            using var difference = queries.narrow(1, j, 1) - centreColumns.narrow(0, j, 1); // [b, N]
            total.addcmul_(difference, difference, 1);
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
