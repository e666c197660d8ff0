using Ddvi.Experiments.Genomics;
using TorchSharp;
using static TorchSharp.torch;
using static Ddvi.Tests.Genomics.GenotypeTestFiles;

namespace Ddvi.Tests.Genomics;

public class GenotypePcaTests
{
    const float M = float.NaN;

    /// <summary>12 samples × 40 random columns (10% missing), then a constant column, an uncalled one and one with a
    /// single call: the last three must be skipped.</summary>
    static float[][] RandomDosages(int samples = 12, int columns = 40)
    {
        var random = new Random(1);
        var dosages = new List<float[]>();
        for (int j = 0; j < columns; j++)
        {
            double p = 0.1 + 0.8 * random.NextDouble();
            dosages.Add(Enumerable.Range(0, samples).Select(_ => random.NextDouble() < 0.1 ? M
                : (float)((random.NextDouble() < p ? 1 : 0) + (random.NextDouble() < p ? 1 : 0))).ToArray());
        }
        dosages.Add(Enumerable.Repeat(1f, samples).ToArray());
        dosages.Add(Enumerable.Repeat(M, samples).ToArray());
        dosages.Add(Enumerable.Range(0, samples).Select(i => i == 3 ? 2f : M).ToArray());
        return [.. dosages];
    }

    static void Samples(int n, out string[] ids) => ids = Enumerable.Range(1, n).Select(i => $"s{i}").ToArray();

    /// <summary>The PCA written out densely: impute by the called mean, centre, divide by √(2p(1−p)), drop constant
    /// columns, then the SVD X = U S Vᵀ; scores U·S.</summary>
    static (double[,] Scores, double[] SquaredSingularValues, int Kept) DenseReference(float[][] dosages, int n, int k, bool standardize)
    {
        var kept = new List<double[]>();
        foreach (var column in dosages)
        {
            var called = column.Where(d => !float.IsNaN(d)).Select(d => (double)d).ToArray();
            if (called.Length == 0 || called.Distinct().Count() == 1) continue;
            double mean = called.Average(), p = mean / 2, scale = standardize ? Math.Sqrt(2 * p * (1 - p)) : 1;
            kept.Add(column.Select(d => float.IsNaN(d) ? 0 : (d - mean) / scale).ToArray());
        }
        var x = new double[n * kept.Count];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < kept.Count; j++) x[i * kept.Count + j] = kept[j][i];
        using var matrix = tensor(x, [n, kept.Count], ScalarType.Float64);
        var (u, s, vh) = linalg.svd(matrix, fullMatrices: false);
        using (u) using (s) using (vh)
        {
            var scores = new double[n, k];
            var singular = s.data<double>().ToArray();
            for (int i = 0; i < n; i++)
                for (int c = 0; c < k; c++) scores[i, c] = u[i, c].item<double>() * singular[c];
            return (scores, singular.Take(k).Select(v => v * v).ToArray(), kept.Count);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ScoresEqualADenseSvdOfTheImputedScaledMatrixUpToSign(bool standardize)
    {
        using var folder = new TempFolder();
        var dosages = RandomDosages();
        Samples(12, out var ids);
        string prefix = WritePlink(folder["g"], ids, dosages);
        using var source = GenotypeFiles.Open(prefix, GenotypeFilters.None);

        var result = GenotypePca.Fit(source, new GenotypePcaOptions { Components = 5, Divisor = 1, BlockColumns = 7, Standardize = standardize });
        var (reference, squared, kept) = DenseReference(dosages, 12, 5, standardize);

        Assert.Equal((kept, 43 - kept), (result.ColumnsUsed, result.ColumnsSkipped));
        Assert.InRange(kept, 30, 40);
        Assert.Equal(ids, result.SampleIds);
        for (int c = 0; c < 5; c++)
        {
            Assert.Equal(squared[c], result.Eigenvalues[c], 1e-9 * squared[0]);
            double dot = Enumerable.Range(0, 12).Sum(i => reference[i, c] * result.Score(i, c));
            double sign = Math.Sign(dot);
            for (int i = 0; i < 12; i++) Assert.Equal(reference[i, c], sign * result.Score(i, c), 1e-5 * Math.Sqrt(squared[0]));
        }
        Assert.True(result.ExplainedVarianceFraction.Zip(result.ExplainedVarianceFraction.Skip(1)).All(p => p.First >= p.Second));
        Assert.True(result.ExplainedVarianceFraction.Sum() <= 1 + 1e-12);
    }

    [Fact]
    public void ScoresDoNotDependOnTheBlockSizeAndFollowTheSignAndDivisorConventions()
    {
        using var folder = new TempFolder();
        Samples(12, out var ids);
        string prefix = WritePlink(folder["g"], ids, RandomDosages());
        using var source = GenotypeFiles.Open(prefix, GenotypeFilters.None);

        var one = GenotypePca.Fit(source, new GenotypePcaOptions { Components = 4, BlockColumns = 1, Divisor = 1 });
        var all = GenotypePca.Fit(source, new GenotypePcaOptions { Components = 4, BlockColumns = 4096, Divisor = 1 });
        var divided = GenotypePca.Fit(source, new GenotypePcaOptions { Components = 4, BlockColumns = 5, Divisor = 30 });
        var chosen = GenotypePca.Fit(source, new GenotypePcaOptions { Components = 4 });
        var capped = GenotypePca.Fit(source, new GenotypePcaOptions { Components = 1000 });

        float largest = one.Scores.Max(Math.Abs);
        Assert.All(one.Scores.Zip(all.Scores), p => Assert.Equal(p.First, p.Second, 1e-5f * largest));
        Assert.All(one.Scores.Zip(divided.Scores), p => Assert.Equal(p.First / 30f, p.Second, 1e-6f * largest));
        Assert.Equal((1.0, 30.0), (one.Divisor, divided.Divisor));
        // The default divisor gives the kept components a mean variance of 10 (population variance: the scores are centred).
        double meanVariance = Enumerable.Range(0, 4).Average(c => Enumerable.Range(0, 12).Average(i => Math.Pow(chosen.Score(i, c), 2)));
        Assert.Equal(GenotypePca.AutomaticMeanVariance, meanVariance, 1e-4);
        Assert.Equal(GenotypePca.AutomaticDivisor(one.Eigenvalues, 12), chosen.Divisor, 1e-12);
        Assert.All(one.Scores.Zip(chosen.Scores), p => Assert.Equal(p.First / (float)chosen.Divisor, p.Second, 1e-5f));
        for (int c = 0; c < 4; c++)
        {
            var column = Enumerable.Range(0, 12).Select(i => one.Score(i, c)).ToArray();
            Assert.True(column.MaxBy(Math.Abs) > 0, $"component {c + 1}: the entry of largest magnitude must be positive");
        }
        Assert.Equal(11, capped.Components);
        using var scores = capped.ScoresTensor();
        Assert.Equal(new long[] { 12, 11 }, scores.shape);
    }

    [Fact]
    public void MissingDosagesTakeTheColumnMeanThenColumnsAreCentredAndScaledByPatterson()
    {
        float[] dosages =
        [
            0, M, 2, 2,     // mean 4/3, p = 2/3, √(2p(1−p)) = 2/3: (−2, 0, 1, 1)
            1, 1, M, 1,     // constant: skipped
            M, M, M, M,     // uncalled: skipped
            0, 0, 1, 1,     // mean 1/2, p = 1/4, √(3/8)
        ];
        var block = new GenotypeBlock(4, 4, dosages, Enumerable.Repeat(new GenotypeSite("1", 1, "x", "A", "G"), 4).ToArray());

        using var scope = NewDisposeScope();
        var scaled = GenotypePca.Prepare(block, standardize: true, out long used).data<double>().ToArray();
        var centred = GenotypePca.Prepare(block, standardize: false, out long usedCentred).data<double>().ToArray();

        double s = Math.Sqrt(3.0 / 8);
        double[] expectedScaled = [-2, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, -0.5 / s, -0.5 / s, 0.5 / s, 0.5 / s];
        double[] expectedCentred = [-4.0 / 3, 0, 2.0 / 3, 2.0 / 3, 0, 0, 0, 0, 0, 0, 0, 0, -0.5, -0.5, 0.5, 0.5];
        Assert.Equal((2, 2), (used, usedCentred));
        Assert.All(expectedScaled.Zip(scaled), p => Assert.Equal(p.First, p.Second, 1e-12));
        Assert.All(expectedCentred.Zip(centred), p => Assert.Equal(p.First, p.Second, 1e-12));
    }

    [Fact]
    public void TheUpperTilesOfTheGramMatrixGiveTheFullProduct()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        var x = randn([30, 1101], dtype: ScalarType.Float64, generator: generator); // [c, n]
        var gram = zeros(1101, 1101, ScalarType.Float64);
        var tiles = GenotypePca.Tiles(1101);

        GenotypePca.AddUpperProduct(gram, x, tiles);
        GenotypePca.AddUpperProduct(gram, x, tiles);
        var full = GenotypePca.Symmetrize(gram);

        Assert.Equal(4, tiles.Length);
        Assert.Equal(1101, tiles.Sum(t => t.Length));
        Assert.True(full.allclose(x.t().mm(x).mul_(2), rtol: 1e-12, atol: 1e-10));
    }

    [Fact]
    public void InvalidOptionsNameThePropertyAndTheValue()
    {
        Assert.StartsWith("GenotypePcaOptions.Components must be at least 1; got 0.",
            Assert.Throws<ArgumentException>(() => new GenotypePcaOptions { Components = 0 }).Message);
        Assert.StartsWith("GenotypePcaOptions.BlockColumns must be at least 1; got -4.",
            Assert.Throws<ArgumentException>(() => new GenotypePcaOptions { BlockColumns = -4 }).Message);
        Assert.StartsWith("GenotypePcaOptions.Divisor must be a positive number (1 = no scaling) or null (chosen from the data); got 0.",
            Assert.Throws<ArgumentException>(() => new GenotypePcaOptions { Divisor = 0 }).Message);
        Assert.Throws<ArgumentException>(() => new GenotypePcaOptions { Divisor = double.PositiveInfinity });
        Assert.Null(new GenotypePcaOptions().Divisor);
        Assert.StartsWith("GenotypePca.AutomaticDivisor: needs at least one eigenvalue and one sample, got 0 and 5.",
            Assert.Throws<ArgumentException>(() => GenotypePca.AutomaticDivisor([], 5)).Message);
        Assert.Equal(2.0, GenotypePca.AutomaticDivisor([300, 100], 5), 1e-12); // mean variance (300 + 100) / (5 · 2) = 40 = 4 · 10
    }

    [Fact]
    public void SyntheticPopulationsAreReproducibleAndSeparateOnTheFirstComponents()
    {
        using var folder = new TempFolder();
        string panelPath = SyntheticGenotypes.WritePlink(folder["a"], samples: 60, sites: 3000, populations: 3, seed: 7, missingRate: 0.02);
        SyntheticGenotypes.WritePlink(folder["b"], samples: 60, sites: 3000, populations: 3, seed: 7, missingRate: 0.02);
        SyntheticGenotypes.WritePlink(folder["c"], samples: 60, sites: 3000, populations: 3, seed: 8, missingRate: 0.02);

        Assert.Equal(File.ReadAllBytes(folder["a.bed"]), File.ReadAllBytes(folder["b.bed"]));
        Assert.NotEqual(File.ReadAllBytes(folder["a.bed"]), File.ReadAllBytes(folder["c.bed"]));
        using var all = GenotypeFiles.Open(folder["a.bed"], GenotypeFilters.None);
        var (columns, sites) = ReadAll(all);
        double missing = columns.Sum(c => c.Count(float.IsNaN)) / (60.0 * 3000);
        Assert.Equal(3000, columns.Length);
        Assert.InRange(missing, 0.015, 0.025);
        Assert.Equal(["1", "22"], new[] { sites[0].Chrom, sites[^1].Chrom });
        Assert.All(sites, s => Assert.NotEqual(s.Allele, s.OtherAllele));

        var match = PopulationPanel.Read(panelPath).Match(all.SampleIds);
        Assert.Empty(match.Warnings);
        Assert.Equal(["POP1", "POP2", "POP3"], match.PopulationNames);

        using var thinned = GenotypeFiles.Open(folder["a.bed"], new GenotypeFilters());
        var pca = GenotypePca.Fit(thinned, new GenotypePcaOptions { Components = 2 });
        Assert.Equal(300, thinned.Summary.SitesKept);
        var centroids = Enumerable.Range(0, 3).Select(k => Enumerable.Range(0, 2).Select(c =>
            match.KeptIndices.Where(i => match.PopulationCode[i] == k).Average(i => pca.Score(i, c))).ToArray()).ToArray();
        int nearestRight = Enumerable.Range(0, 60).Count(i => Enumerable.Range(0, 3).MinBy(k =>
            Math.Pow(pca.Score(i, 0) - centroids[k][0], 2) + Math.Pow(pca.Score(i, 1) - centroids[k][1], 2)) == match.PopulationCode[i]);
        Assert.Equal(60, nearestRight);
    }
}
