using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
using Ddvi.Plotting;
using static TorchSharp.torch;

namespace Ddvi.Tests.Plotting;

/// <summary>Latent plots and latent files for latents of any dimension; the paper's 2-D ones are drawn as before.</summary>
public sealed class LatentProjectionTests
{
    static (Tensor Latents, Tensor Labels) Clusters(int d, long perClass, int classes, ulong seed)
    {
        using var generator = new Generator(seed);
        var labels = arange(classes).repeat_interleave(perClass);
        var centres = randn([classes, d], generator: generator) * 4;
        var latents = centres.index_select(0, labels) + randn([classes * perClass, d], generator: generator);
        return (latents, labels);
    }

    [Fact]
    public void TwoDimensionalLatentsAreDrawnAsTheyAreWithNothingAdded()
    {
        using var scope = NewDisposeScope();
        var (latents, _) = Clusters(2, 50, 3, 1);
        var view = LatentProjection.Fit(latents);
        Assert.Null(view.Note);
        Assert.Null(view.XLabel);
        Assert.Null(view.YLabel);
        Assert.Equal("VAE test latents (mnist)", view.Title("VAE test latents (mnist)"));
        var (x, y) = view.Apply(latents);
        Assert.Equal(latents.select(1, 0).data<float>().ToArray(), x);
        Assert.Equal(latents.select(1, 1).data<float>().ToArray(), y);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(8)]
    public void HigherDimensionsAreDrawnOnTheirFirstTwoPrincipalComponents(int d)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(5);
        // Variance 25 along u, 4 along v (orthonormal), 0.01 elsewhere, around a mean of 3 in every coordinate.
        var (q, _) = linalg.qr(randn([d, d], float64, generator: generator));
        var u = q.select(1, 0);
        var v = q.select(1, 1);
        long n = 2000;
        var a = randn([n, 1], float64, generator: generator) * 5;
        var b = randn([n, 1], float64, generator: generator) * 2;
        var latents = (3 + a * u + b * v + 0.1 * randn([n, d], float64, generator: generator)).to(float32);

        var view = LatentProjection.Fit(latents);
        Assert.Equal($"PCA of {d}-D latents", view.Note);
        Assert.Equal($"prior vs latents\nPCA of {d}-D latents", view.Title("prior vs latents"));
        Assert.StartsWith("PC1 (8", view.XLabel); // 25 / (25 + 4 + 0.01 (d − 2)) ≈ 86%
        Assert.StartsWith("PC2 (1", view.YLabel);
        var (x, y) = view.Apply(latents);
        static double Correlation(float[] p, Tensor t)
        {
            var pt = tensor(p, float64);
            var (pc, tc) = (pt - pt.mean(), t.flatten() - t.mean());
            return ((pc * tc).sum() / (pc.square().sum() * tc.square().sum()).sqrt()).item<double>();
        }
        Assert.True(Math.Abs(Correlation(x, a)) > 0.999, "PC1 follows the direction of largest variance");
        Assert.True(Math.Abs(Correlation(y, b)) > 0.99, "PC2 follows the second");
        Assert.True(Math.Abs(x.Average()) < 1e-3, "the projection is centred");

        // Refitting gives the same signs, and other points of the same dimension go on the same axes.
        Assert.Equal(x, LatentProjection.Fit(latents).Apply(latents).X);
        var (mx, my) = view.Apply(latents.mean([0L], keepdim: true));
        Assert.True(Math.Abs(mx[0]) < 1e-3 && Math.Abs(my[0]) < 1e-3, "the data's mean projects to the origin");
        Assert.Throws<ArgumentException>(() => view.Apply(zeros(3, d + 1)));
    }

    [Fact]
    public void OneDimensionalLatentsAreDrawnAgainstAJitterThatTheFigureNames()
    {
        using var scope = NewDisposeScope();
        var (latents, _) = Clusters(1, 100, 3, 2);
        var view = LatentProjection.Fit(latents, "test latents");
        Assert.Equal("1-D test latents, vertical jitter", view.Note);
        Assert.Equal("z", view.XLabel);
        Assert.Contains("no meaning", view.YLabel);
        var (x, y) = view.Apply(latents);
        Assert.Equal(latents.flatten().data<float>().ToArray(), x);
        double range = x.Max() - x.Min();
        Assert.All(y, value => Assert.InRange(value, -0.05 * range - 1e-6, 0.05 * range + 1e-6));
        Assert.True(y.Distinct().Count() > 250, "the jitter spreads the points");
        Assert.Equal(y, view.Apply(latents).Y); // the same jitter every time
    }

    [Theory]
    [InlineData(1, "1-D latents, vertical jitter", "z")]
    [InlineData(3, "PCA of 3-D latents", "PC1 (")]
    [InlineData(8, "PCA of 8-D latents", "PC1 (")]
    public void ScatterOfTensorsTitlesAndLabelsWhatIsShownAndWritesPngs(int d, string note, string xLabel)
    {
        using var scope = NewDisposeScope();
        using var folder = new TempFolder();
        var (latents, labels) = Clusters(d, 60, 4, 3);
        using (var plot = LatentScatter.BuildPlot(latents, labels, "VAE test latents", LatentScatter.DefaultMarkerSize))
        {
            Assert.Equal($"VAE test latents\n{note}", plot.Axes.Title.Label.Text);
            Assert.StartsWith(xLabel, plot.Axes.Bottom.Label.Text);
        }
        LatentScatter.Save(folder["one.png"], latents, labels, "VAE test latents", width: 200, height: 200);
        var (prior, priorLabels) = Clusters(d, 60, 4, 4);
        LatentScatter.SaveSideBySide(folder["two.png"], ("prior", prior, priorLabels), ("latents", latents, labels), panelSize: 200);
        Assert.True(new FileInfo(folder["one.png"]).Length > 0);
        Assert.True(new FileInfo(folder["two.png"]).Length > 0);
        Assert.Throws<ArgumentException>(() =>
            LatentScatter.SaveSideBySide(folder["bad.png"], ("prior", zeros(5, d + 1), zeros(5, int64)), ("latents", latents, labels)));
    }

    [Fact]
    public void TwoDimensionalTensorPlotsKeepTheirTitleAndHaveNoAxisLabels()
    {
        using var scope = NewDisposeScope();
        var (latents, labels) = Clusters(2, 30, 3, 6);
        using var plot = LatentScatter.BuildPlot(latents, labels, "VAE test latents", LatentScatter.DefaultMarkerSize);
        Assert.Equal("VAE test latents", plot.Axes.Title.Label.Text);
        Assert.True(string.IsNullOrEmpty(plot.Axes.Bottom.Label.Text));
        Assert.True(string.IsNullOrEmpty(plot.Axes.Left.Label.Text));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void LatentFilesHaveOneColumnPerDimensionAndReadBack(int d)
    {
        using var scope = NewDisposeScope();
        using var folder = new TempFolder();
        var (latents, labels) = Clusters(d, 5, 2, 7);
        string path = folder["latents-test.csv"];
        ExperimentRunner.WriteLatents(path, latents, labels, latents * 2);
        string header = File.ReadLines(path).First();
        string zs = string.Join(',', Enumerable.Range(1, d).Select(j => $"z{j}"));
        string ys = string.Join(',', Enumerable.Range(1, d).Select(j => $"yT{j}"));
        Assert.Equal($"{zs},label,{ys}", header);

        var (values, dimension, read) = ComparisonReport.ReadLatentTable(path);
        Assert.Equal(d, dimension);
        Assert.Equal(labels.to(int32).data<int>().ToArray(), read);
        Assert.Equal(latents.flatten().data<float>().ToArray(), values);
        var (x, y, _) = ComparisonReport.ReadLatents(path);
        Assert.Equal(LatentProjection.Fit(latents).Apply(latents).X, x);
        Assert.Equal(10, y.Length);
    }

    [Fact]
    public void TwoDimensionalLatentFilesKeepThePapersLayout()
    {
        using var scope = NewDisposeScope();
        using var folder = new TempFolder();
        var latents = tensor(new float[] { 0.5f, -1.25f, 3f, 0.1f }, [2, 2]);
        var labels = tensor(new long[] { 4, 7 });
        ExperimentRunner.WriteLatents(folder["a.csv"], latents, labels, null);
        Assert.Equal("z1,z2,label\n0.5,-1.25,4\n3,0.1,7\n", File.ReadAllText(folder["a.csv"]));
        ExperimentRunner.WriteLatents(folder["b.csv"], latents, labels, latents);
        Assert.Equal("z1,z2,label,yT1,yT2\n0.5,-1.25,4,0.5,-1.25\n3,0.1,7,3,0.1\n", File.ReadAllText(folder["b.csv"]));
        File.WriteAllText(folder["c.csv"], "z1,z3,label\n1,2,3\n");
        Assert.Contains("expected a header", Assert.Throws<InvalidDataException>(() => ComparisonReport.ReadLatentTable(folder["c.csv"])).Message);
        File.WriteAllText(folder["d.csv"], "z1,z2,z3,label\n1,2,3,4\n1,2,x,4\n");
        Assert.Contains("line 3: expected 'z1,z2,z3,label'", Assert.Throws<InvalidDataException>(() => ComparisonReport.ReadLatentTable(folder["d.csv"])).Message);
    }
}
