using Ddvi.Embeddings;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Embeddings;

public class TsneTests
{
    [Fact]
    public void ConditionalAffinitiesHaveTheRequestedPerplexity()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(1);
        var data = randn(300, 10, float64, generator: generator) * (1 + rand(300, 1, float64, generator: generator) * 3);
        const int k = 91;
        var (_, distances) = ExactNeighbours.Compute(data, k);
        foreach (double perplexity in new[] { 5.0, 30.0 })
        {
            var (p, beta) = Tsne.ConditionalAffinities(distances.Select(d => d * d).ToArray(), 300, k, perplexity);
            for (int i = 0; i < 300; i++)
            {
                var row = p.AsSpan(i * k, k).ToArray();
                Assert.Equal(1.0, row.Sum(), 10);
                double entropy = -row.Where(v => v > 0).Sum(v => v * Math.Log(v));
                Assert.Equal(Math.Log(perplexity), entropy, 4); // the bisection stops within 1e-5 of ln(perplexity)
                Assert.True(beta[i] > 0);
            }
        }
    }

    [Fact]
    public void AffinitiesOfFarApartPointsHaveThePerplexityAndDoNotDependOnTheDataScale()
    {
        // As the genotype PCs give: 1,000 dimensions of variance about 10, so squared distances near 20,000 whose spread
        // among a point's neighbours is small next to their size; exp(−β d²) underflows unless the nearest is subtracted.
        using var scope = NewDisposeScope();
        var generator = new Generator(2);
        var data = randn(300, 1000, float64, generator: generator) * Math.Sqrt(10) + randn(300, 1, float64, generator: generator) * 3;
        const int k = 91;
        var (_, distances) = ExactNeighbours.Compute(data, k);
        var squared = distances.Select(d => d * d).ToArray();
        var (p, beta) = Tsne.ConditionalAffinities(squared, 300, k, 30);
        foreach (double scale in new[] { 1.0 / 0.865, 30.0, 1.0 / 30 })
        {
            var (scaled, scaledBeta) = Tsne.ConditionalAffinities(squared.Select(d => d * scale * scale).ToArray(), 300, k, 30);
            for (int i = 0; i < 300; i++)
            {
                var row = scaled.AsSpan(i * k, k).ToArray();
                double entropy = -row.Where(v => v > 0).Sum(v => v * Math.Log(v));
                Assert.Equal(Math.Log(30), entropy, 1e-4);
                Assert.Equal(beta[i] / (scale * scale), scaledBeta[i], beta[i] / (scale * scale) * 1e-3);
                for (int j = 0; j < k; j++) Assert.Equal(p[i * k + j], row[j], 1e-5);
            }
        }
    }

    [Fact]
    public void BarnesHutGradientApproachesTheExactOneAsThetaShrinks()
    {
        using var scope = NewDisposeScope();
        var (data, _) = EmbeddingTestData.Clusters(4, 100, 20, 2);
        const int n = 400, k = 91;
        var (neighbours, distances) = ExactNeighbours.Compute(data, k);
        var (conditional, _) = Tsne.ConditionalAffinities(distances.Select(d => d * d).ToArray(), n, k, 30);
        var p = SparseAffinities.Symmetrise(neighbours, conditional, n, k);
        var random = new Random(3);
        var y = Enumerable.Range(0, 2 * n).Select(_ => 5 * (random.NextDouble() - 0.5)).ToArray();

        var exact = new double[2 * n];
        double exactZ = Tsne.Gradient(p, y, 1.0, -1, exact);
        double RelativeError(double theta, out double z)
        {
            var approximate = new double[2 * n];
            z = Tsne.Gradient(p, y, 1.0, theta, approximate);
            return Math.Sqrt(exact.Zip(approximate, (a, b) => (a - b) * (a - b)).Sum() / exact.Sum(a => a * a));
        }
        // θ = 0 never summarises a cell: the same sums in another order.
        Assert.True(RelativeError(0, out double z0) < 1e-10);
        Assert.Equal(exactZ, z0, exactZ * 1e-12);
        double small = RelativeError(0.1, out double zSmall), standard = RelativeError(0.5, out _);
        Assert.True(small < 2e-3, $"θ = 0.1: relative gradient error {small}");
        Assert.True(standard < 3e-2, $"θ = 0.5: relative gradient error {standard}");
        Assert.True(small < standard);
        Assert.Equal(exactZ, zSmall, exactZ * 1e-3);
    }

    [Fact]
    public void BarnesHutHandlesDuplicatedPoints()
    {
        using var scope = NewDisposeScope();
        // Twenty copies of each of three points: the tree stops splitting at its depth limit instead of recursing forever.
        var y = Enumerable.Range(0, 60).SelectMany(i => new[] { (double)(i % 3), 0.5 * (i % 3) }).ToArray();
        var p = new SparseAffinities(new int[61], [], []);
        var exact = new double[120];
        var approximate = new double[120];
        double z = Tsne.Gradient(p, y, 1, -1, exact);
        Assert.Equal(z, Tsne.Gradient(p, y, 1, 0.5, approximate), z * 1e-12);
        for (int a = 0; a < 120; a++) Assert.Equal(exact[a], approximate[a], 1e-12);
    }

    [Fact]
    public void SeparatedClustersStaySeparatedAndKlFallsAfterExaggeration()
    {
        using var scope = NewDisposeScope();
        var (data, labels) = EmbeddingTestData.Clusters(4, 80, 50, 4);
        var lines = new List<string>();
        var result = Tsne.Embed(data, new TsneOptions(), lines.Add);

        Assert.Equal(new long[] { 320, 2 }, result.Embedding.shape);
        Assert.Equal(ScalarType.Float32, result.Embedding.dtype);
        Assert.Equal(50, result.LearningRate); // auto: max(320 / 12 / 4, 50)
        Assert.Equal(1000, result.Iterations);
        Assert.Equal(Enumerable.Range(1, 20).Select(t => 50 * t), result.KlHistory.Select(c => c.Iteration));
        double atEndOfExaggeration = result.KlHistory.Single(c => c.Iteration == 250).KlDivergence;
        foreach (var checkpoint in result.KlHistory.Where(c => c.Iteration > 250))
            Assert.True(checkpoint.KlDivergence <= atEndOfExaggeration, $"KL {checkpoint.KlDivergence} at {checkpoint.Iteration} > {atEndOfExaggeration} at 250");
        Assert.True(result.KlDivergence < atEndOfExaggeration);
        Assert.True(result.KlDivergence > 0);
        Assert.Contains(lines, l => l.Contains("iteration 1000"));

        float[] embedding = result.Embedding.data<float>().ToArray();
        Assert.True(EmbeddingTestData.NeighbourAgreement(embedding, labels, 10) > 0.98);
        Assert.True(EmbeddingTestData.SeparationRatio(embedding, labels) > 5);
    }

    [Fact]
    public void ExactMethodAlsoSeparatesClusters()
    {
        using var scope = NewDisposeScope();
        var (data, labels) = EmbeddingTestData.Clusters(3, 40, 20, 5);
        var result = Tsne.Embed(data, new TsneOptions { Method = TsneMethod.Exact, Perplexity = 10, Iterations = 500 });
        float[] embedding = result.Embedding.data<float>().ToArray();
        Assert.True(EmbeddingTestData.NeighbourAgreement(embedding, labels, 5) > 0.98);
        Assert.True(EmbeddingTestData.SeparationRatio(embedding, labels) > 3);
        Assert.True(result.KlHistory[^1].KlDivergence < result.KlHistory.Single(c => c.Iteration == 250).KlDivergence);
    }

    [Fact]
    public void SameSeedGivesTheSameEmbedding()
    {
        using var scope = NewDisposeScope();
        var (data, _) = EmbeddingTestData.Clusters(3, 50, 10, 6);
        foreach (var initialisation in new[] { TsneInitialisation.Random, TsneInitialisation.Pca })
        {
            var options = new TsneOptions { Initialisation = initialisation, Seed = 9, Iterations = 300 };
            var first = Tsne.Embed(data, options).Embedding.data<float>().ToArray();
            var second = Tsne.Embed(data, options with { MaxDegreeOfParallelism = 1 }).Embedding.data<float>().ToArray();
            Assert.Equal(first, second);
        }
        var other = Tsne.Embed(data, new TsneOptions { Initialisation = TsneInitialisation.Random, Seed = 10, Iterations = 300 });
        Assert.NotEqual(Tsne.Embed(data, new TsneOptions { Initialisation = TsneInitialisation.Random, Seed = 9, Iterations = 300 })
            .Embedding.data<float>().ToArray(), other.Embedding.data<float>().ToArray());
    }

    [Fact]
    public void BadInputsSayWhatIsWrong()
    {
        using var scope = NewDisposeScope();
        var perplexity = Assert.Throws<ArgumentOutOfRangeException>(() => Tsne.Embed(randn(20, 3), new TsneOptions()));
        Assert.Equal("Perplexity", perplexity.ParamName);
        Assert.Contains("(0, 19)", perplexity.Message);

        var withNan = randn(40, 3);
        withNan[7, 2] = tensor(float.NaN);
        var nan = Assert.Throws<ArgumentException>(() => Tsne.Embed(withNan, new TsneOptions { Perplexity = 5 }));
        Assert.Equal("data", nan.ParamName);
        Assert.Contains("row 7, column 2", nan.Message);

        Assert.Contains("[40]", Assert.Throws<ArgumentException>(() => Tsne.Embed(randn(40), new TsneOptions { Perplexity = 5 })).Message);
        Assert.Contains("floating point", Assert.Throws<ArgumentException>(() => Tsne.Embed(ones(40, 3, int32), new TsneOptions { Perplexity = 5 })).Message);
        Assert.Equal("ExaggerationIterations", Assert.Throws<ArgumentOutOfRangeException>(() =>
            Tsne.Embed(randn(40, 3), new TsneOptions { Perplexity = 5, Iterations = 100 })).ParamName);
        Assert.Equal("LearningRate", Assert.Throws<ArgumentOutOfRangeException>(() =>
            Tsne.Embed(randn(40, 3), new TsneOptions { Perplexity = 5, LearningRate = 0 })).ParamName);
        Assert.Equal("Theta", Assert.Throws<ArgumentOutOfRangeException>(() =>
            Tsne.Embed(randn(40, 3), new TsneOptions { Perplexity = 5, Theta = -0.1 })).ParamName);
    }
}
