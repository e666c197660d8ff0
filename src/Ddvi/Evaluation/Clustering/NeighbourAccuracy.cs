using static TorchSharp.torch;

namespace Ddvi.Evaluation.Clustering;

/// <summary>
/// KNN accuracy of latents against class labels in the two forms the 1000 Genomes experiment needs, both through
/// <see cref="KNearestNeighbours"/> (Euclidean distance, majority vote, a tie to the smallest label).
/// </summary>
/// <remarks>
/// <see cref="SameSet"/> is the authors' release's genomics score (arXiv:2401.02739; k = 20, 50, 100): the classifier is
/// fitted on all latents and scored on the same latents, so every point is among its own k nearest neighbours and votes
/// for its own label; the score is optimistic by design and only comparable with the same definition.
/// <see cref="HeldOut"/> is the honest variant: a seeded stratified split, fitted on the training part and scored on the
/// held-out part.
/// </remarks>
public static class NeighbourAccuracy
{
    const string Metric = "Neighbour accuracy";

    /// <summary>Accuracy of a KNN classifier fitted and scored on the same latents (a point is its own neighbour).</summary>
    /// <param name="latents"><c>[N, d]</c> floating point.</param>
    /// <param name="labels">Class label per latent, non-negative, length N.</param>
    /// <param name="k">Neighbours per vote, 1 ≤ k ≤ N.</param>
    public static double SameSet(Tensor latents, IReadOnlyList<int> labels, int k)
    {
        var labelArray = Labels(latents, labels);
        using var scope = NewDisposeScope();
        var labelVector = tensor(labelArray, device: latents.device);
        return KNearestNeighbours.Accuracy(latents, labelVector, latents, labelVector, labelArray.Max() + 1, k);
    }

    /// <summary>
    /// Accuracy on a held-out part of the latents of a KNN classifier fitted on the rest. The split is stratified: for
    /// each class, its points in a seeded random order, the first round(f · n_c) held out (at least one when the class
    /// has two or more points, never all of them).
    /// </summary>
    /// <param name="latents"><c>[N, d]</c> floating point.</param>
    /// <param name="labels">Class label per latent, non-negative, length N.</param>
    /// <param name="k">Neighbours per vote, 1 ≤ k ≤ the number of training points.</param>
    /// <param name="testFraction">Fraction f held out, in (0, 1).</param>
    /// <param name="seed">Seed of the split.</param>
    public static double HeldOut(Tensor latents, IReadOnlyList<int> labels, int k, double testFraction, int seed)
    {
        var labelArray = Labels(latents, labels);
        if (!(testFraction > 0 && testFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, $"{Metric}: testFraction must lie in (0, 1).");
        var (train, test) = StratifiedSplit(labelArray, testFraction, seed);
        if (test.Length == 0)
            throw new ArgumentException($"{Metric}: testFraction {testFraction} holds out no point of {labelArray.Length}; raise it.", nameof(testFraction));
        if (k < 1 || k > train.Length)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"{Metric}: k must be between 1 and the number of training points ({train.Length}).");

        using var scope = NewDisposeScope();
        var trainIndex = tensor(train.Select(i => (long)i).ToArray(), device: latents.device);
        var testIndex = tensor(test.Select(i => (long)i).ToArray(), device: latents.device);
        var all = tensor(labelArray, device: latents.device);
        return KNearestNeighbours.Accuracy(latents.index_select(0, trainIndex), all.index_select(0, trainIndex),
            latents.index_select(0, testIndex), all.index_select(0, testIndex), labelArray.Max() + 1, k);
    }

    /// <summary>Training and held-out row indices, each ascending.</summary>
    internal static (int[] Train, int[] Test) StratifiedSplit(int[] labels, double testFraction, int seed)
    {
        var random = new Random(seed);
        var train = new List<int>();
        var test = new List<int>();
        foreach (var group in Enumerable.Range(0, labels.Length).GroupBy(i => labels[i]).OrderBy(g => g.Key))
        {
            int[] members = group.ToArray();
            random.Shuffle(members);
            int held = (int)Math.Round(testFraction * members.Length, MidpointRounding.AwayFromZero);
            if (members.Length >= 2) held = Math.Clamp(held, 1, members.Length - 1);
            else held = 0;
            test.AddRange(members.Take(held));
            train.AddRange(members.Skip(held));
        }
        train.Sort();
        test.Sort();
        return (train.ToArray(), test.ToArray());
    }

    static int[] Labels(Tensor latents, IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(labels);
        TensorArguments.RequireMatrix(Metric, nameof(latents), latents);
        if (labels.Count != latents.shape[0])
            throw new ArgumentException($"{Metric}: labels has {labels.Count} entries but latents has {latents.shape[0]} rows.", nameof(labels));
        int negative = labels.ToList().FindIndex(l => l < 0);
        if (negative >= 0)
            throw new ArgumentException($"{Metric}: labels must be non-negative, got {labels[negative]} at index {negative}.", nameof(labels));
        return labels.ToArray();
    }
}
