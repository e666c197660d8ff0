using Ddvi.Likelihoods;
using static Ddvi.Tests.Likelihoods.LikelihoodFixtures;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Tests.Likelihoods;

public class GaussianLikelihoodTests
{
    static double NormalLogDensity(double x, double mu, double sigma)
        => -0.5 * Math.Log(2 * Math.PI) - Math.Log(sigma) - (x - mu) * (x - mu) / (2 * sigma * sigma);

    [Fact]
    public void FixedScaleLogProbIsTheClosedForm()
    {
        using var scope = NewDisposeScope();
        using var likelihood = new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 0.7);
        var z = Latents();
        var x = ValidData("gaussian");
        var mu = ToArray(likelihood.Decode(z));
        var xs = ToArray(x);
        var logP = ToVector(likelihood.LogProb(x, z));
        for (int i = 0; i < 5; i++)
        {
            double expected = 0;
            for (int j = 0; j < DataDim; j++) expected += NormalLogDensity(xs[i, j], mu[i, j], 0.7);
            Assert.Equal(expected, logP[i], 12);
        }
        Assert.False(likelihood.LearnsScale);
        Assert.Equal([0.7f, 0.7f, 0.7f, 0.7f], likelihood.Sigma().data<float>().ToArray());
    }

    [Fact]
    public void LearnedScaleLogProbIsTheClosedFormPerFeature()
    {
        using var scope = NewDisposeScope();
        using var likelihood = new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 2.0, learnScale: true);
        likelihood.to(float64);
        double[] sigmas = [0.5, 1.0, 2.0, 3.5];
        using (no_grad())
            likelihood.get_parameter("log_sigma")!.copy_(tensor(sigmas.Select(v => Math.Log(v)).ToArray(), dtype: float64));
        var z = Latents();
        var x = ValidData("gaussian");
        var mu = ToArray(likelihood.Decode(z));
        var xs = ToArray(x);
        var logP = ToVector(likelihood.LogProb(x, z));
        for (int i = 0; i < 5; i++)
        {
            double expected = 0;
            for (int j = 0; j < DataDim; j++) expected += NormalLogDensity(xs[i, j], mu[i, j], sigmas[j]);
            Assert.Equal(expected, logP[i], 12);
        }
        Assert.True(likelihood.LearnsScale);
        AssertClose(sigmas, ToVector(likelihood.Sigma()), 12);
    }

    [Fact]
    public void LearnedLogSigmaIsAParameterWithGradientAndStartsAtTheGivenSigma()
    {
        using var scope = NewDisposeScope();
        using var learned = new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 1.5, learnScale: true);
        var names = learned.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Equal(new HashSet<string> { "decoder.weight", "decoder.bias", "log_sigma" }, names);
        var logSigma = learned.get_parameter("log_sigma")!;
        Assert.Equal(new long[] { DataDim }, logSigma.shape);
        Assert.True(logSigma.allclose(full(DataDim, Math.Log(1.5), dtype: float32)));

        learned.LogProb(ValidData("gaussian"), Latents()).sum().backward();
        Assert.NotNull(logSigma.grad);
        Assert.True(logSigma.grad!.abs().sum().item<float>() > 0);
        Assert.True(learned.Decoder.parameters().All(p => p.grad is not null));

        using var defaultSigma = new GaussianLikelihood(Decoder(), LatentDim, DataDim, learnScale: true);
        Assert.True(defaultSigma.get_parameter("log_sigma")!.eq(0).all().item<bool>());

        using var fixedSigma = new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 1.5);
        Assert.Equal(new HashSet<string> { "decoder.weight", "decoder.bias" }, fixedSigma.named_parameters().Select(p => p.name).ToHashSet());
        Assert.Equal(new HashSet<string> { "decoder.weight", "decoder.bias" }, fixedSigma.state_dict().Keys.ToHashSet());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SamplesHaveTheDecodedMeanAndVarianceSigmaSquared(bool learnScale)
    {
        using var scope = NewDisposeScope();
        using var likelihood = new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 0.8, learnScale: learnScale);
        using var generator = new Generator(21);
        var z = Latents(1).repeat(40_000, 1);
        var x = likelihood.Sample(z, generator);
        Assert.Equal(ScalarType.Float64, x.dtype);
        Assert.False(x.requires_grad);
        var mean = likelihood.Mean(z.narrow(0, 0, 1));
        // Standard errors: mean 0.8/200 = 0.004, variance 0.64·√(2/40000) ≈ 0.0045.
        Assert.True((x.mean([0L], keepdim: true) - mean).abs().max().item<double>() < 0.02);
        Assert.True((x.var(0) - 0.64).abs().max().item<double>() < 0.025);
    }

    [Fact]
    public void StateDictRoundTripOfALearnedScaleReproducesLogProbExactly()
    {
        using var scope = NewDisposeScope();
        using var folder = new TempFolder();
        using var trained = new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 1.0, learnScale: true);
        trained.to(float32);
        using (no_grad())
        {
            trained.get_parameter("log_sigma")!.copy_(tensor(new[] { -0.3f, 0.2f, 0.9f, -1.1f }));
            trained.Decoder.parameters().First().add_(0.125);
        }
        var z = Latents().to(float32);
        var x = ValidData("gaussian").to(float32);
        var expected = trained.LogProb(x, z);

        using var copy = new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 3.0, learnScale: true);
        copy.to(float32);
        Assert.False(Identical(copy.LogProb(x, z), expected));
        copy.load_state_dict(trained.state_dict());
        Assert.True(Identical(copy.LogProb(x, z), expected));

        trained.save(folder["gaussian.bin"]);
        using var loaded = new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 0.1, learnScale: true);
        loaded.to(float32);
        loaded.load(folder["gaussian.bin"]);
        Assert.True(Identical(loaded.LogProb(x, z), expected));
        Assert.Equal(ToVector(trained.Sigma()), ToVector(loaded.Sigma()));
    }

    // The fixed-σ reconstruction term goes through libtorch's mse_loss: its value and its gradient with respect to the
    // decoder output must be the closed form, and must not depend on the path when σ is learned (element-wise form).
    [Theory]
    [InlineData(ScalarType.Float32, 0.7, false)]
    [InlineData(ScalarType.Float64, 0.7, false)]
    [InlineData(ScalarType.Float64, 1.0, false)]
    [InlineData(ScalarType.Float64, 0.7, true)]
    public void MeanNegativeLogProbPerFeatureAndItsGradientAreTheClosedForm(ScalarType type, double sigma, bool learnScale)
    {
        using var scope = NewDisposeScope();
        using var likelihood = new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: sigma, learnScale: learnScale);
        likelihood.to(type);
        var generator = new Generator(11);
        var mean = randn([6, DataDim], dtype: type, generator: generator).requires_grad_(true);
        var x = randn([6, DataDim], dtype: type, generator: generator);
        var value = likelihood.MeanNegativeLogProbPerFeature(mean, x);
        value.backward();
        if (learnScale) sigma = ToVector(likelihood.Sigma())[0]; // a learned σ is stored as its float32 logarithm
        double[,] mu = ToArray(mean.detach()), xs = ToArray(x), grad = ToArray(mean.grad!);
        double expected = 0, n = 6.0 * DataDim;
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < DataDim; j++)
                expected -= NormalLogDensity(xs[i, j], mu[i, j], sigma) / n;
        int digits = type == ScalarType.Float32 ? 5 : 12;
        Assert.Equal(0, value.dim());
        Assert.Equal(expected, value.to(ScalarType.Float64).item<double>(), digits);
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < DataDim; j++)
                Assert.Equal((mu[i, j] - xs[i, j]) / (sigma * sigma * n), grad[i, j], digits);
    }

    [Fact]
    public void RejectsANonPositiveSigma()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: -1, learnScale: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: double.PositiveInfinity));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: double.NaN));
    }
}
