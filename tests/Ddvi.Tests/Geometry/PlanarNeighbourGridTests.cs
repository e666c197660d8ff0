using Ddvi.Geometry;

namespace Ddvi.Tests.Geometry;

public class PlanarNeighbourGridTests
{
    /// <summary>
    /// The k nearest points' squared distances equal a brute-force search's for queries inside the points' bounding box,
    /// on its edges and far outside it in every direction (where the search starts from an edge cell and its early stop
    /// must not count the side beyond the grid), on thin arms with empty cells between them.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    public void NearestMatchesABruteForceSearchInsideAndOutsideTheGrid(int k)
    {
        var random = new Random(5);
        int n = 3_000;
        var x = new double[n];
        var y = new double[n];
        for (int i = 0; i < n; i++)
        {
            double angle = 2 * Math.PI * (i % 5) / 5 + 0.8 * random.NextDouble(), radius = 0.2 + 1.2 * random.NextDouble();
            x[i] = radius * Math.Cos(angle) + 0.01 * random.NextDouble();
            y[i] = radius * Math.Sin(angle) + 0.01 * random.NextDouble();
        }
        var grid = new PlanarNeighbourGrid(x, y);
        var queries = new List<(double X, double Y)> { (0, 0), (1.4, 0), (-1.4, 0.2), (0, 1.42), (x[17], y[17]) };
        for (int i = 0; i < 40; i++) queries.Add((3 * (random.NextDouble() - 0.5), 3 * (random.NextDouble() - 0.5)));
        foreach (double far in new[] { 2.0, 10.0, 1_000.0 })
            for (int dx = -1; dx <= 1; dx++)
                for (int dy = -1; dy <= 1; dy++)
                    if (dx != 0 || dy != 0) queries.Add((far * dx + 0.3, far * dy - 0.2));

        Span<int> indices = stackalloc int[k];
        Span<double> distances = stackalloc double[k];
        foreach (var (qx, qy) in queries)
        {
            grid.Nearest(qx, qy, indices, distances);
            var expected = Enumerable.Range(0, n).Select(i => (x[i] - qx) * (x[i] - qx) + (y[i] - qy) * (y[i] - qy)).Order().Take(k).ToArray();
            var found = distances.ToArray().Order().ToArray();
            Assert.Equal(expected, found);
            for (int j = 0; j < k; j++)
                Assert.Equal(distances[j], (x[indices[j]] - qx) * (x[indices[j]] - qx) + (y[indices[j]] - qy) * (y[indices[j]] - qy));
            Assert.Equal(expected[0], grid.NearestSquaredDistance(qx, qy));
        }
    }
}
