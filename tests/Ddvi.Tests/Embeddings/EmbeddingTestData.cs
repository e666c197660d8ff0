using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Embeddings;

static class EmbeddingTestData
{
    /// <summary>
    /// <paramref name="perCluster"/> points around each of <paramref name="clusters"/> centres 20·e_c in
    /// <paramref name="dimensions"/>-D with unit noise: within-cluster distances ≈ √(2D), between ≈ √(800 + 2D).
    /// </summary>
    public static (Tensor Points, int[] Labels) Clusters(int clusters, int perCluster, int dimensions, ulong seed)
    {
        var generator = new Generator(seed);
        int[] labels = Enumerable.Range(0, clusters).SelectMany(c => Enumerable.Repeat(c, perCluster)).ToArray();
        var centres = eye(dimensions).narrow(0, 0, clusters) * 20;                                     // [C, D]
        var points = centres.index_select(0, tensor(labels.Select(l => (long)l).ToArray()))
                     + randn(labels.Length, dimensions, generator: generator);                          // [n, D]
        return (points, labels);
    }

    /// <summary>Fraction of points whose <paramref name="k"/> nearest other points in the embedding share their label.</summary>
    public static double NeighbourAgreement(float[] embedding, int[] labels, int k)
    {
        int n = labels.Length;
        long agree = 0;
        for (int i = 0; i < n; i++)
        {
            var nearest = Enumerable.Range(0, n).Where(j => j != i)
                .OrderBy(j => Math.Pow(embedding[2 * i] - embedding[2 * j], 2) + Math.Pow(embedding[2 * i + 1] - embedding[2 * j + 1], 2))
                .Take(k);
            agree += nearest.Count(j => labels[j] == labels[i]);
        }
        return agree / (double)(n * k);
    }

    /// <summary>Smallest distance between cluster centroids over the largest RMS distance of a cluster's points to its centroid.</summary>
    public static double SeparationRatio(float[] embedding, int[] labels)
    {
        int clusters = labels.Max() + 1;
        var centroids = new (double X, double Y)[clusters];
        double largestSpread = 0;
        for (int c = 0; c < clusters; c++)
        {
            var members = Enumerable.Range(0, labels.Length).Where(i => labels[i] == c).ToArray();
            centroids[c] = (members.Average(i => (double)embedding[2 * i]), members.Average(i => (double)embedding[2 * i + 1]));
            double spread = Math.Sqrt(members.Average(i =>
                Math.Pow(embedding[2 * i] - centroids[c].X, 2) + Math.Pow(embedding[2 * i + 1] - centroids[c].Y, 2)));
            largestSpread = Math.Max(largestSpread, spread);
        }
        double closest = double.PositiveInfinity;
        for (int a = 0; a < clusters; a++)
            for (int b = a + 1; b < clusters; b++)
                closest = Math.Min(closest, Math.Sqrt(Math.Pow(centroids[a].X - centroids[b].X, 2) + Math.Pow(centroids[a].Y - centroids[b].Y, 2)));
        return closest / largestSpread;
    }
}
