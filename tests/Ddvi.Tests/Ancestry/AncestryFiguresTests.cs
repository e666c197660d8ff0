using Ddvi.Plotting;

namespace Ddvi.Tests.Ancestry;

public class AncestryFiguresTests
{
    private static float[] Normal(int n, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble())))];
    }

    [Fact]
    public void WithoutFarValuesTheAxesSpanEveryValue()
    {
        var values = Normal(1000, 1);
        Assert.Equal((values.Min(), values.Max()), AncestryFigures.ViewLimits(values));
        Assert.Equal((2.0, 2.0), AncestryFigures.ViewLimits([2f, 2f, float.NaN]));
        Assert.Equal((-1.0, 1.0), AncestryFigures.ViewLimits([float.NaN]));
    }

    [Fact]
    public void FarValuesFallOutsideTheAxesWhichSpanTheBulk()
    {
        // 1,000 standard normal values and three outliers (an encoder's far samples): the axes keep to the bulk's
        // 0.5th–99.5th percentiles (about ±2.6) widened by a quarter of that width (1.3 on each side).
        float[] values = [.. Normal(1000, 2), 9f, 10f, -40f];
        var (low, high) = AncestryFigures.ViewLimits(values);
        Assert.InRange(low, -4.6, -3.4);
        Assert.InRange(high, 3.4, 4.6);
        Assert.Equal(3, values.Count(v => v < low || v > high));
    }

    [Fact]
    public void AFigureWithFarSamplesIsWritten()
    {
        using var folder = new TempFolder();
        float[] x = [.. Normal(300, 3), 50f], y = [.. Normal(300, 4), 0f];
        int[] labels = [.. Enumerable.Range(0, 301).Select(i => i % 3)];
        string path = folder["map.png"];
        AncestryFigures.SaveLatents(path, x, y, labels, ["A", "B", "C"], "test", centres: ([0f, 1f], [0f, 1f]));
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 1000);
        Assert.Equal(0x89, bytes[0]); // PNG signature
        Assert.Equal((byte)'P', bytes[1]);
    }
}
