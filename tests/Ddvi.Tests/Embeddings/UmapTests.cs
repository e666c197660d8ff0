using Ddvi.Embeddings;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Embeddings;

public class UmapTests
{
    [Fact]
    public void SigmaAndRhoSolveTheSmoothKnnEquation()
    {
        using var scope = NewDisposeScope();
        var (data, _) = EmbeddingTestData.Clusters(3, 60, 10, 1);
        var result = Umap.Embed(data, new UmapOptions { Epochs = 5 });
        double[] x = data.to(float64).data<double>().ToArray();
        const int n = 180, d = 10, others = 14;
        for (int i = 0; i < n; i++)
        {
            // The 14 nearest other points by brute force.
            var distances = Enumerable.Range(0, n).Where(j => j != i)
                .Select(j => Math.Sqrt(Enumerable.Range(0, d).Sum(c => Math.Pow(x[i * d + c] - x[j * d + c], 2))))
                .Order().Take(others).ToArray();
            Assert.Equal(distances[0], result.Rho[i], 5);
            double sum = distances.Sum(dist => Math.Exp(-Math.Max(0, dist - result.Rho[i]) / result.Sigma[i]));
            Assert.Equal(Math.Log2(15), sum, 3);
        }
    }

    [Fact]
    public void RhoSkipsDuplicatedPoints()
    {
        using var scope = NewDisposeScope();
        // Every point twice, far from the origin so that ‖x‖² + ‖y‖² − 2x·y alone would not cancel to 0 exactly.
        var points = 1000 + randn(40, 30, float64, generator: new Generator(9));
        var data = cat([points, points], 0);
        var (neighbours, distances) = ExactNeighbours.Compute(data, 5);
        for (int i = 0; i < 80; i++)
        {
            Assert.Equal((i + 40) % 80, neighbours[i * 5]); // the twin comes first, at distance exactly 0
            Assert.Equal(0.0, distances[i * 5]);
        }
        var result = Umap.Embed(data, new UmapOptions { Neighbours = 6, Epochs = 5 });
        for (int i = 0; i < 80; i++) Assert.Equal(distances[i * 5 + 1], result.Rho[i], 12); // the nearest other place
    }

    [Fact]
    public void GraphWeightsAreTheFuzzyUnionOfTheDirectedStrengths()
    {
        using var scope = NewDisposeScope();
        var (data, _) = EmbeddingTestData.Clusters(4, 40, 8, 2);
        const int n = 160, others = 9;
        var (neighbours, distances) = ExactNeighbours.Compute(data, others);
        var (sigma, rho) = Umap.SmoothKnnDistances(distances, n, others, others + 1);
        var directed = Umap.MembershipStrengths(distances, n, others, sigma, rho);
        var strength = new Dictionary<(int, int), double>();
        for (int i = 0; i < n; i++)
            for (int t = 0; t < others; t++) strength[(i, neighbours[i * others + t])] = directed[i * others + t];

        var graph = Umap.FuzzyUnion(neighbours, directed, n, others);
        var weights = graph.ToDictionary(e => (e.Head, e.Tail), e => e.Weight);
        Assert.Equal(graph.Count, weights.Count); // no pair twice in one direction
        foreach (var edge in graph)
        {
            double forward = strength.GetValueOrDefault((edge.Head, edge.Tail));
            double backward = strength.GetValueOrDefault((edge.Tail, edge.Head));
            Assert.Equal(forward + backward - forward * backward, edge.Weight, 14);
            Assert.Equal(edge.Weight, weights[(edge.Tail, edge.Head)]);
            Assert.InRange(edge.Weight, 1e-300, 1.0);
        }
        // Every directed neighbour pair appears, and each point's nearest neighbour has strength 1.
        Assert.All(strength.Keys, key => Assert.True(weights.ContainsKey(key)));
        for (int i = 0; i < n; i++) Assert.Equal(1.0, directed[i * others]);
    }

    [Theory]
    [InlineData(0.1, 1.577, 0.8951)] // umap-learn's published values for its default min_dist
    [InlineData(0.5, 0.5830, 1.3342)] // the paper's min_dist: the least-squares fit derived here
    public void CurveParametersMatchUmapLearn(double minDist, double expectedA, double expectedB)
    {
        var (a, b) = Umap.FitCurve(minDist, 1.0);
        Assert.Equal(expectedA, a, 3);
        Assert.Equal(expectedB, b, 3);

        // The fit is a least-squares minimum: no nearby (a, b) fits the target curve better.
        double Loss(double aa, double bb) => Enumerable.Range(0, 300).Select(t => 3.0 * t / 299).Sum(x =>
            Math.Pow(1 / (1 + aa * Math.Pow(x, 2 * bb)) - (x < minDist ? 1 : Math.Exp(-(x - minDist))), 2));
        double best = Loss(a, b);
        foreach (double da in new[] { -1e-3, 0, 1e-3 })
            foreach (double db in new[] { -1e-3, 0, 1e-3 })
                Assert.True(Loss(a + da, b + db) >= best - 1e-15);
    }

    [Fact]
    public void SeparatedClustersStaySeparated()
    {
        using var scope = NewDisposeScope();
        var (data, labels) = EmbeddingTestData.Clusters(4, 80, 50, 3);
        var lines = new List<string>();
        var result = Umap.Embed(data, new UmapOptions { MinDist = 0.5 }, lines.Add);
        Assert.False(result.SpectralStart); // the 15-neighbour graph of far-apart clusters has one component per cluster
        Assert.Equal(new long[] { 320, 2 }, result.Embedding.shape);
        Assert.Equal(ScalarType.Float32, result.Embedding.dtype);
        Assert.Contains(lines, l => l.Contains("epoch 500/500"));

        float[] embedding = result.Embedding.data<float>().ToArray();
        Assert.True(EmbeddingTestData.NeighbourAgreement(embedding, labels, 10) > 0.98);
        Assert.True(EmbeddingTestData.SeparationRatio(embedding, labels) > 5);
    }

    [Fact]
    public void ClustersJoinedByBridgesStartSpectrallyAndStaySeparated()
    {
        using var scope = NewDisposeScope();
        var (clusters, labels) = EmbeddingTestData.Clusters(4, 80, 50, 7);
        // Nine points on each segment between consecutive centres 20·e_c and 20·e_{c+1} connect the neighbour graph.
        var generator = new Generator(8);
        var bridges = new List<Tensor>();
        for (int c = 0; c < 3; c++)
            for (int t = 1; t <= 9; t++)
                bridges.Add(eye(50)[c] * (20 * (1 - t / 10.0)) + eye(50)[c + 1] * (20 * t / 10.0) + randn(50, generator: generator));
        var data = cat([clusters, stack(bridges)], 0);

        var result = Umap.Embed(data, new UmapOptions { MinDist = 0.5, Epochs = 300 });
        Assert.True(result.SpectralStart);
        float[] embedding = result.Embedding.data<float>().ToArray()[..(2 * labels.Length)]; // the cluster points only
        Assert.True(EmbeddingTestData.NeighbourAgreement(embedding, labels, 10) > 0.95);
        Assert.True(EmbeddingTestData.SeparationRatio(embedding, labels) > 3);
    }

    [Fact]
    public void ConnectedGraphStartsSpectrallyAndDisconnectedOneRandomly()
    {
        using var scope = NewDisposeScope();
        // One Gaussian blob: a connected graph.
        var blob = randn(100, 5, generator: new Generator(4));
        Assert.True(Umap.Embed(blob, new UmapOptions { Epochs = 5 }).SpectralStart);

        // Two blobs 1000 apart with 5 neighbours: no edge between them.
        var (far, _) = EmbeddingTestData.Clusters(2, 50, 5, 5);
        var lines = new List<string>();
        var result = Umap.Embed(far * 50, new UmapOptions { Neighbours = 5, Epochs = 5 }, lines.Add);
        Assert.False(result.SpectralStart);
        Assert.Contains(lines, l => l.Contains("2 connected components") && l.Contains("random layout"));
    }

    [Fact]
    public void SameSeedGivesTheSameEmbedding()
    {
        using var scope = NewDisposeScope();
        var (data, _) = EmbeddingTestData.Clusters(3, 50, 10, 6);
        foreach (var initialisation in new[] { UmapInitialisation.Spectral, UmapInitialisation.Random })
        {
            var options = new UmapOptions { Initialisation = initialisation, Seed = 4, Epochs = 100 };
            Assert.Equal(Umap.Embed(data, options).Embedding.data<float>().ToArray(), Umap.Embed(data, options).Embedding.data<float>().ToArray());
            Assert.NotEqual(Umap.Embed(data, options).Embedding.data<float>().ToArray(),
                Umap.Embed(data, options with { Seed = 5 }).Embedding.data<float>().ToArray());
        }
    }

    [Fact]
    public void BadInputsSayWhatIsWrong()
    {
        using var scope = NewDisposeScope();
        var neighbours = Assert.Throws<ArgumentOutOfRangeException>(() => Umap.Embed(randn(10, 3), new UmapOptions()));
        Assert.Equal("Neighbours", neighbours.ParamName);
        Assert.Contains("[2, 10]", neighbours.Message);

        var withNan = randn(40, 3);
        withNan[3, 0] = tensor(float.PositiveInfinity);
        var nan = Assert.Throws<ArgumentException>(() => Umap.Embed(withNan));
        Assert.Equal("data", nan.ParamName);
        Assert.Contains("row 3, column 0", nan.Message);

        Assert.Equal("MinDist", Assert.Throws<ArgumentOutOfRangeException>(() => Umap.Embed(randn(40, 3), new UmapOptions { MinDist = 2 })).ParamName);
        Assert.Equal("Epochs", Assert.Throws<ArgumentOutOfRangeException>(() => Umap.Embed(randn(40, 3), new UmapOptions { Epochs = 0 })).ParamName);
        Assert.Equal("spread", Assert.Throws<ArgumentOutOfRangeException>(() => Umap.FitCurve(0.1, 0)).ParamName);
        Assert.Contains("at least 3 rows", Assert.Throws<ArgumentException>(() => Umap.Embed(randn(2, 3), new UmapOptions { Neighbours = 2 })).Message);
    }
}
