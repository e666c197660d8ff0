using Ddvi.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Diffusion;

public class NoiseScheduleTests
{
    static double[] Values(Tensor table) => table.to(ScalarType.Float64).data<double>().ToArray();

    static void AssertClose(double[] expected, double[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"row {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }

    [Fact]
    public void LinearScheduleWithThreeStepsMatchesHandComputation()
    {
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, 3, ScalarType.Float64);
        // β = linspace(1e-4, 0.02, 3) = (1e-4, 0.01005, 0.02); row 0 is the ᾱ_0 := 1 state.
        double ab1 = 0.9999, ab2 = 0.9999 * 0.98995, ab3 = 0.9999 * 0.98995 * 0.98;
        AssertClose([0, 1e-4, 0.01005, 0.02], Values(schedule.Beta), 1e-15);
        AssertClose([1, 0.9999, 0.98995, 0.98], Values(schedule.Alpha), 1e-15);
        AssertClose([1, ab1, ab2, ab3], Values(schedule.AlphaBar), 1e-15);
        AssertClose([1, 1, ab1, ab2], Values(schedule.AlphaBarPrev), 1e-15);
        AssertClose([1, Math.Sqrt(ab1), Math.Sqrt(ab2), Math.Sqrt(ab3)], Values(schedule.SqrtAlphaBar), 1e-15);
        AssertClose([0, Math.Sqrt(1 - ab1), Math.Sqrt(1 - ab2), Math.Sqrt(1 - ab3)], Values(schedule.SqrtOneMinusAlphaBar), 1e-15);
        AssertClose([1, 1, Math.Sqrt(ab1), Math.Sqrt(ab2)], Values(schedule.SqrtAlphaBarPrev), 1e-15);
        AssertClose([0, 0, Math.Sqrt(1 - ab1), Math.Sqrt(1 - ab2)], Values(schedule.SqrtOneMinusAlphaBarPrev), 1e-15);
        AssertClose(
            [1, 1, 0.01005 * Math.Sqrt(ab1) / (1 - ab2), 0.02 * Math.Sqrt(ab2) / (1 - ab3)],
            Values(schedule.PosteriorW0), 1e-12);
        AssertClose(
            [0, 0, Math.Sqrt(0.98995) * (1 - ab1) / (1 - ab2), Math.Sqrt(0.98) * (1 - ab2) / (1 - ab3)],
            Values(schedule.PosteriorWt), 1e-12);
        AssertClose(
            [0, 0, 0.01005 * (1 - ab1) / (1 - ab2), 0.02 * (1 - ab2) / (1 - ab3)],
            Values(schedule.PosteriorVariance), 1e-14);
    }

    [Theory]
    [InlineData(20, 0.82)]
    [InlineData(40, 0.67)]
    public void LinearScheduleKeepsAlphaBarTFarFromZero(int steps, double expected)
    {
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, steps, ScalarType.Float64);
        Assert.Equal(expected, Values(schedule.AlphaBar)[steps], 2);
        AssertClose([1e-4, 0.02], [Values(schedule.Beta)[1], Values(schedule.Beta)[steps]], 1e-15);
    }

    [Fact]
    public void SingleStepLinearScheduleUsesTheStartBeta()
    {
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, 1, ScalarType.Float64);
        AssertClose([0, 1e-4], Values(schedule.Beta), 1e-18);
    }

    [Theory]
    [InlineData(NoiseScheduleKind.Linear, 40)]
    [InlineData(NoiseScheduleKind.Cosine, 1)]
    [InlineData(NoiseScheduleKind.Cosine, 20)]
    [InlineData(NoiseScheduleKind.Cosine, 1000)]
    public void TablesSatisfyTheirDefiningIdentities(NoiseScheduleKind kind, int steps)
    {
        using var schedule = new NoiseSchedule(kind, steps, ScalarType.Float64);
        var beta = Values(schedule.Beta);
        var alphaBar = Values(schedule.AlphaBar);
        var w0 = Values(schedule.PosteriorW0);
        var wt = Values(schedule.PosteriorWt);
        var variance = Values(schedule.PosteriorVariance);
        var sqrtAlphaBar = Values(schedule.SqrtAlphaBar);
        var sqrtOneMinus = Values(schedule.SqrtOneMinusAlphaBar);
        var sqrtAlphaBarPrev = Values(schedule.SqrtAlphaBarPrev);
        var sqrtOneMinusPrev = Values(schedule.SqrtOneMinusAlphaBarPrev);

        Assert.Equal(1.0, alphaBar[0]);
        Assert.Equal(0.0, variance[1], 15);
        Assert.Equal(1.0, w0[1], 12);
        Assert.Equal(0.0, wt[1], 15);
        for (int t = 1; t <= steps; t++)
        {
            Assert.InRange(beta[t], 1e-12, NoiseSchedule.CosineMaxBeta);
            Assert.True(alphaBar[t] < alphaBar[t - 1] && alphaBar[t] > 0, $"ᾱ must decrease strictly inside (0, 1], row {t}");
            Assert.Equal(1.0, sqrtAlphaBar[t] * sqrtAlphaBar[t] + sqrtOneMinus[t] * sqrtOneMinus[t], 12);
            Assert.Equal(1.0, sqrtAlphaBarPrev[t] * sqrtAlphaBarPrev[t] + sqrtOneMinusPrev[t] * sqrtOneMinusPrev[t], 12);
            // Mean of r(y_{t−1}|y_t, y_0) with y_t = √ᾱ_t y_0 matches √ᾱ_{t−1} y_0 (noise-free point stays on the path).
            Assert.Equal(sqrtAlphaBarPrev[t], w0[t] + wt[t] * sqrtAlphaBar[t], 10);
            // Total variance: wt_t² (1 − ᾱ_t) + σ̃²_t = 1 − ᾱ_{t−1}.
            Assert.Equal(1 - alphaBar[t - 1], wt[t] * wt[t] * (1 - alphaBar[t]) + variance[t], 10);
        }
    }

    [Fact]
    public void CosineScheduleFollowsNicholDhariwal()
    {
        const int steps = 10;
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Cosine, steps, ScalarType.Float64);
        static double F(double t) => Math.Pow(Math.Cos((t / steps + 0.008) / 1.008 * Math.PI / 2), 2);
        var alphaBar = Values(schedule.AlphaBar);
        var beta = Values(schedule.Beta);
        for (int t = 1; t < steps; t++)
            Assert.Equal(F(t) / F(0), alphaBar[t], 12);
        // f(T) = cos²(π/2) = 0, so the last β is the cap.
        Assert.Equal(0.999, beta[steps], 15);
    }

    [Fact]
    public void ExtractReturnsOneColumnPerTimestep()
    {
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, 5, ScalarType.Float64);
        using var scope = NewDisposeScope();
        var t = tensor(new long[] { 5, 1, 3, 3 });
        var column = schedule.Extract(schedule.AlphaBar, t);
        Assert.Equal(new long[] { 4, 1 }, column.shape);
        var alphaBar = Values(schedule.AlphaBar);
        AssertClose([alphaBar[5], alphaBar[1], alphaBar[3], alphaBar[3]], column.flatten().data<double>().ToArray(), 0);
    }

    [Fact]
    public void ExtractRejectsBadTimestepsAndForeignTables()
    {
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, 5);
        using var scope = NewDisposeScope();
        var zero = Assert.Throws<ArgumentOutOfRangeException>(() => schedule.Extract(schedule.Beta, tensor(new long[] { 0, 2 })));
        Assert.Contains("1..5", zero.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => schedule.Extract(schedule.Beta, tensor(new long[] { 6 })));
        var wrongType = Assert.Throws<ArgumentException>(() => schedule.Extract(schedule.Beta, tensor(new int[] { 1 })));
        Assert.Contains("int64", wrongType.Message);
        Assert.Throws<ArgumentException>(() => schedule.Extract(schedule.Beta, tensor(new long[] { 1, 2 }).reshape(2, 1)));
        var foreign = Assert.Throws<ArgumentException>(() => schedule.Extract(zeros(4), tensor(new long[] { 1 })));
        Assert.Contains("[6]", foreign.Message);
    }

    [Fact]
    public void ConstructorRejectsBadOptions()
    {
        var steps = Assert.Throws<ArgumentOutOfRangeException>(() => new NoiseSchedule(NoiseScheduleKind.Linear, 0));
        Assert.Equal("steps", steps.ParamName);
        Assert.Throws<ArgumentException>(() => new NoiseSchedule(NoiseScheduleKind.Linear, 10, ScalarType.Int64));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NoiseSchedule((NoiseScheduleKind)7, 10));
    }

    [Fact]
    public void TablesAreNonPersistentBuffersThatMoveWithTheModule()
    {
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, 20);
        Assert.Empty(schedule.state_dict());
        Assert.Empty(schedule.parameters());
        Assert.Equal(ScalarType.Float32, schedule.DType);
        using var builtInFloat64 = new NoiseSchedule(NoiseScheduleKind.Linear, 20, ScalarType.Float64);

        // A cast rebuilds the tables from their float64 values: exact, not the float32 values widened.
        schedule.to(ScalarType.Float64);
        Assert.Equal(Values(builtInFloat64.AlphaBar), Values(schedule.AlphaBar));
        Assert.Equal(Values(builtInFloat64.PosteriorVariance), Values(schedule.PosteriorVariance));
        Assert.Equal(ScalarType.Float64, schedule.DType);
        Assert.Equal(ScalarType.Float64, schedule.PosteriorVariance.dtype);
        Assert.Equal(ScalarType.Float64, schedule.SqrtOneMinusAlphaBarPrev.dtype);
        Assert.Empty(schedule.state_dict());

        schedule.to(CPU);
        Assert.Equal(DeviceType.CPU, schedule.Device.type);

        using var stream = new MemoryStream();
        schedule.save(stream);
        // save() closes the stream; the bytes written are only the entry count (zero).
        Assert.Equal(new byte[] { 0 }, stream.ToArray());
    }

    [Fact]
    public void DisposingTheScheduleFreesItsTables()
    {
        var schedule = new NoiseSchedule(NoiseScheduleKind.Cosine, 8);
        schedule.to(ScalarType.Float64);
        var tables = new[] { schedule.Beta, schedule.AlphaBar, schedule.PosteriorW0, schedule.PosteriorVariance };
        Assert.All(tables, table => Assert.False(table.IsInvalid));
        schedule.Dispose();
        Assert.All(tables, table => Assert.True(table.IsInvalid));
    }
}
