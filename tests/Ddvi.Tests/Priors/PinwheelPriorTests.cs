using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Priors;

public class PinwheelPriorTests
{
    readonly PinwheelPrior _prior = new(CPU);

    [Fact]
    public void SamplesHaveTheArmRadiiAndBalancedClasses()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        var (z, classes) = PriorAssert.SamplesAreBalanced(_prior, 20_000, generator);
        var radius = z.to(float64).norm(1);
        // |z| = √(r² + s²) ≈ r ~ N(1, 0.15²) since s is ~0.005.
        Assert.Equal(1.0, radius.mean().item<double>(), 0.005);
        Assert.Equal(0.15, radius.std().item<double>(), 0.005);
        AssertOnArms(z, classes);
    }

    [Fact]
    public void SampleClassStaysOnItsArm()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(2);
        for (int c = 0; c < PinwheelPrior.ArmCount; c++)
        {
            var z = _prior.SampleClass(c, 500, generator);
            Assert.Equal(new[] { 500L, 2L }, z.shape);
            AssertOnArms(z, full([500], c, dtype: int64));
        }
    }

    [Fact]
    public void SameSeedGivesSameSamples() => PriorAssert.SameSeedSameSamples(_prior);

    [Fact]
    public void LogDensityMatchesTheChangeOfVariablesAtKnownPreimages()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(3);
        const int n = 4000;
        var arm = randint(0, 10, [n], dtype: int64, generator: generator).to(float64);
        var r = (1 + 0.15 * randn([n], dtype: float64, generator: generator)).clamp(0.5, 2.0);
        var s = 0.005 * randn([n], dtype: float64, generator: generator).clamp(-4, 4);
        var angle = arm * (2 * Math.PI / 10) + 0.25 * r.exp();
        var z = stack([r * angle.cos() - s * angle.sin(), r * angle.sin() + s * angle.cos()], 1);

        // Beyond r ≥ 0.5 the other arms are ≥ 50 tangential std away, so only the own arm contributes.
        var expected = -0.5 * ((r - 1) / 0.15).square() - Math.Log(0.15 * Math.Sqrt(2 * Math.PI))
                       - 0.5 * (s / 0.005).square() - Math.Log(0.005 * Math.Sqrt(2 * Math.PI))
                       - (1 - 0.25 * r.exp() * s).abs().log() - Math.Log(10);
        var actual = _prior.LogDensity(z).to(float64);
        double maxError = (actual - expected).abs().max().item<double>();
        Assert.True(maxError < 1e-4, $"log density differs from the change of variables by {maxError}");
    }

    [Fact]
    public void ExactDensityIntegratesToOne()
    {
        // Midpoint rule with step 0.006 ≈ the 0.005 across-arm std (Poisson summation: a Gaussian profile is then integrated to ~1e−6),
        // refined only in 0.024-wide cells near the arms: a cell whose centre is ≤ 0.017 (3.4 std) from an arm
        // has log p ≥ max − 6, so every cell with mass passes the −30 threshold. The box [−2.4, 2.4]² holds all but ~1e−20
        // of the mass (|z| > 2.4 is 9 radial std).
        double integral = PriorAssert.RefinedGridIntegral(_prior, 2.4, 0.024, 4, keepAbove: -30);
        Assert.True(Math.Abs(integral - 1) < 1e-3, $"∫ p(z) dz = {integral}, expected 1 ± 1e-3");
    }

    [Fact]
    public void ExactDensityAgreesWithAKernelEstimateOfSamples()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(4);
        var (centres, _) = _prior.SampleLabelled(20_000, generator);
        using var kde = new GaussianKernelDensity(centres, [0.005]);
        var (queries, _) = _prior.SampleLabelled(2_000, generator);
        var exact = _prior.LogDensity(queries);
        var estimate = kde.LogDensity(queries);
        double rho = PriorAssert.RankCorrelation(exact, estimate);
        Assert.True(rho > 0.8, $"rank correlation of exact and KDE log densities is {rho}");
        // On average the smoothed estimate and the exact density agree within a factor e.
        double meanGap = (exact - estimate).mean().to(float64).item<double>();
        Assert.True(Math.Abs(meanGap) < 1.0, $"mean log-density gap exact − KDE is {meanGap}");
    }

    [Fact]
    public void GradientIsFiniteAndMatchesFiniteDifferences()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(5);
        var (onArms, _) = _prior.SampleLabelled(200, generator);
        var offArms = (rand([200, 2], generator: generator) * 6 - 3).to(float32);
        var z = cat([onArms.to(float64), offArms.to(float64), zeros(1, 2, dtype: float64)], 0).requires_grad_();

        _prior.LogDensity(z).sum().backward();
        var gradient = z.grad!;
        Assert.True(gradient.isfinite().all().item<bool>(), "gradient of log p must be finite everywhere");

        // Directional finite differences along a random direction, on the arms where the density matters.
        using var _ = no_grad();
        var direction = randn([200, 2], dtype: float64, generator: generator);
        direction = direction / direction.norm(1, keepdim: true);
        var point = onArms.to(float64);
        const double h = 1e-5;
        var numeric = (_prior.LogDensity(point + h * direction).to(float64) - _prior.LogDensity(point - h * direction).to(float64)) / (2 * h);
        var analytic = (gradient.narrow(0, 0, 200) * direction).sum(1);
        var tolerance = 0.02 * analytic.abs().clamp_min(5);
        Assert.True((numeric - analytic).abs().le(tolerance).all().item<bool>(),
            $"largest gradient mismatch {(numeric - analytic).abs().max().item<double>()}");
    }

    /// <summary>The host evaluation (the CPU default) against the tensor path it was derived from, on and off the arms.</summary>
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    public void HostAndTensorPathsAgreeInValueAndGradient(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(8);
        var tensorPath = new PinwheelPrior(CPU, hostDensity: false);
        var (onArms, _) = _prior.SampleLabelled(300, generator);
        var queries = cat([
            onArms,                                                              // on the arms
            onArms + 0.02 * randn(onArms.shape, generator: generator),           // just off them
            1.5 * randn(300, 2, generator: generator),                           // anywhere near the prior
            tensor(new float[] { 0, 0, 1e-3f, 0, 0.3f, -0.2f, 4, 4, -9, 3, 30, -30, 0, 2.6f }, [7, 2]), // centre, far, tiny
        ], 0).to(dtype);

        var (hostValue, hostGradient) = ValueAndGradient(_prior, queries);
        var (tensorValue, tensorGradient) = ValueAndGradient(tensorPath, queries);

        Assert.Equal(ScalarType.Float32, hostValue.dtype);
        Assert.Equal(dtype, hostGradient.dtype);
        var valueGap = (hostValue - tensorValue).abs() / tensorValue.abs().clamp_min(1);
        Assert.True(valueGap.max().item<float>() < 1e-6, $"largest relative value gap {valueGap.max().item<float>()}");
        var gradientGap = (hostGradient - tensorGradient).abs() / tensorGradient.abs().clamp_min(1);
        double tolerance = dtype == ScalarType.Float64 ? 1e-8 : 1e-5;
        Assert.True(gradientGap.max().to(float64).item<double>() < tolerance,
            $"largest relative gradient gap {gradientGap.max().to(float64).item<double>()} (tolerance {tolerance})");

        // No gradient wanted: the same values, and no graph.
        using (no_grad())
        {
            var plain = _prior.LogDensity(queries);
            Assert.False(plain.requires_grad);
            Assert.Equal(0, (plain - hostValue).abs().max().item<float>());
        }
    }

    static (Tensor Value, Tensor Gradient) ValueAndGradient(IPrior prior, Tensor queries)
    {
        var z = queries.detach().clone().requires_grad_();
        var value = prior.LogDensity(z);
        value.sum().backward();
        return (value.detach(), z.grad!.detach());
    }

    [Fact]
    public void DescribesItsExactDensity()
    {
        Assert.True(_prior.HasExactDensity);
        Assert.Equal("pinwheel", _prior.Name);
        Assert.Equal(10, _prior.ClassCount);
        Assert.Contains("exact", _prior.DensityDescription);
    }

    [Fact]
    public void RejectsBadInput()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(6);
        Assert.Throws<ArgumentOutOfRangeException>(() => _prior.SampleClass(10, 5, generator));
        Assert.Throws<ArgumentOutOfRangeException>(() => _prior.SampleClass(-1, 5, generator));
        Assert.Throws<ArgumentOutOfRangeException>(() => _prior.SampleLabelled(-1, generator));
        var error = Assert.Throws<ArgumentException>(() => _prior.LogDensity(zeros(4, 3)));
        Assert.Contains("[B, 2]", error.Message);
        Assert.Throws<ArgumentException>(() => _prior.LogDensity(zeros(8)));
        Assert.Throws<ArgumentException>(() => _prior.LogDensity(zeros([4, 2], dtype: int64)));
    }

    /// <summary>Polar angle − 0.25·e^{|z|} lands on 2πc/10 (up to the small across-arm offset s/r).</summary>
    static void AssertOnArms(Tensor z, Tensor classes)
    {
        var z64 = z.to(float64);
        var radius = z64.norm(1);
        var angle = atan2(z64.select(1, 1), z64.select(1, 0));
        var offset = PriorAssert.WrapAngle(angle - 0.25 * radius.exp() - classes.to(float64) * (2 * Math.PI / 10));
        var far = radius.gt(0.4);
        Assert.True(far.to(float64).mean().item<double>() > 0.99);
        double worst = offset.abs().masked_select(far).max().item<double>();
        Assert.True(worst < 0.1, $"a sample lies {worst} rad off its arm (arms are 0.63 rad apart)");
    }
}
