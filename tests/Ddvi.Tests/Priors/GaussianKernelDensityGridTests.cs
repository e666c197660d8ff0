using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Priors;

/// <summary>The grid evaluation of a 2-D KDE gives the tensor path's values and gradients wherever the query lies.</summary>
public class GaussianKernelDensityGridTests
{
    private static (Tensor Value, Tensor Gradient) Evaluate(GaussianKernelDensity density, Tensor queries)
    {
        var z = queries.detach().clone().requires_grad_();
        var value = density.LogDensity(z);
        value.sum().backward();
        return (value.detach(), z.grad!.detach());
    }

    [Theory]
    [InlineData(ScalarType.Float32, 1e-4)]
    [InlineData(ScalarType.Float64, 1e-9)]
    public void GridAndTensorPathsAgreeInValueAndGradient(ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        var pinwheel = new PinwheelPrior(CPU);
        using var generator = new Generator(7);
        var centres = pinwheel.SampleLabelled(4_000, generator).Z.to(dtype);
        var onSupport = pinwheel.SampleLabelled(300, generator).Z.to(dtype);
        var queries = cat([
            onSupport,                                                   // on the arms
            onSupport + 0.02 * randn(onSupport.shape, dtype: dtype, generator: generator), // just off them
            1.5 * randn(200, 2, dtype: dtype, generator: generator),     // anywhere near the prior
            centres.narrow(0, 0, 5),                                     // exactly at centres
            tensor(new double[] { 0, 0, 4, 4, -9, 3, 30, -30 }, [4, 2]).to(dtype), // far: the clamp at −1000
        ], 0);
        using var grid = new GaussianKernelDensity(centres);
        using var tensorPath = new GaussianKernelDensity(centres, planarGrid: false);

        var (gridValue, gridGradient) = Evaluate(grid, queries);
        var (tensorValue, tensorGradient) = Evaluate(tensorPath, queries);
        Assert.Equal(dtype, gridValue.dtype);
        double valueError = ((gridValue - tensorValue).abs() / (1 + tensorValue.abs())).max().to(float64).item<double>();
        double gradientError = ((gridGradient - tensorGradient).abs() / (1 + tensorGradient.abs())).max().to(float64).item<double>();
        Assert.True(valueError < tolerance, $"log density differs by {valueError:E2} (relative)");
        Assert.True(gradientError < tolerance, $"gradient differs by {gradientError:E2} (relative)");
        // The far points are clamped, with no gradient, on both paths.
        Assert.Equal(-1000.0, gridValue[-1].to(float64).item<double>());
        Assert.Equal(0.0, gridGradient[-1].abs().sum().to(float64).item<double>());
    }

    [Fact]
    public void WithoutGradientTheGridGivesAPlainTensor()
    {
        using var scope = NewDisposeScope();
        using var density = new GaussianKernelDensity(randn(100, 2));
        var z = randn(10, 2, requires_grad: true);
        using (no_grad()) Assert.False(density.LogDensity(z).requires_grad);
        Assert.True(density.LogDensity(z).requires_grad);
        Assert.False(density.LogDensity(randn(10, 2)).requires_grad);
    }
}
