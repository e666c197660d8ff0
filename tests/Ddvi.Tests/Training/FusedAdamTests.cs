using Ddvi.FastPaths;
using Ddvi.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Tests.Training;

public class FusedAdamTests
{
    /// <summary>Parameters of several sizes: a scalar-like one, one below the parallel threshold, one above it whose length is not a multiple of the vector width.</summary>
    private static Parameter[] MakeParameters(ScalarType dtype, long seed)
    {
        using var generator = new Generator((ulong)seed);
        return
        [
            new Parameter(randn([3], dtype: dtype, generator: generator)),
            new Parameter(randn([64, 33], dtype: dtype, generator: generator)),
            new Parameter(randn([301, 299], dtype: dtype, generator: generator)),
        ];
    }

    /// <summary>Sets every gradient to a fresh seeded draw, scaled so the moments see a range of magnitudes.</summary>
    private static void SetGradients(Parameter[] parameters, int step)
    {
        using var generator = new Generator((ulong)(1000 + step));
        foreach (var p in parameters)
            p.grad = (randn(p.shape, dtype: p.dtype, generator: generator) * Math.Pow(10, step % 3 - 1)).DetachFromDisposeScope();
    }

    private static void AssertClose(Tensor expected, Tensor actual, double tolerance, string what)
    {
        using var scope = NewDisposeScope();
        var (e, a) = (expected.to(float64), actual.to(float64));
        double error = (e - a).abs().max().item<double>() / Math.Max(1e-12, e.abs().max().item<double>());
        Assert.True(error < tolerance, $"{what}: relative difference {error:E2}");
    }

    private static void Train(optim.Optimizer optimizer, Parameter[] parameters, int fromStep, int toStep)
    {
        for (int step = fromStep; step < toStep; step++)
        {
            using var scope = NewDisposeScope();
            SetGradients(parameters, step);
            if (step == 7)
                foreach (var group in optimizer.ParamGroups) group.LearningRate *= 0.5;
            optimizer.step();
        }
    }

    [Theory]
    [InlineData(ScalarType.Float32, 2e-6)]
    [InlineData(ScalarType.Float64, 1e-14)] // float64 takes the tensor-op step: the same as Adam to rounding.
    public void StepsLikeTorchSharpsAdam(ScalarType dtype, double tolerance)
    {
        var plain = MakeParameters(dtype, 1);
        var fused = MakeParameters(dtype, 1);
        using var adam = optim.Adam(plain, lr: 1e-2);
        using var fusedAdam = new FusedAdam(fused, lr: 1e-2);
        Train(adam, plain, 0, 15);
        Train(fusedAdam, fused, 0, 15);

        for (int i = 0; i < plain.Length; i++)
            AssertClose(plain[i], fused[i], tolerance, $"parameter {i} ({plain[i].numel()} elements)");
        var plainState = adam.state_dict().State.Cast<Adam.State>().ToList();
        var fusedState = fusedAdam.state_dict().State.Cast<Adam.State>().ToList();
        for (int i = 0; i < plain.Length; i++)
        {
            Assert.Equal(15, fusedState[i].step);
            AssertClose(plainState[i].exp_avg, fusedState[i].exp_avg, tolerance, $"first moment {i}");
            AssertClose(plainState[i].exp_avg_sq, fusedState[i].exp_avg_sq, tolerance, $"second moment {i}");
        }
        // The parameters moved: the comparison is not between untouched copies.
        var start = MakeParameters(dtype, 1);
        Assert.True((start[2] - fused[2]).abs().max().to(float64).item<double>() > 1e-2);
    }

    [Fact]
    public void TheTensorOpStepWithWeightDecayAmsgradAndMaximiseStepsLikeTorchSharpsAdam()
    {
        // A second group with the options the one-pass sweep does not implement sends every group to the tensor-op step,
        // Ddvi's own (TorchSharp's makes temporary scalars); it must update as TorchSharp's does.
        var plain = MakeParameters(ScalarType.Float32, 4);
        var fused = MakeParameters(ScalarType.Float32, 4);
        using var adam = optim.Adam(plain[..1], lr: 1e-2);
        adam.add_param_group(new Adam.ParamGroup(plain[1..], lr: 2e-2, weight_decay: 0.1, amsgrad: true, maximize: true));
        using var fusedAdam = new FusedAdam(fused[..1], lr: 1e-2);
        fusedAdam.add_param_group(new Adam.ParamGroup(fused[1..], lr: 2e-2, weight_decay: 0.1, amsgrad: true, maximize: true));
        Train(adam, plain, 0, 15);
        Train(fusedAdam, fused, 0, 15);

        for (int i = 0; i < plain.Length; i++)
            AssertClose(plain[i], fused[i], 1e-6, $"parameter {i}");
        var plainState = adam.state_dict().State.Cast<Adam.State>().ToList();
        var fusedState = fusedAdam.state_dict().State.Cast<Adam.State>().ToList();
        for (int i = 1; i < plain.Length; i++)
            AssertClose(plainState[i].max_exp_avg_sq, fusedState[i].max_exp_avg_sq, 1e-6, $"AMSGrad maximum {i}");
        var start = MakeParameters(ScalarType.Float32, 4);
        for (int i = 0; i < plain.Length; i++)
            Assert.True((start[i] - fused[i]).abs().max().item<float>() > 1e-2, $"parameter {i} moved");
    }

    [Fact]
    public void MomentsBelowTheNormalRangeAreStoredAsZero()
    {
        // A weight whose gradient stays 0: m shrinks by β₁ each step and would become subnormal (slow on x86).
        using var scope = NewDisposeScope();
        var parameter = new Parameter(ones(200_000));
        using var optimizer = new FusedAdam([parameter], lr: 1e-3);
        parameter.grad = full(200_000, 1e-3f);
        optimizer.step();
        var before = parameter.detach().clone();
        var state = (Adam.State)optimizer.state_dict().State[0];
        state.exp_avg.fill_(1.25e-38f);     // normal, but β₁ times it is not
        state.exp_avg_sq.fill_(1.176e-38f); // likewise with β₂
        parameter.grad = zeros(200_000);
        optimizer.step();

        Assert.True(state.exp_avg.eq(0).all().item<bool>());
        Assert.True(state.exp_avg_sq.eq(0).all().item<bool>());
        // Plain Adam would have moved each weight by ≈ lr·1.1e-38/ε ≈ 1e-33: nothing at float32's resolution of 1.
        Assert.True(parameter.detach().equal(before).all().item<bool>());
    }

    [Fact]
    public void SkipsParametersWithoutGradient()
    {
        var parameters = MakeParameters(ScalarType.Float32, 2);
        var before = parameters.Select(p => p.detach().clone()).ToArray();
        using var optimizer = new FusedAdam(parameters, lr: 1e-2);
        parameters[0].grad = ones_like(parameters[0]);
        optimizer.step();
        Assert.False(parameters[0].equal(before[0]).all().item<bool>());
        Assert.True(parameters[1].equal(before[1]).all().item<bool>());
        Assert.True(parameters[2].equal(before[2]).all().item<bool>());
    }

    [Fact]
    public void StateSavedMidwayResumesExactlyAndPlainAdamStateIsAccepted()
    {
        var uninterrupted = MakeParameters(ScalarType.Float32, 3);
        using (var optimizer = new FusedAdam(uninterrupted, lr: 1e-2)) Train(optimizer, uninterrupted, 0, 12);

        // Six steps with the plain Adam, its state saved, then six with FusedAdam from that state.
        var resumed = MakeParameters(ScalarType.Float32, 3);
        byte[] saved;
        using (var adam = optim.Adam(resumed, lr: 1e-2))
        {
            Train(adam, resumed, 0, 6);
            using var stream = new MemoryStream();
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) adam.save_state_dict(writer);
            saved = stream.ToArray();
        }
        using (var fused = new FusedAdam(resumed, lr: 1e-2))
        {
            using var reader = new BinaryReader(new MemoryStream(FusedAdam.AdoptPlainAdamState(saved)));
            fused.load_state_dict(reader);
            // The learning rate halves at step 7 in Train; the loaded options carry the rate of step 6.
            Train(fused, resumed, 6, 12);
        }
        for (int i = 0; i < uninterrupted.Length; i++)
            AssertClose(uninterrupted[i], resumed[i], 2e-6, $"parameter {i}");
    }

    [Fact]
    public void AdoptingLeavesOtherStatesAsTheyAre()
    {
        var parameters = MakeParameters(ScalarType.Float32, 4);
        using var fused = new FusedAdam(parameters);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) fused.save_state_dict(writer);
        var state = stream.ToArray();
        Assert.Same(state, FusedAdam.AdoptPlainAdamState(state));
    }
}
