using Ddvi.Evaluation;
using static TorchSharp.torch;
using NormalPrior = Ddvi.Priors.StandardNormalPrior;

namespace Ddvi.Tests.Evaluation;

/// <summary>The latent metrics on latents of 1, 3 and 8 dimensions (the paper's are 2-D, with fast paths of their own).</summary>
public class AnyDimensionMetricsTests
{
    /// <summary>Points around <paramref name="classes"/> centres 6 apart (spread 0.5), labels by centre.</summary>
    static (Tensor Latents, Tensor Labels) Clusters(int d, long perClass, int classes, Generator generator)
    {
        var labels = arange(classes).repeat_interleave(perClass);
        var direction = randn([1, d], float64, generator: generator);
        direction /= direction.norm();
        var centres = arange(classes, dtype: float64).unsqueeze(1) * 6 * direction; // [C, d] on a line
        var latents = centres.index_select(0, labels) + 0.5 * randn([classes * perClass, d], float64, generator: generator);
        return (latents.to(float32), labels);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void KnnClassifiesSeparatedClustersAndMatchesBruteForce(int d)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)(100 + d));
        var (all, allLabels) = Clusters(d, 250, 4, generator);
        var isTest = arange(1000).remainder(5).eq(0);
        var (train, trainLabels) = (all[isTest.logical_not()], allLabels[isTest.logical_not()]);
        var (test, testLabels) = (all[isTest], allLabels[isTest]);
        Assert.Equal(200, test.shape[0]);
        Assert.Equal(1.0, KNearestNeighbours.Accuracy(train, trainLabels, test, testLabels, 4, k: 10));

        // Labels unrelated to position: the prediction is the brute-force majority of the k nearest.
        var randomLabels = randint(0, 3, [300], generator: generator);
        var points = randn([300, d], generator: generator);
        var queries = randn([40, d], generator: generator);
        const int k = 7;
        var predicted = KNearestNeighbours.Predict(points, randomLabels, queries, 3, k, blockRows: 16).data<long>().ToArray();
        var p = points.to(float64).data<double>().ToArray();
        var q = queries.to(float64).data<double>().ToArray();
        var l = randomLabels.data<long>().ToArray();
        for (int i = 0; i < 40; i++)
        {
            var nearest = Enumerable.Range(0, 300)
                .OrderBy(j => Enumerable.Range(0, d).Sum(c => Math.Pow(q[i * d + c] - p[j * d + c], 2)))
                .Take(k).ToArray();
            var votes = new int[3];
            foreach (int j in nearest) votes[l[j]]++;
            int best = 0;
            for (int c = 1; c < 3; c++) if (votes[c] > votes[best]) best = c;
            Assert.Equal(best, predicted[i]);
        }
        Assert.Throws<ArgumentException>(() => KNearestNeighbours.Predict(points, randomLabels, queries, 3, k,
            search: KNearestNeighbours.NeighbourSearch.Grid));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void MmdIsTheFullKernelSumAndSeparatesShiftedSets(int d)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)(200 + d));
        var x = randn([60, d], float64, generator: generator);
        var y = randn([45, d], float64, generator: generator) + 0.5;
        double[] sigmas = [0.5, 2];
        double mmd = MaximumMeanDiscrepancy.Compute(x, y, sigmas, blockRows: 16);

        double Kernel(Tensor a, Tensor b)
        {
            var squared = (a.unsqueeze(1) - b.unsqueeze(0)).square().sum(2);
            return sigmas.Sum(s => (squared / (-2 * s * s)).exp().mean().item<double>());
        }
        double expected = Kernel(x, x) + Kernel(y, y) - 2 * Kernel(x, y);
        Assert.Equal(expected, mmd, 10);

        var same = randn([400, d], float64, generator: generator);
        var again = randn([400, d], float64, generator: generator);
        var shifted = randn([400, d], float64, generator: generator) + 2;
        double near = MaximumMeanDiscrepancy.Compute(same, again, sigmas);
        double far = MaximumMeanDiscrepancy.Compute(same, shifted, sigmas);
        Assert.True(near >= -1e-9 && near < 0.05, $"samples of one distribution: MMD² {near}");
        Assert.True(far > 10 * near && far > 0.1, $"shifted samples: MMD² {far} against {near}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void LatentNllIsTheKdeFormulaAndPrefersLatentsThatCoverThePrior(int d)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)(300 + d));
        var prior = new NormalPrior(d, CPU);
        IReadOnlyList<double> bandwidths = [0.5, 1.0];

        // Small enough to sum by hand: q̂(z) = (1/H) Σ_h (1/M) Σ_i N(z; c_i, h² I).
        var centres = randn([7, d], float64, generator: generator);
        var samples = randn([5, d], float64, generator: generator);
        var result = LatentNll.Compute(centres, samples, bandwidths, blockRows: 2);
        var c = centres.data<double>().ToArray();
        var s = samples.data<double>().ToArray();
        double total = 0;
        for (int j = 0; j < 5; j++)
        {
            double q = 0;
            foreach (double h in bandwidths)
                for (int i = 0; i < 7; i++)
                {
                    double squared = Enumerable.Range(0, d).Sum(t => Math.Pow(s[j * d + t] - c[i * d + t], 2));
                    q += Math.Exp(-squared / (2 * h * h) - 0.5 * d * Math.Log(2 * Math.PI * h * h)) / (bandwidths.Count * 7);
                }
            total -= Math.Log(q);
        }
        Assert.Equal(total / 5, result.Value, 8);

        var priorSamples = prior.Sample(1000, generator);
        var matching = prior.Sample(500, generator);
        var shifted = prior.Sample(500, generator) + 3;
        double good = LatentNll.Compute(matching, priorSamples, bandwidths).Value;
        double bad = LatentNll.Compute(shifted, priorSamples, bandwidths).Value;
        Assert.True(double.IsFinite(good) && double.IsFinite(bad));
        Assert.True(good < bad, $"latents distributed as the prior should score better: {good} vs {bad}");
        // The NLL of prior samples approaches the prior's entropy (d/2) log(2πe) from above as the KDE sharpens; with
        // these wide kernels it sits above it but within the kernels' extra spread.
        double entropy = 0.5 * d * Math.Log(2 * Math.PI * Math.E);
        Assert.InRange(good, entropy - 0.5, entropy + 0.5 * d + 1);
    }
}
