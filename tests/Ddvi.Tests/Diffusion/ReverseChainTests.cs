using Ddvi.Diffusion;
using Ddvi.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Diffusion;

public class ReverseChainTests
{
    static Generator Seeded(long seed) => new Generator((ulong)seed, CPU);

    /// <summary>ε̂ = (y_t − √ᾱ_t z)/√(1 − ᾱ_t): the noise that would put y_t on the forward path of the known z.</summary>
    static Func<Tensor, Tensor, Tensor> Oracle(NoiseSchedule schedule, Tensor z)
        => (yt, t) => (yt - schedule.Extract(schedule.SqrtAlphaBar, t) * z) / schedule.Extract(schedule.SqrtOneMinusAlphaBar, t);

    static double MaxAbsDifference(Tensor a, Tensor b) => (a - b).abs().max().item<double>();

    [Theory]
    [InlineData(NoiseScheduleKind.Linear, 40)]
    [InlineData(NoiseScheduleKind.Linear, 1)]
    [InlineData(NoiseScheduleKind.Cosine, 20)]
    public void OracleNoisePredictorLeadsAnyStartBackToItsCleanPoint(NoiseScheduleKind kind, int steps)
    {
        using var schedule = new NoiseSchedule(kind, steps, ScalarType.Float64);
        using var scope = NewDisposeScope();
        var z = randn(16, 2, dtype: ScalarType.Float64, generator: Seeded(1)) * 3;
        var yT = randn(16, 2, dtype: ScalarType.Float64, generator: Seeded(2)) * 5 - 2; // arbitrary, not from r(y_T | z)
        var result = ReverseChain.Run(Oracle(schedule, z), yT, schedule);
        Assert.Null(result.Steps);
        Assert.True(MaxAbsDifference(z, result.Z) < 1e-10, $"chain ended {MaxAbsDifference(z, result.Z):G3} away from z");
    }

    [Fact]
    public void TrajectoryRecordsEveryStepFromTDownToOne()
    {
        const int steps = 6;
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, steps, ScalarType.Float64);
        using var scope = NewDisposeScope();
        var z = randn(4, 2, dtype: ScalarType.Float64, generator: Seeded(3));
        var yT = randn(4, 2, dtype: ScalarType.Float64, generator: Seeded(4));
        var seen = new List<long[]>();
        var oracle = Oracle(schedule, z);
        var result = ReverseChain.Run((yt, t) => { seen.Add(t.data<long>().ToArray()); return oracle(yt, t); }, yT, schedule, keepTrajectory: true);

        var trajectory = result.Steps!;
        Assert.Equal(Enumerable.Range(1, steps).Reverse(), trajectory.Select(s => s.Step));
        Assert.Equal(Enumerable.Range(1, steps).Reverse().Select(t => Enumerable.Repeat((long)t, 4).ToArray()), seen);
        Assert.Same(yT, trajectory[0].Yt);
        for (int i = 0; i < steps; i++)
        {
            var t = full(4, trajectory[i].Step, dtype: ScalarType.Int64);
            var next = GaussianDiffusion.ReverseStep(schedule, trajectory[i].Yt, t, trajectory[i].EpsHat);
            Assert.Equal(0.0, MaxAbsDifference(i + 1 < steps ? trajectory[i + 1].Yt : result.Z, next));
            Assert.Equal(0.0, MaxAbsDifference(oracle(trajectory[i].Yt, t), trajectory[i].EpsHat));
            // Along the oracle chain each state lies on z's forward path with the noise ε̂ (DDIM is deterministic).
            if (i > 0)
                Assert.True(MaxAbsDifference(GaussianDiffusion.Noise(schedule, z, t, trajectory[i].EpsHat), trajectory[i].Yt) < 1e-10);
        }
    }

    [Fact]
    public void ChainIsDifferentiableThroughTheDenoiserAndTheStart()
    {
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, 5);
        using var denoiser = new TimeConditionedMlp(steps: 5, hidden: 16);
        using var scope = NewDisposeScope();
        var yT = randn(8, 2, generator: Seeded(5)).requires_grad_();
        var result = ReverseChain.Run(denoiser.forward, yT, schedule);
        result.Z.square().sum().backward();
        Assert.True(yT.grad!.abs().sum().item<float>() > 0);
        Assert.All(denoiser.parameters(), p => Assert.NotNull(p.grad));
        Assert.True(denoiser.parameters().First().grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void RunLeavesOnlyItsResultsAlive()
    {
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, 10, ScalarType.Float64);
        using var scope = NewDisposeScope();
        var z = randn(4, 2, dtype: ScalarType.Float64, generator: Seeded(6));
        var yT = randn(4, 2, dtype: ScalarType.Float64, generator: Seeded(7));
        var oracle = Oracle(schedule, z);

        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        ReverseChain.Run(oracle, yT, schedule);
        Assert.Equal(before + 1, DisposeScopeManager.Statistics.ThreadTotalLiveCount);

        before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        ReverseChain.Run(oracle, yT, schedule, keepTrajectory: true);
        // z, then per step ε̂ and every y_t except yT, which the caller already owns.
        Assert.Equal(before + 1 + 10 + 9, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void RunRejectsBadInputs()
    {
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, 3);
        using var scope = NewDisposeScope();
        var vector = Assert.Throws<ArgumentException>(() => ReverseChain.Run((y, t) => y, zeros(4), schedule));
        Assert.Contains("[B, d]", vector.Message);
        var wrongWidth = Assert.Throws<InvalidOperationException>(() => ReverseChain.Run((y, t) => zeros(4, 3), zeros(4, 2), schedule));
        Assert.Contains("t = 3", wrongWidth.Message);
        Assert.Throws<ArgumentNullException>(() => ReverseChain.Run(null!, zeros(4, 2), schedule));
    }
}
