using System.Runtime.Intrinsics;
using Ddvi.Data;
using Ddvi.Diffusion;
using Ddvi.Experiments;
using Ddvi.Experiments.Methods;
using Ddvi.FastPaths;
using Ddvi.Models;
using Ddvi.Priors;
using Ddvi.Runtime;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

/// <summary>
/// The prepared chains (per-chain tables, no module call per step) against the straightforward chains (a module call and
/// a table lookup per step): the same function, the same gradients, and the same training trajectory.
/// </summary>
public class PreparedChainTests
{
    const int InputDim = 12;

    static DdviModel Model(long seed)
    {
        manual_seed(seed);
        return DdviModel.Paper(InputDim, latentDim: 2, hidden: 16, priorSteps: 5, posteriorSteps: 7, denoiserHidden: 8);
    }

    static Dictionary<string, double[]> Gradients(nn.Module model) => model.named_parameters()
        .Where(p => p.parameter.grad is not null)
        .ToDictionary(p => p.name, p => p.parameter.grad!.to(ScalarType.Float64).data<double>().ToArray());

    [Theory]
    [InlineData(DdviStage.Ddvi)]
    [InlineData(DdviStage.Warmup)]
    public void PreparedAndStraightforwardChainsAgreeInValueAndGradient(DdviStage stage)
    {
        using var model = Model(seed: 3);
        model.to(ScalarType.Float64).eval();
        model.Stage = stage;
        using var x = rand([9, InputDim], dtype: ScalarType.Float64, generator: new Generator(4));

        var results = new List<(double[] Z, double[][] Trajectory, Dictionary<string, double[]> Gradients)>();
        foreach (bool prepared in new[] { true, false })
        {
            model.PreparedChains = prepared;
            model.zero_grad();
            using var scope = NewDisposeScope();
            var sample = model.Posterior(x, new Generator(5), keepTrajectory: true);
            (sample.Z.square().sum() + sample.Trajectory!.Select(s => s.EpsHat.sum()).Aggregate((a, b) => a + b)).backward();
            results.Add((sample.Z.data<double>().ToArray(),
                sample.Trajectory!.Select(s => s.Yt.data<double>().ToArray()).ToArray(), Gradients(model)));
        }

        var (fast, straight) = (results[0], results[1]);
        Assert.Equal(straight.Z.Length, fast.Z.Length);
        for (int i = 0; i < fast.Z.Length; i++) Assert.Equal(straight.Z[i], fast.Z[i], 12);
        for (int step = 0; step < fast.Trajectory.Length; step++)
            for (int i = 0; i < fast.Trajectory[step].Length; i++) Assert.Equal(straight.Trajectory[step][i], fast.Trajectory[step][i], 12);
        Assert.Equal(straight.Gradients.Keys.Order(), fast.Gradients.Keys.Order());
        Assert.Contains(fast.Gradients.Keys, k => k.Contains("denoiser", StringComparison.OrdinalIgnoreCase));
        foreach (var (name, gradient) in fast.Gradients)
            for (int i = 0; i < gradient.Length; i++) Assert.Equal(straight.Gradients[name][i], gradient[i], 10);
    }

    /// <summary>
    /// The chain as one autograd operation (written-out backward) against the prepared chain recorded step by step, for
    /// both denoisers (the posterior's with its residual connection and per-row context share), in float64, through both
    /// of its implementations (the CPU kernel and tensor operations): the same states, and the same gradients for y_T, the
    /// context and every parameter under a loss that reads every state.
    /// </summary>
    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(false, false)]
    public void ChainAsOneOperationMatchesTheRecordedChain(bool conditioned, bool useKernel)
    {
        bool previous = DenoiserChainFunction.UseKernel;
        DenoiserChainFunction.UseKernel = useKernel;
        try
        {
            WithTwoThreads(() => CompareOneOperationWithRecordedChain(conditioned));
        }
        finally
        {
            DenoiserChainFunction.UseKernel = previous;
        }
    }

    /// <summary>Runs <paramref name="test"/> with two libtorch threads, so that the kernel splits a batch of 37 rows 19 + 18.</summary>
    private static void WithTwoThreads(Action test)
    {
        int before = get_num_threads();
        set_num_threads(2);
        try
        {
            if (OpenMpTeam.IsAvailable) Assert.Equal((2, 19), DenoiserChainKernel.SplitRows(37));
            test();
        }
        finally
        {
            set_num_threads(before);
        }
    }

    private static void CompareOneOperationWithRecordedChain(bool conditioned)
    {
        using var model = Model(seed: 7);
        model.to(ScalarType.Float64);
        var denoiser = conditioned ? (nn.Module)model.PosteriorDenoiser : model.PriorDenoiser;
        var schedule = conditioned ? model.PosteriorSchedule : model.PriorSchedule;
        var generator = new Generator(9);
        // 37 rows: the kernel splits them 19 + 18 between two threads (see ChainKernelMatchesTensorOperationsInFloat32).
        using var yTValue = randn([37, 2], dtype: ScalarType.Float64, generator: generator);
        using var contextValue = randn([37, 2], dtype: ScalarType.Float64, generator: generator);
        using var stateWeights = randn([schedule.Steps + 1, 37, 2], dtype: ScalarType.Float64, generator: generator);

        var results = new List<(double[] States, double[] YTGrad, double[] ContextGrad, Dictionary<string, double[]> Gradients)>();
        // The seam's one operation, the prepared chain recorded step by step, and the reference: a module call per step.
        foreach (var path in new[] { "one operation", "prepared", "module calls" })
        {
            denoiser.zero_grad();
            using var scope = NewDisposeScope();
            var yT = yTValue.clone().requires_grad_();
            var context = contextValue.clone().requires_grad_();
            Tensor states;
            if (path == "one operation")
            {
                Assert.True(ChainRunner.Supports(denoiser, yT.device_type, is_grad_enabled(), keepTrajectory: false));
                states = conditioned ? ChainRunner.RunChain(model.PosteriorDenoiser, context, yT, schedule) : ChainRunner.RunChain(model.PriorDenoiser, yT, schedule);
            }
            else
            {
                var chain = path == "prepared"
                    ? ReverseChain.RunPrepared(conditioned ? model.PosteriorDenoiser.PrepareChain(context) : model.PriorDenoiser.PrepareChain(), yT, schedule, keepTrajectory: true)
                    : ReverseChain.Run(conditioned ? (y, t) => model.PosteriorDenoiser.call(y, context, t) : model.PriorDenoiser.call, yT, schedule, keepTrajectory: true);
                states = stack(chain.Steps!.Select(s => s.Yt).Append(chain.Z).ToArray());
            }
            Assert.Equal(new long[] { schedule.Steps + 1, 37, 2 }, states.shape);
            ((states * stateWeights).sum() + states[schedule.Steps].square().sum()).backward();
            results.Add((states.data<double>().ToArray(), yT.grad!.data<double>().ToArray(),
                conditioned ? context.grad!.data<double>().ToArray() : [], Gradients(denoiser)));
        }

        var fused = results[0];
        foreach (var recorded in results.Skip(1))
        {
            for (int i = 0; i < fused.States.Length; i++) Assert.Equal(recorded.States[i], fused.States[i], 12);
            for (int i = 0; i < fused.YTGrad.Length; i++) Assert.Equal(recorded.YTGrad[i], fused.YTGrad[i], 10);
            for (int i = 0; i < fused.ContextGrad.Length; i++) Assert.Equal(recorded.ContextGrad[i], fused.ContextGrad[i], 10);
            Assert.Equal(recorded.Gradients.Keys.Order(), fused.Gradients.Keys.Order());
            Assert.NotEmpty(fused.Gradients);
            foreach (var (name, gradient) in fused.Gradients)
                for (int i = 0; i < gradient.Length; i++) Assert.Equal(recorded.Gradients[name][i], gradient[i], 10);
        }
    }

    /// <summary>
    /// The chain runner's seam says where its one operation applies: both denoisers on the CPU while gradients are
    /// recorded and no step list is asked for; not with the step list, not without gradients, not off the CPU, and not
    /// for any other noise predictor.
    /// </summary>
    [Fact]
    public void ChainRunnerSupportsBothDenoisersOnlyOnTheCpuWithGradientsAndNoStepList()
    {
        using var model = Model(seed: 1);
        foreach (var denoiser in new nn.Module[] { model.PriorDenoiser, model.PosteriorDenoiser })
        {
            Assert.True(ChainRunner.Supports(denoiser, DeviceType.CPU, recordsGradients: true, keepTrajectory: false));
            Assert.False(ChainRunner.Supports(denoiser, DeviceType.CPU, recordsGradients: true, keepTrajectory: true));
            Assert.False(ChainRunner.Supports(denoiser, DeviceType.CPU, recordsGradients: false, keepTrajectory: false));
            Assert.False(ChainRunner.Supports(denoiser, DeviceType.CUDA, recordsGradients: true, keepTrajectory: false));
        }
        using var other = nn.Linear(2, 2);
        Assert.False(ChainRunner.Supports(other, DeviceType.CPU, recordsGradients: true, keepTrajectory: false));
    }

    /// <summary>
    /// The CPU kernel against the tensor operations in float32, the type training uses, at sizes that leave vector tails
    /// (37 rows, split 19 + 18 between two threads, so each thread has two eight-row blocks and a tail of 3 or 2 rows):
    /// states and every gradient agree to float32 rounding. 40 hidden units take the kernel's MKL products; 64 take its
    /// hand-written ones (<see cref="ChainProducts"/>) where AVX-512 is present, and MKL with them switched off; a state of
    /// width 3 checks the narrow layers' loops over the state.
    /// </summary>
    [Theory]
    [InlineData(true, 40, 2, true)]
    [InlineData(false, 40, 2, true)]
    [InlineData(true, 64, 2, true)]
    [InlineData(false, 64, 2, true)]
    [InlineData(true, 64, 3, true)]
    [InlineData(false, 64, 3, true)]
    [InlineData(true, 64, 2, false)]
    public void ChainKernelMatchesTensorOperationsInFloat32(bool conditioned, int hidden, int width, bool handProducts)
    {
        manual_seed(13);
        using var posterior = new ConditionalDenoiser(steps: 13, dataDim: width, hidden: hidden);
        using var prior = new TimeConditionedMlp(steps: 13, dataDim: width, hidden: hidden);
        using var schedule = new NoiseSchedule(NoiseScheduleKind.Linear, 13);
        nn.Module denoiser = conditioned ? posterior : prior;
        var generator = new Generator(17);
        using var yTValue = randn([37, width], generator: generator);
        using var contextValue = randn([37, 2], generator: generator);
        using var stateWeights = randn([14, 37, width], generator: generator);

        var results = new List<(float[] States, float[] YTGrad, float[] ContextGrad, Dictionary<string, double[]> Gradients)>();
        bool previous = DenoiserChainFunction.UseKernel, previousHand = DenoiserChainKernel.HandProducts;
        DenoiserChainKernel.HandProducts = handProducts;
        try
        {
            Assert.Equal(handProducts && hidden % ChainProducts.Columns == 0 && Vector512.IsHardwareAccelerated, DenoiserChainKernel.UsesHandProducts<float>(hidden, width));
            WithTwoThreads(() =>
            {
                foreach (bool useKernel in new[] { true, false })
                {
                    DenoiserChainFunction.UseKernel = useKernel;
                    denoiser.zero_grad();
                    using var scope = NewDisposeScope();
                    var yT = yTValue.clone().requires_grad_();
                    var context = contextValue.clone().requires_grad_();
                    var states = conditioned ? posterior.RunChain(context, yT, schedule) : prior.RunChain(yT, schedule);
                    ((states * stateWeights).sum() + states[13].square().sum()).backward();
                    results.Add((states.data<float>().ToArray(), yT.grad!.data<float>().ToArray(),
                        conditioned ? context.grad!.data<float>().ToArray() : [], Gradients(denoiser)));
                }
            });
        }
        finally
        {
            DenoiserChainFunction.UseKernel = previous;
            DenoiserChainKernel.HandProducts = previousHand;
        }

        var (kernel, tensors) = (results[0], results[1]);
        static void Close(IReadOnlyList<double> expected, IReadOnlyList<double> actual, string what)
        {
            Assert.Equal(expected.Count, actual.Count);
            double scale = expected.Select(Math.Abs).DefaultIfEmpty(0).Max() + 1e-6;
            for (int i = 0; i < expected.Count; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 * scale, $"{what}[{i}]: kernel {actual[i]} against tensor operations {expected[i]}");
        }
        Close(tensors.States.Select(v => (double)v).ToArray(), kernel.States.Select(v => (double)v).ToArray(), "states");
        Close(tensors.YTGrad.Select(v => (double)v).ToArray(), kernel.YTGrad.Select(v => (double)v).ToArray(), "∂y_T");
        Close(tensors.ContextGrad.Select(v => (double)v).ToArray(), kernel.ContextGrad.Select(v => (double)v).ToArray(), "∂context");
        Assert.Equal(tensors.Gradients.Keys.Order(), kernel.Gradients.Keys.Order());
        Assert.Equal(14, kernel.Gradients.Count); // 4 hidden layers × (weight, bias, time table) + output weight and bias
        foreach (var (name, gradient) in kernel.Gradients) Close(tensors.Gradients[name], gradient, name);
    }

    [Fact]
    public void ModelUsesTheOneOperationChainOnlyWhereGradientsAreRecordedAndKeepsTheSameStates()
    {
        using var model = Model(seed: 3);
        model.to(ScalarType.Float64).eval();
        using var x = rand([5, InputDim], dtype: ScalarType.Float64, generator: new Generator(4));
        using var scope = NewDisposeScope();
        model.ChainAsOneOperation = true;
        var fused = model.DdviPosterior(x, new Generator(5), keepStates: true);
        model.ChainAsOneOperation = false;
        var recorded = model.DdviPosterior(x, new Generator(5), keepStates: true);
        Assert.Null(fused.Trajectory);
        Assert.Equal(new long[] { model.PosteriorSchedule.Steps + 1, 5, 2 }, fused.States!.shape);
        Assert.True(fused.States.allclose(recorded.States!, rtol: 0, atol: 1e-12));
        Assert.True(fused.Z.allclose(recorded.Z, rtol: 0, atol: 1e-12));
        Assert.Null(model.DdviPosterior(x, new Generator(5)).States);
        // Asking for the step list keeps the step-by-step chain, whose steps carry ε̂.
        model.ChainAsOneOperation = true;
        Assert.Equal(model.PosteriorSchedule.Steps, model.DdviPosterior(x, new Generator(5), keepTrajectory: true).Trajectory!.Count);
    }

    [Fact]
    public void OneOperationChainsRejectMismatchedInputs()
    {
        using var model = Model(seed: 1);
        using var scope = NewDisposeScope();
        Assert.Contains("T = 5", Assert.Throws<ArgumentException>(() => model.PosteriorDenoiser.RunChain(zeros(3, 2), zeros(3, 2), model.PriorSchedule)).Message);
        Assert.Contains("[B, 2]", Assert.Throws<ArgumentException>(() => model.PriorDenoiser.RunChain(zeros(3, 3), model.PriorSchedule)).Message);
        Assert.Contains("4 rows", Assert.Throws<ArgumentException>(() => model.PosteriorDenoiser.RunChain(zeros(3, 2), zeros(4, 2), model.PosteriorSchedule)).Message);
    }

    [Fact]
    public void PreparedPredictorsRejectAStepOutsideTheChain()
    {
        using var model = Model(seed: 1);
        using var scope = NewDisposeScope();
        var predict = model.PosteriorDenoiser.PrepareChain(zeros(3, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => predict(zeros(3, 2), 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => predict(zeros(3, 2), 8));
        Assert.Contains("[3, 2]", Assert.Throws<ArgumentException>(() => predict(zeros(4, 2), 1)).Message);
    }

    /// <summary>
    /// Stage 3 (wake + K sleep steps, the decoder frozen in the first epoch) trained twice from one seed, once with each
    /// chain: the loss trajectories agree to float32 rounding, step by step.
    /// </summary>
    [Fact]
    public void TheFastPathTrainsLikeTheStraightforwardOne()
    {
        var trajectories = new List<List<double>>();
        foreach (bool prepared in new[] { true, false })
        {
            using var generator = new Generator(21);
            using var images = rand([96, InputDim], generator: generator);
            using var labels = randint(0, 3, [96], generator: generator);
            using var train = new ImageDataset("toy", images.clone(), labels.clone(), new ImageShape(1, 3, 4), classCount: 3);
            var config = new ExperimentConfig
            {
                Model = "ddvi", Epochs = 2, BatchSize = 32, Seed = 8,
                Ddvi = new DdviSettings { Hidden = 16, PriorSteps = 5, PosteriorSteps = 7, SleepSteps = 2, FrozenDecoderEpochs = 1 },
            }.Validate();
            manual_seed(config.Seed);
            var prior = PriorCatalog.Create("pinwheel", null, config.Seed, CPU, PriorDensityChoice.Exact);
            var method = new DdviMethod(new MethodContext(config, train, prior, CPU));
            method.DdviModel.PreparedChains = prepared;
            using var module = method.Module;
            var stage = method.Stages[2];
            using var runner = new StepRunner(stage.Phases);
            var losses = new List<double>();
            for (int epoch = 0; epoch < 2; epoch++)
            {
                manual_seed(100 + epoch);
                using var epochGenerator = new Generator((ulong)(200 + epoch));
                runner.BeginEpoch(epoch);
                foreach (var batch in stage.Batches.Epoch(epochGenerator))
                {
                    runner.Sums.Clear();
                    runner.Step(batch, epoch, epochGenerator);
                    batch.X?.Dispose();
                    batch.Labels?.Dispose();
                    var means = runner.Sums.Means();
                    losses.Add(means["wake/loss"]);
                    losses.Add(means["sleep/loss"]);
                }
            }
            trajectories.Add(losses);
            (prior as IDisposable)?.Dispose();
        }

        Assert.Equal(12, trajectories[0].Count); // 2 epochs × 3 batches × (wake, sleep)
        for (int i = 0; i < trajectories[0].Count; i++)
            Assert.True(Math.Abs(trajectories[0][i] - trajectories[1][i]) <= 1e-4 * Math.Max(1, Math.Abs(trajectories[1][i])),
                $"step {i / 2}: fast {trajectories[0][i]} vs straightforward {trajectories[1][i]}");
    }
}
