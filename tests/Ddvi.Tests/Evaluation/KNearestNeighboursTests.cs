using Ddvi.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Evaluation;

public class KNearestNeighboursTests
{
    /// <summary>n points per class around (10c, −5c) with standard deviation 0.1, labels c.</summary>
    static (Tensor Points, Tensor Labels) Clusters(int classes, int perClass, Generator generator)
    {
        var labels = arange(classes, int64).repeat_interleave(perClass);                                  // [n]
        var centres = stack([labels.to(float32) * 10, labels.to(float32) * -5], 1);                         // [n, 2]
        return (centres + 0.1f * randn(labels.shape[0], 2, float32, generator: generator), labels);
    }

    [Fact]
    public void WellSeparatedClustersAreClassifiedPerfectly()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(1);
        var (train, trainLabels) = Clusters(5, 100, generator);
        var (test, testLabels) = Clusters(5, 30, generator);
        Assert.Equal(1.0, KNearestNeighbours.Accuracy(train, trainLabels, test, testLabels, classCount: 5));
        Assert.Equal(testLabels.data<long>().ToArray(), KNearestNeighbours.Predict(train, trainLabels, test, 5).data<long>().ToArray());
    }

    [Fact]
    public void LabelsUnrelatedToPositionGiveChanceAccuracy()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(2);
        var train = rand(3000, 2, generator: generator);
        var trainLabels = randint(10, [3000], generator: generator);
        var test = rand(2000, 2, generator: generator);
        var testLabels = randint(10, [2000], generator: generator);
        double accuracy = KNearestNeighbours.Accuracy(train, trainLabels, test, testLabels, classCount: 10);
        // Chance is 0.1; the binomial standard deviation over 2000 test points is about 0.007.
        Assert.InRange(accuracy, 0.06, 0.14);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(7)]
    public void MatchesBruteForceIncludingVoteTies(int k)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(3 + (ulong)k);
        const int classes = 4;
        var train = randn(60, 3, float64, generator: generator);
        var trainLabels = randint(classes, [60], generator: generator);
        var test = randn(40, 3, float64, generator: generator);

        long[] predicted = KNearestNeighbours.Predict(train, trainLabels, test, classes, k, blockRows: 16).data<long>().ToArray();

        double[] trainValues = train.data<double>().ToArray();
        long[] labels = trainLabels.data<long>().ToArray();
        double[] testValues = test.data<double>().ToArray();
        int ties = 0;
        for (int i = 0; i < 40; i++)
        {
            var nearest = Enumerable.Range(0, 60)
                .OrderBy(j => Enumerable.Range(0, 3).Sum(c => Math.Pow(testValues[3 * i + c] - trainValues[3 * j + c], 2)))
                .Take(k);
            var votes = new int[classes];
            foreach (int j in nearest) votes[labels[j]]++;
            int best = votes.Max();
            if (votes.Count(v => v == best) > 1) ties++;
            Assert.Equal(Array.IndexOf(votes, best), predicted[i]); // IndexOf: the smallest label among the most votes
        }
        if (k == 4) Assert.True(ties > 0, "k = 4 with 4 classes should produce at least one tied vote to exercise the tie rule.");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(20)]
    public void GridSearchFindsTheSameNeighboursAsTheDistanceMatrix(int k)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(6);
        // Latents as a trained model gives them: dense thin arms, a broad cloud, and far outliers; queries also outside
        // the training points' bounding box.
        var angle = rand(3000, generator: generator) * (2 * Math.PI);
        var radius = 1 + 0.02f * randn(3000, generator: generator);
        var arms = stack([radius * angle.cos(), radius * angle.sin()], 1);
        var cloud = 0.3f * randn(1500, 2, generator: generator);
        var outliers = 40 * randn(20, 2, generator: generator);
        var train = cat([arms, cloud, outliers], 0);
        var trainLabels = randint(10, [train.shape[0]], generator: generator);
        var test = cat([1.2f * randn(800, 2, generator: generator), 100 * randn(50, 2, generator: generator)], 0);

        var grid = KNearestNeighbours.Predict(train, trainLabels, test, 10, k, search: KNearestNeighbours.NeighbourSearch.Grid);
        var matrix = KNearestNeighbours.Predict(train, trainLabels, test, 10, k, search: KNearestNeighbours.NeighbourSearch.DistanceMatrix);
        Assert.Equal(matrix.data<long>().ToArray(), grid.data<long>().ToArray());
        Assert.Equal(grid.data<long>().ToArray(), KNearestNeighbours.Predict(train, trainLabels, test, 10, k).data<long>().ToArray());
    }

    [Fact]
    public void GridSearchHandlesDegenerateLayouts()
    {
        using var scope = NewDisposeScope();
        // All training points on one vertical line, several at the same place, and fewer points than cells.
        var train = tensor(new float[] { 0, 0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 3 }).view(6, 2);
        var trainLabels = tensor(new long[] { 0, 0, 1, 2, 3, 3 });
        var test = tensor(new float[] { 5, 3, -1, 0.9f, 0, -7 }).view(3, 2);
        var grid = KNearestNeighbours.Predict(train, trainLabels, test, 4, k: 2, search: KNearestNeighbours.NeighbourSearch.Grid);
        Assert.Equal(new long[] { 3, 0, 0 }, grid.data<long>().ToArray());
        var error = Assert.Throws<ArgumentException>(() =>
            KNearestNeighbours.Predict(randn(5, 3), zeros(5, int64), randn(2, 3), 2, k: 1, search: KNearestNeighbours.NeighbourSearch.Grid));
        Assert.Contains("2-D", error.Message);
    }

    [Fact]
    public void TiedVoteGoesToTheSmallestLabel()
    {
        using var scope = NewDisposeScope();
        var train = tensor(new float[] { 1, 0, 0, 2, 5, 5 }).view(3, 2);
        var trainLabels = tensor(new long[] { 3, 1, 0 });
        var test = zeros(1, 2);
        Assert.Equal(1L, KNearestNeighbours.Predict(train, trainLabels, test, classCount: 4, k: 2).item<long>());
        Assert.Equal(3L, KNearestNeighbours.Predict(train, trainLabels, test, classCount: 4, k: 1).item<long>());
        Assert.Equal(0L, KNearestNeighbours.Predict(train, trainLabels, test, classCount: 4, k: 3).item<long>());
    }

    [Fact]
    public void BlockSizeDoesNotChangePredictions()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(4);
        var train = randn(500, 2, generator: generator);
        var trainLabels = randint(10, [500], generator: generator);
        var test = randn(123, 2, generator: generator);
        long[] reference = KNearestNeighbours.Predict(train, trainLabels, test, 10, blockRows: 1000).data<long>().ToArray();
        foreach (int blockRows in new[] { 1, 7, 50 })
            Assert.Equal(reference, KNearestNeighbours.Predict(train, trainLabels, test, 10, blockRows: blockRows).data<long>().ToArray());
    }

    [Fact]
    public void LeavesNoTensorsBehindAndNeedsNoGradient()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        var train = randn(200, 2, generator: generator).requires_grad_();
        var trainLabels = randint(3, [200], generator: generator);
        var test = randn(50, 2, generator: generator);
        using var predicted = KNearestNeighbours.Predict(train, trainLabels, test, 3);
        Assert.False(predicted.requires_grad);
        Assert.Equal(int64, predicted.dtype);

        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        KNearestNeighbours.Accuracy(train, trainLabels, test, randint(3, [50], generator: generator), 3, blockRows: 8);
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.Equal(before + 1, after); // only the label tensor this test created
    }

    [Fact]
    public void BadInputsGiveClearErrors()
    {
        using var scope = NewDisposeScope();
        var train = randn(10, 2);
        var labels = zeros(10, int64);
        var test = randn(4, 2);
        var testLabels = zeros(4, int64);

        Assert.Contains("k must be between 1 and the number of training points (10)",
            Assert.Throws<ArgumentOutOfRangeException>(() => KNearestNeighbours.Predict(train, labels, test, 2, k: 11)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => KNearestNeighbours.Predict(train, labels, test, 2, k: 0));
        Assert.Contains("[10] label vector",
            Assert.Throws<ArgumentException>(() => KNearestNeighbours.Predict(train, zeros(9, int64), test, 2, k: 3)).Message);
        Assert.Contains("[4] label vector",
            Assert.Throws<ArgumentException>(() => KNearestNeighbours.Accuracy(train, labels, test, zeros(5, int64), 2, k: 3)).Message);
        Assert.Contains("non-empty",
            Assert.Throws<ArgumentException>(() => KNearestNeighbours.Predict(train, labels, zeros(0, 2), 2, k: 3)).Message);
        Assert.Contains("non-empty",
            Assert.Throws<ArgumentException>(() => KNearestNeighbours.Predict(zeros(0, 2), zeros(0, int64), test, 2, k: 1)).Message);
        Assert.Contains("3 dimensions",
            Assert.Throws<ArgumentException>(() => KNearestNeighbours.Predict(train, labels, randn(4, 3), 2, k: 3)).Message);
        Assert.Contains("integer class labels",
            Assert.Throws<ArgumentException>(() => KNearestNeighbours.Predict(train, zeros(10), test, 2, k: 3)).Message);
        Assert.Contains("lie in [0, 2) for classCount = 2, got range [5, 5]",
            Assert.Throws<ArgumentException>(() => KNearestNeighbours.Predict(train, full(10, 5L, int64), test, 2, k: 3)).Message);
        Assert.Contains("convert both to one dtype",
            Assert.Throws<ArgumentException>(() => KNearestNeighbours.Predict(train, labels, test.to(float64), 2, k: 3)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => KNearestNeighbours.Predict(train, labels, test, 0, k: 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => KNearestNeighbours.Predict(train, labels, test, 2, k: 3, blockRows: 0));
        Assert.Equal(1.0, KNearestNeighbours.Accuracy(train, labels, test, testLabels, 2, k: 10));
    }
}
