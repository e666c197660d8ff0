using Ddvi.Evaluation.Clustering;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Evaluation.Clustering;

public class GaussianMixtureFitTests
{
    static readonly double[,] TrueMeans = { { 0, 0 }, { 10, 0 }, { 0, 10 } };

    /// <summary>perCluster points around each of <see cref="TrueMeans"/>, axis scales (1, 0.5), labels 0, 1, 2.</summary>
    static (Tensor Points, int[] Labels) Clusters(int perCluster, double spread, ulong seed)
    {
        var generator = new Generator(seed);
        var labels = Enumerable.Range(0, 3).SelectMany(c => Enumerable.Repeat(c, perCluster)).ToArray();
        var means = tensor(TrueMeans).index_select(0, tensor(labels.Select(l => (long)l).ToArray()));
        var noise = randn(labels.Length, 2, float64, generator: generator) * tensor(new double[] { 1, 0.5 }) * spread;
        return (means + noise, labels);
    }

    [Fact]
    public void RecoversWellSeparatedClusters()
    {
        using var scope = NewDisposeScope();
        var (points, labels) = Clusters(200, 1, 1);
        var fit = GaussianMixtureFit.Fit(points, new GaussianMixtureOptions { Components = 3, Initialisations = 3, Seed = 1 });

        Assert.True(fit.Converged);
        Assert.Equal(1.0, fit.Weights.Sum(), 12);
        for (int c = 0; c < 3; c++)
        {
            int nearest = Enumerable.Range(0, 3).MinBy(k => Math.Pow(fit.Means[k, 0] - TrueMeans[c, 0], 2) + Math.Pow(fit.Means[k, 1] - TrueMeans[c, 1], 2));
            Assert.InRange(fit.Means[nearest, 0] - TrueMeans[c, 0], -0.2, 0.2);
            Assert.InRange(fit.Means[nearest, 1] - TrueMeans[c, 1], -0.2, 0.2);
            Assert.InRange(fit.Weights[nearest], 0.3, 0.37);
            // Covariance ≈ diag(1, 0.25) + 0.01 I.
            Assert.InRange(fit.Covariances[nearest, 0, 0], 0.8, 1.25);
            Assert.InRange(fit.Covariances[nearest, 1, 1], 0.2, 0.33);
        }
        var scores = ClusterScores.Score(fit.Predict(points), labels);
        Assert.Equal(1.0, scores.Purity);
        Assert.Equal(1.0, scores.VMeasure, 12);
        Assert.Equal(1.0, scores.NormalisedMutualInformation, 12);
    }

    [Fact]
    public void LogLikelihoodNeverDecreasesOverEmIterations()
    {
        using var scope = NewDisposeScope();
        var (points, _) = Clusters(150, 4, 2); // overlapping: EM takes many iterations
        var fit = GaussianMixtureFit.Fit(points,
            new GaussianMixtureOptions { Components = 6, Initialisations = 1, MaxIterations = 60, Tolerance = 0, Seed = 3 });
        Assert.Equal(60, fit.LogLikelihoodHistory.Count);
        Assert.False(fit.Converged);
        for (int t = 1; t < fit.LogLikelihoodHistory.Count; t++)
            Assert.True(fit.LogLikelihoodHistory[t] >= fit.LogLikelihoodHistory[t - 1] - 1e-10,
                $"EM step {t}: {fit.LogLikelihoodHistory[t]} < {fit.LogLikelihoodHistory[t - 1]}");
        Assert.Equal(fit.LogLikelihoodHistory[^1], fit.LowerBound);
        Assert.True(fit.LogLikelihood >= fit.LowerBound - 1e-10);
        Assert.True(fit.LogLikelihoodHistory[^1] > fit.LogLikelihoodHistory[0]);
    }

    [Fact]
    public void OneComponentIsTheEmpiricalGaussianWithRegularisedCovariance()
    {
        using var scope = NewDisposeScope();
        var (points, _) = Clusters(50, 1, 4);
        double[] x = points.data<double>().ToArray();
        int n = x.Length / 2;
        double mx = 0, my = 0;
        for (int i = 0; i < n; i++) { mx += x[2 * i]; my += x[2 * i + 1]; }
        mx /= n; my /= n;
        double sxx = 0, sxy = 0, syy = 0;
        for (int i = 0; i < n; i++)
        {
            sxx += (x[2 * i] - mx) * (x[2 * i] - mx);
            sxy += (x[2 * i] - mx) * (x[2 * i + 1] - my);
            syy += (x[2 * i + 1] - my) * (x[2 * i + 1] - my);
        }
        foreach (double regularisation in new[] { 0.0, 1e-2, 0.5 })
        {
            var fit = GaussianMixtureFit.Fit(points, new GaussianMixtureOptions { Components = 1, Initialisations = 1, CovarianceRegularisation = regularisation });
            Assert.Equal(mx, fit.Means[0, 0], 9);
            Assert.Equal(my, fit.Means[0, 1], 9);
            Assert.Equal(sxx / n + regularisation, fit.Covariances[0, 0, 0], 9);
            Assert.Equal(sxy / n, fit.Covariances[0, 0, 1], 9);
            Assert.Equal(syy / n + regularisation, fit.Covariances[0, 1, 1], 9);

            // log N(x; μ, Σ) in closed form for 2-D.
            double a = fit.Covariances[0, 0, 0], b = fit.Covariances[0, 0, 1], d = fit.Covariances[0, 1, 1], det = a * d - b * b;
            double ux = x[0] - mx, uy = x[1] - my;
            double expected = -Math.Log(2 * Math.PI) - 0.5 * Math.Log(det) - 0.5 * (d * ux * ux - 2 * b * ux * uy + a * uy * uy) / det;
            Assert.Equal(expected, fit.LogDensity(points)[0], 9);
        }
    }

    [Fact]
    public void RegularisationKeepsACollapsedComponentProper()
    {
        using var scope = NewDisposeScope();
        var points = ones(20, 2, float64) * 3;
        var error = Assert.Throws<InvalidOperationException>(() =>
            GaussianMixtureFit.Fit(points, new GaussianMixtureOptions { Components = 1, Initialisations = 1, CovarianceRegularisation = 0 }));
        Assert.Contains("CovarianceRegularisation", error.Message);

        var fit = GaussianMixtureFit.Fit(points, new GaussianMixtureOptions { Components = 1, Initialisations = 1 });
        Assert.Equal(0.01, fit.Covariances[0, 0, 0], 12);
        Assert.Equal(0, fit.Covariances[0, 0, 1], 12);
        // log N(μ; μ, 0.01 I) = −ln(2π) − ½ ln(1e-4) = −1.8378771 + 4.6051702 = 2.7672931.
        Assert.Equal(2.7672931, fit.LogLikelihood, 6);
    }

    [Fact]
    public void SameSeedGivesTheSameFitAndPredictionsAgreeWithDensities()
    {
        using var scope = NewDisposeScope();
        var (points, _) = Clusters(100, 3, 5);
        var options = new GaussianMixtureOptions { Components = 5, Initialisations = 3, Seed = 7 };
        var first = GaussianMixtureFit.Fit(points, options);
        var second = GaussianMixtureFit.Fit(points, options);
        Assert.Equal(first.Means, second.Means);
        Assert.Equal(first.Covariances, second.Covariances);
        Assert.Equal(first.Weights, second.Weights);
        Assert.Equal(first.LogLikelihood, second.LogLikelihood);
        Assert.Equal(first.Predict(points), second.Predict(points));

        Assert.Equal(first.LogLikelihood, first.LogDensity(points).Average(), 10);
        Assert.Equal(first.Predict(points), first.Predict(points.to(float32)));
    }

    [Fact]
    public void KeepsTheBestOfItsStarts()
    {
        using var scope = NewDisposeScope();
        var (points, _) = Clusters(100, 3, 6);
        var lines = new List<string>();
        var fit = GaussianMixtureFit.Fit(points, new GaussianMixtureOptions { Components = 8, Initialisations = 4, Seed = 2 }, lines.Add);
        Assert.Equal(4, lines.Count);
        // The starts draw from one generator in turn, so a one-start fit with the same seed is the first of the four.
        var single = GaussianMixtureFit.Fit(points, new GaussianMixtureOptions { Components = 8, Initialisations = 1, Seed = 2 });
        Assert.True(fit.LowerBound >= single.LowerBound);
        Assert.True(fit.LogLikelihood >= fit.LowerBound); // one more EM step never lowers ℓ
    }

    [Fact]
    public void BadInputsSayWhatIsWrong()
    {
        using var scope = NewDisposeScope();
        var tooMany = Assert.Throws<ArgumentOutOfRangeException>(() =>
            GaussianMixtureFit.Fit(randn(3, 2), new GaussianMixtureOptions { Components = 5 }));
        Assert.Equal("Components", tooMany.ParamName);
        Assert.Contains("(3)", tooMany.Message);

        var withNan = randn(10, 2);
        withNan[4, 1] = tensor(float.NaN);
        var nan = Assert.Throws<ArgumentException>(() => GaussianMixtureFit.Fit(withNan, new GaussianMixtureOptions { Components = 2 }));
        Assert.Equal("points", nan.ParamName);
        Assert.Contains("row 4, column 1", nan.Message);

        var vector = Assert.Throws<ArgumentException>(() => GaussianMixtureFit.Fit(randn(10), new GaussianMixtureOptions { Components = 2 }));
        Assert.Contains("[10]", vector.Message);
        var integers = Assert.Throws<ArgumentException>(() => GaussianMixtureFit.Fit(ones(10, 2, int64), new GaussianMixtureOptions { Components = 2 }));
        Assert.Contains("floating point", integers.Message);

        Assert.Equal("Initialisations", Assert.Throws<ArgumentOutOfRangeException>(() =>
            GaussianMixtureFit.Fit(randn(10, 2), new GaussianMixtureOptions { Components = 2, Initialisations = 0 })).ParamName);
        Assert.Equal("CovarianceRegularisation", Assert.Throws<ArgumentOutOfRangeException>(() =>
            GaussianMixtureFit.Fit(randn(10, 2), new GaussianMixtureOptions { Components = 2, CovarianceRegularisation = -1 })).ParamName);

        var fit = GaussianMixtureFit.Fit(randn(10, 2), new GaussianMixtureOptions { Components = 2 });
        var wrongWidth = Assert.Throws<ArgumentException>(() => fit.Predict(randn(4, 3)));
        Assert.Equal("points", wrongWidth.ParamName);
        Assert.Contains("2 columns", wrongWidth.Message);
    }
}
