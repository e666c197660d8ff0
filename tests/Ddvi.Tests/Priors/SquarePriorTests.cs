using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Priors;

public class SquarePriorTests : IDisposable
{
    readonly SquarePrior _square = new(SquarePrior.DefaultNoiseLevel, seed: 21, CPU);
    readonly SquarePrior _sharp = new(0.0, seed: 21, CPU);

    public void Dispose()
    {
        _square.Dispose();
        _sharp.Dispose();
    }

    [Fact]
    public void SamplesLieNearThePerimeterWithTheAcrossEdgeStd()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        var (z, _) = PriorAssert.SamplesAreBalanced(_square, 40_000, generator);
        var a = z.to(float64).abs();
        // Away from the corners the coordinate across the edge is ±1 + noise and the other lies in (−0.7, 0.7).
        var across = maximum(a.select(1, 0), a.select(1, 1)) - 1;
        var middle = minimum(a.select(1, 0), a.select(1, 1)).lt(0.7);
        var offsets = across.masked_select(middle);
        Assert.Equal(0.0, offsets.mean().item<double>(), 0.002);
        Assert.Equal(0.06, offsets.std().item<double>(), 0.002);
        Assert.True(across.abs().max().item<double>() < 0.06 * 6);
    }

    [Fact]
    public void SegmentsFollowTheReleasesClockwiseWalk()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(2);
        // Segment c covers perimeter arc [0.8c, 0.8(c+1)) from (−1, 1) clockwise: class 0 is the top edge's left part,
        // class 3 lies on the right edge, class 7 straddles the bottom-left corner.
        (int Class, double MinX, double MaxX, double MinY, double MaxY)[] boxes =
        [
            (0, -1, -0.2, 1, 1),
            (1, -0.2, 0.6, 1, 1),
            (3, 1, 1, -0.2, 0.6),
            (7, -1, -0.6, -1, -0.6),
            (9, -1, -1, 0.2, 1),
        ];
        foreach (var box in boxes)
        {
            var z = _sharp.SampleClass(box.Class, 2000, generator).to(float64);
            var (x, y) = (z.select(1, 0), z.select(1, 1));
            Assert.True(x.ge(box.MinX - 1e-6).all().item<bool>() && x.le(box.MaxX + 1e-6).all().item<bool>(), $"class {box.Class} x");
            Assert.True(y.ge(box.MinY - 1e-6).all().item<bool>() && y.le(box.MaxY + 1e-6).all().item<bool>(), $"class {box.Class} y");
            var onPerimeter = maximum(x.abs(), y.abs());
            Assert.True((onPerimeter - 1).abs().max().item<double>() < 1e-6);
        }
    }

    [Fact]
    public void NoiseIsAcrossTheEdgeOnly()
    {
        using var scope = NewDisposeScope();
        // Same seed: same positions along the perimeter, so the difference is the across-edge noise alone.
        using var g1 = new Generator(3);
        using var g2 = new Generator(3);
        var noisy = _square.SampleClass(1, 20_000, g1).to(float64); // top edge
        var exact = _sharp.SampleClass(1, 20_000, g2).to(float64);
        var difference = noisy - exact;
        Assert.True(difference.select(1, 0).abs().max().item<double>() < 1e-6);
        Assert.Equal(0.06, difference.select(1, 1).std().item<double>(), 0.002);
    }

    [Fact]
    public void SameSeedGivesSameSamples() => PriorAssert.SameSeedSameSamples(_square);

    [Fact]
    public void KernelDensityIsHigherOnThePerimeterThanInside()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(4);
        var (z, _) = _square.SampleLabelled(1000, generator);
        var onEdge = _square.LogDensity(z);
        var inside = _square.LogDensity(z * 0.5);
        Assert.True(onEdge.gt(inside + 5).all().item<bool>());
        Assert.False(_square.HasExactDensity);
        Assert.Contains("bandwidths {0.005, 0.008, 0.01, 0.03, 0.05}", _square.DensityDescription);
        Assert.Equal(0.06, _square.AcrossEdgeStd, 12);
    }

    [Fact]
    public void RejectsBadInput()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(5);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SquarePrior(-1, 0, CPU));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SquarePrior(double.NaN, 0, CPU));
        Assert.Throws<ArgumentOutOfRangeException>(() => _square.SampleClass(11, 3, generator));
        Assert.Throws<ArgumentException>(() => _square.LogDensity(zeros(2)));
    }
}
