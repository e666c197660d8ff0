using Ddvi.FastPaths;
using Ddvi.Priors;
using TorchSharp;
using static TorchSharp.torch;
using NormalPrior = Ddvi.Priors.StandardNormalPrior;

namespace Ddvi.Tests.Priors;

public class LearnableGaussianMixtureTests
{
    /// <summary>K = 3 components in d = 4 with distinct means, per-coordinate scales and unequal weights.</summary>
    static LearnableGaussianMixture ThreeComponents(bool learnScales = true, bool learnWeights = true)
    {
        using var scope = NewDisposeScope();
        var means = tensor(new double[]
        {
            0, 1, -1, 2,
            3, -2, 0.5, 0,
            -2, 0, 0, -1,
        }, [3, 4]);
        var mixture = new LearnableGaussianMixture(means, initialStd: 1.0, initialWeights: [0.2, 0.3, 0.5],
            learnScales: learnScales, learnWeights: learnWeights);
        using (no_grad())
            mixture.LogScales.copy_(tensor(new double[]
            {
                0.0, -0.5, 0.3, 0.1,
                -0.2, 0.0, 0.4, -0.3,
                0.2, 0.2, -0.1, 0.0,
            }, [3, 4]));
        return mixture;
    }

    /// <summary>log p(z) summed by hand over components and coordinates, in double precision.</summary>
    static double ReferenceLogDensity(double[] z, double[,] mu, double[,] logSigma, double[] weights)
    {
        int k = weights.Length, d = z.Length;
        var terms = new double[k];
        for (int c = 0; c < k; c++)
        {
            double sum = Math.Log(weights[c]);
            for (int j = 0; j < d; j++)
            {
                double sigma = Math.Exp(logSigma[c, j]);
                double u = (z[j] - mu[c, j]) / sigma;
                sum += -0.5 * Math.Log(2 * Math.PI) - Math.Log(sigma) - 0.5 * u * u;
            }
            terms[c] = sum;
        }
        double top = terms.Max();
        return top + Math.Log(terms.Sum(t => Math.Exp(t - top)));
    }

    static double[,] Matrix(Tensor t)
    {
        var values = t.detach().to(float64).data<double>().ToArray();
        int rows = (int)t.shape[0], columns = (int)t.shape[1];
        var m = new double[rows, columns];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
                m[r, c] = values[r * columns + c];
        return m;
    }

    [Fact]
    public void LogDensityMatchesAHandComputedSumOverComponents()
    {
        using var scope = NewDisposeScope();
        using var mixture = ThreeComponents();
        using var generator = new Generator(4);
        var z = randn([10, 4], float64, generator: generator) * 2;
        var logP = mixture.LogDensity(z);
        Assert.Equal(ScalarType.Float32, logP.dtype);
        Assert.Equal(new[] { 10L }, logP.shape);
        var mu = Matrix(mixture.Means);
        var logSigma = Matrix(mixture.LogScales);
        double[] weights = mixture.Weights().to(float64).data<double>().ToArray();
        Assert.Equal(new[] { 0.2, 0.3, 0.5 }, weights.Select(w => Math.Round(w, 6)));
        var rows = z.data<double>().ToArray();
        var values = logP.to(float64).data<double>().ToArray();
        for (int i = 0; i < 10; i++)
        {
            double expected = ReferenceLogDensity(rows.Skip(4 * i).Take(4).ToArray(), mu, logSigma, weights);
            Assert.Equal(expected, values[i], 1e-5 * Math.Max(1, Math.Abs(expected)));
        }
        Assert.True(mixture.HasExactDensity);
        Assert.Equal(3, mixture.ClassCount);
        Assert.Equal(4, mixture.Dimension);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void OneComponentAtZeroWithUnitScaleIsTheStandardNormal(int d)
    {
        using var scope = NewDisposeScope();
        using var mixture = new LearnableGaussianMixture(zeros(1, d), initialStd: 1.0, learnScales: true, learnWeights: true);
        var normal = new NormalPrior(d, CPU);
        using var generator = new Generator(9);
        var z = randn([50, d], generator: generator) * 3;
        Assert.True(mixture.LogDensity(z).allclose(normal.LogDensity(z), 1e-6, 1e-5));
        Assert.True(mixture.Responsibilities(z).eq(1).all().item<bool>());
    }

    [Fact]
    public void GradientsReachEveryLearnedParameterAndNoFixedOne()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(2);

        using var learned = ThreeComponents(learnScales: true, learnWeights: true);
        Assert.Equal(3, learned.PriorParameters.Count);
        Assert.Equal(3, learned.parameters().Count());
        var z = randn([16, 4], generator: generator).requires_grad_();
        learned.LogDensity(z).sum().backward();
        foreach (var parameter in learned.PriorParameters)
            Assert.True(parameter.grad is not null && parameter.grad.abs().sum().item<float>() > 0, "every learned parameter gets a gradient");
        Assert.True(z.grad is not null && z.grad.abs().sum().item<float>() > 0, "log p is differentiable in z");

        using var meansOnly = ThreeComponents(learnScales: false, learnWeights: false);
        Assert.Single(meansOnly.PriorParameters);
        Assert.Same(meansOnly.Means, meansOnly.PriorParameters[0]);
        Assert.Single(meansOnly.parameters());
        Assert.False(meansOnly.LogScales.requires_grad);
        Assert.False(meansOnly.Logits.requires_grad);
        meansOnly.LogDensity(randn([16, 4], generator: generator)).sum().backward();
        Assert.True(meansOnly.Means.grad is not null && meansOnly.Means.grad.abs().sum().item<float>() > 0);
        Assert.True(meansOnly.LogScales.grad is null || meansOnly.LogScales.grad.abs().sum().item<float>() == 0);
        Assert.True(meansOnly.Logits.grad is null || meansOnly.Logits.grad.abs().sum().item<float>() == 0);
        // The fixed ones are buffers, so they are saved with the module.
        Assert.Equal(["log_scales", "logits"], meansOnly.named_buffers().Select(b => b.name).Order());
    }

    [Fact]
    public void MaximumLikelihoodMovesTheMeansToThoseOfTheData()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(21);
        const int d = 5;
        var trueMeans = tensor(new double[] { 2, 2, 0, -1, 1, -2, -1, 1, 1, -1 }, [2, d]);
        // 40% from component 0, 60% from component 1, σ = 0.5 everywhere.
        long n = 2000;
        var component = rand([n], float64, generator: generator).ge(0.4).to(int64);
        var data = (trueMeans.index_select(0, component) + 0.5 * randn([n, d], float64, generator: generator)).to(float32);

        var start = trueMeans + tensor(new double[] { 1.0, -1.0, 0.8, 0.5, -0.7, -0.8, 0.9, -1.0, 0.6, 0.7 }, [2, d]);
        using var mixture = new LearnableGaussianMixture(start, initialStd: 1.0, learnScales: true, learnWeights: true);
        double DistanceToTruth() => (mixture.Means.detach().to(float64) - trueMeans).square().sum().sqrt().item<double>();
        double MeanLogLikelihood()
        {
            using var _ = no_grad();
            return mixture.LogDensity(data).mean().item<float>();
        }

        double startDistance = DistanceToTruth();
        double startLikelihood = MeanLogLikelihood();
        using var optimiser = new FusedAdam(mixture.PriorParameters, lr: 0.05);
        for (int step = 0; step < 150; step++)
        {
            using var stepScope = NewDisposeScope();
            optimiser.zero_grad();
            var loss = -mixture.LogDensity(data).mean();
            loss.backward();
            optimiser.step();
        }
        double endDistance = DistanceToTruth();
        double endLikelihood = MeanLogLikelihood();
        Assert.True(endDistance < 0.3 * startDistance, $"means should approach the truth: distance {startDistance:F3} → {endDistance:F3}");
        Assert.True(endLikelihood > startLikelihood + 0.5, $"log-likelihood should rise: {startLikelihood:F3} → {endLikelihood:F3}");
        var weights = mixture.Weights().to(float64).data<double>().ToArray();
        Assert.Equal(0.4, weights[0], 0.06);
        var scales = mixture.Scales().to(float64);
        Assert.True(scales.sub(0.5).abs().max().item<double>() < 0.15, "scales should approach 0.5");
    }

    [Fact]
    public void SamplingFrequenciesFollowTheWeightsAndComponentsTheirGaussians()
    {
        using var scope = NewDisposeScope();
        using var mixture = ThreeComponents();
        using var generator = new Generator(8);
        const long n = 30_000;
        var (z, classes) = mixture.SampleLabelled(n, generator);
        Assert.Equal(new[] { n, 4L }, z.shape);
        Assert.Equal(ScalarType.Float32, z.dtype);
        Assert.Equal(ScalarType.Int64, classes.dtype);
        Assert.False(z.requires_grad);
        var counts = classes.bincount(null, 3).data<long>().ToArray();
        double[] weights = [0.2, 0.3, 0.5];
        for (int k = 0; k < 3; k++)
        {
            double sigma = Math.Sqrt(n * weights[k] * (1 - weights[k]));
            Assert.InRange(counts[k], n * weights[k] - 4 * sigma, n * weights[k] + 4 * sigma);
        }
        // Each component's points: mean μ_k, standard deviation σ_k per coordinate.
        var scales = mixture.Scales();
        for (int k = 0; k < 3; k++)
        {
            var points = z.index_select(0, classes.eq(k).nonzero().flatten()).to(float64);
            Assert.True((points.mean([0L]) - mixture.Means[k].to(float64)).abs().max().item<double>() < 0.1);
            Assert.True((points.std(0) - scales[k].to(float64)).abs().max().item<double>() < 0.1);

            var one = mixture.SampleClass(k, 5000, generator).to(float64);
            Assert.True((one.mean([0L]) - mixture.Means[k].to(float64)).abs().max().item<double>() < 0.1);
            Assert.True((one.std(0) - scales[k].to(float64)).abs().max().item<double>() < 0.1);
        }
        // Plain Sample is a draw from p(z) with the same stream.
        using var g1 = new Generator(8);
        Assert.True(((Ddvi.Priors.IPrior)mixture).Sample(n, g1).eq(z).all().item<bool>());
    }

    [Fact]
    public void ResponsibilitiesArePosteriorComponentProbabilities()
    {
        using var scope = NewDisposeScope();
        using var mixture = ThreeComponents();
        using var generator = new Generator(6);
        var z = randn([20, 4], generator: generator) * 2;
        var responsibilities = mixture.Responsibilities(z);
        Assert.Equal(new[] { 20L, 3L }, responsibilities.shape);
        Assert.True(responsibilities.sum(1).allclose(ones(20), 1e-5, 1e-5));
        // p(k | z) = π_k p_k(z) / p(z): each component alone is the K = 1 mixture at its mean and scales.
        var mu = Matrix(mixture.Means);
        var logSigma = Matrix(mixture.LogScales);
        var rows = z.to(float64).data<double>().ToArray();
        var r = responsibilities.to(float64).data<double>().ToArray();
        double[] weights = [0.2, 0.3, 0.5];
        for (int i = 0; i < 20; i++)
        {
            var point = rows.Skip(4 * i).Take(4).ToArray();
            double logP = ReferenceLogDensity(point, mu, logSigma, weights);
            for (int k = 0; k < 3; k++)
            {
                var one = new double[1, 4];
                var oneLog = new double[1, 4];
                for (int j = 0; j < 4; j++) (one[0, j], oneLog[0, j]) = (mu[k, j], logSigma[k, j]);
                double expected = Math.Exp(Math.Log(weights[k]) + ReferenceLogDensity(point, one, oneLog, [1.0]) - logP);
                Assert.Equal(expected, r[i * 3 + k], 1e-5);
            }
        }
        // Points at a component's mean are clustered to it (the means are far apart relative to the scales).
        Assert.Equal(new long[] { 0, 1, 2 }, mixture.Responsibilities(mixture.Means.detach()).argmax(1).data<long>().ToArray());
    }

    [Fact]
    public void SameSeedGivesSameInitialisationAndSamples()
    {
        using var scope = NewDisposeScope();
        using var a = new LearnableGaussianMixture(4, 3, seed: 17, initScale: 2.0, initialStd: 0.5);
        using var b = new LearnableGaussianMixture(4, 3, seed: 17, initScale: 2.0, initialStd: 0.5);
        using var c = new LearnableGaussianMixture(4, 3, seed: 18, initScale: 2.0, initialStd: 0.5);
        Assert.True(a.Means.eq(b.Means).all().item<bool>());
        Assert.False(a.Means.eq(c.Means).all().item<bool>());
        Assert.True(a.Scales().allclose(full([4, 3], 0.5f)));
        Assert.True(a.Weights().allclose(full([4], 0.25f)));
        // A generator with that seed gives the same means as the seed.
        using var generator = new Generator(17);
        using var fromGenerator = new LearnableGaussianMixture(4, 3, generator, initScale: 2.0);
        Assert.True(a.Means.eq(fromGenerator.Means).all().item<bool>());
        // initScale 0: every mean at the origin.
        using var origin = new LearnableGaussianMixture(2, 5, seed: 1, initScale: 0);
        Assert.True(origin.Means.eq(0).all().item<bool>());
        PriorAssert.SameSeedSameSamples(a);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void StateDictRoundTripGivesIdenticalLogDensity(bool learnScales, bool learnWeights)
    {
        using var scope = NewDisposeScope();
        using var source = new LearnableGaussianMixture(3, 6, seed: 1, initialStd: 0.7, learnScales: learnScales, learnWeights: learnWeights);
        if (learnWeights)
            using (no_grad()) source.Logits.copy_(tensor(new float[] { 0.5f, -1f, 2f }));
        using var target = new LearnableGaussianMixture(3, 6, seed: 2, initialStd: 1.3, learnScales: learnScales, learnWeights: learnWeights);
        Assert.Equal(["log_scales", "logits", "means"], source.state_dict().Keys.Order());

        byte[] saved;
        using (var stream = new MemoryStream())
        {
            source.save(stream);
            saved = stream.ToArray();
        }
        using (var stream = new MemoryStream(saved))
            target.load(stream);

        using var generator = new Generator(3);
        var z = randn([32, 6], generator: generator);
        Assert.True(target.LogDensity(z).eq(source.LogDensity(z)).all().item<bool>());
        Assert.True(target.Responsibilities(z).eq(source.Responsibilities(z)).all().item<bool>());
        Assert.Equal(learnScales, target.LogScales.requires_grad);
    }

    [Fact]
    public void MovesWithTheModuleToAnotherDtypeKeepingWhatIsLearned()
    {
        using var scope = NewDisposeScope();
        using var mixture = ThreeComponents(learnScales: true, learnWeights: false);
        using var generator = new Generator(12);
        var z = randn([8, 4], float64, generator: generator);
        var before = mixture.LogDensity(z);
        mixture.to(float64);
        Assert.Equal(ScalarType.Float64, mixture.Means.dtype);
        Assert.Equal(ScalarType.Float64, mixture.LogScales.dtype);
        Assert.Equal(2, mixture.PriorParameters.Count);
        Assert.True(mixture.LogDensity(z).allclose(before, 1e-6, 1e-5));
        mixture.LogDensity(z).sum().backward();
        Assert.All(mixture.PriorParameters, p => Assert.NotNull(p.grad));
        Assert.Equal(ScalarType.Float32, mixture.SampleClass(1, 4, generator).dtype);
    }

    [Fact]
    public void BadArgumentsGiveErrorsNamingTheValue()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        Assert.Contains("got 0", Assert.Throws<ArgumentOutOfRangeException>(() => new LearnableGaussianMixture(0, 3, seed: 1)).Message);
        Assert.Contains("K", Assert.Throws<ArgumentOutOfRangeException>(() => new LearnableGaussianMixture(-2, 3, generator)).Message);
        Assert.Contains("got 0", Assert.Throws<ArgumentOutOfRangeException>(() => new LearnableGaussianMixture(2, 0, seed: 1)).Message);
        Assert.Contains("got 0", Assert.Throws<ArgumentOutOfRangeException>(() => new LearnableGaussianMixture(zeros(0, 3))).Message);
        Assert.Throws<ArgumentException>(() => new LearnableGaussianMixture(zeros(3)));
        Assert.Throws<ArgumentException>(() => new LearnableGaussianMixture(full([2, 2], double.NaN)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LearnableGaussianMixture(2, 3, seed: 1, initialStd: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LearnableGaussianMixture(2, 3, seed: 1, initScale: double.NaN));
        Assert.Contains("2 initial weights given for 3 components",
            Assert.Throws<ArgumentException>(() => new LearnableGaussianMixture(zeros(3, 2), initialWeights: [0.5, 0.5])).Message);
        Assert.Contains("-1", Assert.Throws<ArgumentOutOfRangeException>(() => new LearnableGaussianMixture(zeros(2, 2), initialWeights: [2, -1])).Message);

        using var mixture = new LearnableGaussianMixture(3, 5, seed: 1);
        var width = Assert.Throws<ArgumentException>(() => mixture.LogDensity(zeros(4, 2)));
        Assert.Contains("[B, 5]", width.Message);
        Assert.Contains("[4, 2]", width.Message);
        Assert.Throws<ArgumentException>(() => mixture.Responsibilities(zeros(4, 6)));
        Assert.Contains("3", Assert.Throws<ArgumentOutOfRangeException>(() => mixture.SampleClass(3, 10, generator)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => mixture.SampleClass(-1, 10, generator));
        Assert.Throws<ArgumentOutOfRangeException>(() => mixture.SampleLabelled(-1, generator));
    }
}
