using System.Text.Json;
using Ddvi.Benchmarking;
using Ddvi.Models;
using static TorchSharp.torch;

namespace Ddvi.Tests.Benchmarking;

public class BenchmarkTests
{
    [Fact]
    public void TimeStatisticsAreTheOrderStatisticsOfTheSamples()
    {
        var stats = TimeStatistics.Of([0.5, 0.1, 0.4, 0.2, 0.3]);
        Assert.Equal(0.3, stats.Median, 12);
        Assert.Equal(0.2, stats.LowerQuartile, 12);
        Assert.Equal(0.4, stats.UpperQuartile, 12);
        Assert.Equal(0.1, stats.Min);
        Assert.Equal(0.5, stats.Max);
        Assert.Equal((0.4 - 0.2) / 0.3, stats.RelativeSpread, 12);
        // Type-7 quantile between order statistics: 4 samples, p = 0.25 → 1 + 0.75·(2 − 1).
        Assert.Equal(1.75, TimeStatistics.Quantile([1, 2, 3, 4], 0.25), 12);
        Assert.Throws<ArgumentException>(() => TimeStatistics.Of([]));
    }

    [Fact]
    public void NetworkCostCountsLinearLayersFromTheirShapes()
    {
        using var decoder = new Mlp(2, [3, 3], [5], dropout: 0.2);
        // 2→3, 3→3, 3→5: 6 + 9 + 15 multiply-accumulates per example.
        var cost = NetworkCost.Of(decoder, dataWidth: 2);
        Assert.Equal(30, cost.Macs);
        Assert.Equal(6, cost.DataInputMacs);
        Assert.Equal(2.0 * 4 * 30, cost.ForwardOnly(4));
        Assert.Equal(4.0 * 4 * 30, cost.FrozenPassThrough(4));
        Assert.Equal(6.0 * 4 * 30, cost.TrainedOnLatents(4));
        // The layer that reads the data needs no input gradient: 3·30 − 6 per row, times 2 FLOPs.
        Assert.Equal(2.0 * 4 * (90 - 6), cost.TrainedOnData(4));
    }

    [Fact]
    public void ConvolutionMacsMatchAHandCountOfOneSmallLayer()
    {
        // Conv 2→3, 3×3 kernel, stride 2, on a 7×7 image: a 3×3 output, each of its 9 positions and 3 channels summing
        // 2·3·3 = 18 products, 486 in all. With every input and weight 1 and no bias, each output value is the number of
        // products that made it, so the output's sum is the count again.
        Assert.Equal(486, NetworkCost.ConvolutionMacs(positions: 3 * 3, inChannels: 2, outChannels: 3, kernelArea: 9));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var conv = nn.Conv2d(2, 3, 3, stride: 2, bias: false);
        conv.weight!.fill_(1);
        Assert.Equal(486.0, conv.call(ones(1, 2, 7, 7)).sum().item<float>());

        // Transposed conv 2→3, 3×3, stride 2, on a 4×4 map: each of the 16 input positions scatters its 2 values into
        // 3·3·3 outputs, 16·2·27 = 864 products.
        Assert.Equal(864, NetworkCost.ConvolutionMacs(positions: 4 * 4, inChannels: 2, outChannels: 3, kernelArea: 9));
        using var deconv = nn.ConvTranspose2d(2, 3, 3, stride: 2, bias: false);
        deconv.weight!.fill_(1);
        Assert.Equal(864.0, deconv.call(ones(1, 2, 4, 4)).sum().item<float>());
    }

    [Fact]
    public void NetworkCostCountsTheConvNetworksOfCifar10()
    {
        // Trunk on 3×32×32: 3→16 3×3 pad 1 (32×32 out) 442,368; 16→32 4×4 s2 (15×15) 1,843,200; 32→64 5×5 s2 (6×6)
        // 1,843,200; 64→128 5×5 s2 (1×1) 204,800. Then the MLP 128 → 1000 → 2 + 2.
        using var encoder = new ConvEncoder(3, 32, 32, [1000], [2, 2]);
        var cost = NetworkCost.Of(encoder, dataWidth: 3072);
        Assert.Equal(442_368 + 1_843_200 + 1_843_200 + 204_800 + 128 * 1000 + 1000 * 4, cost.Macs);
        Assert.Equal(442_368, cost.DataInputMacs); // the first convolution reads the images
        Assert.Equal(0, NetworkCost.Of(encoder).DataInputMacs);

        // Decoder: Linear 2 → 64, then transposed convs from 1×1: 64→64 5×5 (1 position) 102,400, 64→32 (5×5 in)
        // 1,280,000, 32→16 (13×13 in) 2,163,200, 16→3 4×4 (29×29 in) 645,888.
        using var decoder = new BoundedOutput(new ConvDecoder(2, 3, 32, 32), -1, 1);
        Assert.Equal(2 * 64 + 102_400 + 1_280_000 + 2_163_200 + 645_888, NetworkCost.Of(decoder).Macs);

        using var loose = nn.Sequential(nn.Conv2d(3, 4, 3));
        Assert.Contains("outside a ConvTrunk", Assert.Throws<NotSupportedException>(() => NetworkCost.Of(loose)).Message);
    }

    [Fact]
    public void MatrixProductRateIsPositiveAndNamesItsShape()
    {
        var rate = MatrixProductRate.Measure(CPU, 32, 64, 48, seconds: 0.05);
        Assert.True(rate.GigaflopsPerSecond > 0);
        Assert.Equal("[32×64]·[64×48]", rate.Shape);
    }

    [Theory]
    [InlineData("nope", "--cases")]
    [InlineData("repetitions", "--repetitions")]
    [InlineData("threads", "--threads")]
    [InlineData("train", "--train-images")]
    public void BadOptionsNameTheOption(string what, string option)
    {
        var options = what switch
        {
            "nope" => new BenchmarkOptions { Cases = ["vae", "nope"] },
            "repetitions" => new BenchmarkOptions { Repetitions = 1 },
            "threads" => new BenchmarkOptions { Threads = [-1] },
            _ => new BenchmarkOptions { TrainImages = 10 },
        };
        var error = Assert.Throws<ArgumentException>(() => options.Validate());
        Assert.Contains(option, error.Message);
        if (what == "nope") Assert.Contains("ddvi-warmup", error.Message);
    }

    [Fact]
    public void WarmUpLengthsMustBeConsistent()
    {
        var negative = Assert.Throws<ArgumentException>(() => new BenchmarkOptions { JitQuietSeconds = -1 }.Validate());
        Assert.Contains("-1", negative.Message);
        var shorter = Assert.Throws<ArgumentException>(() => new BenchmarkOptions { MinWarmupSeconds = 5, MaxWarmupSeconds = 2 }.Validate());
        Assert.Contains("longest warm-up", shorter.Message);
    }

    [Fact]
    public void TheJitsQuietTimeRestartsWhenSomethingIsCompiled()
    {
        var jit = new JitActivity();
        jit.SecondsQuiet();
        Thread.Sleep(150);
        // A method no one has compiled before: an expression tree compiled to a new dynamic method.
        var parameter = System.Linq.Expressions.Expression.Parameter(typeof(int));
        var body = System.Linq.Expressions.Expression.Add(parameter, System.Linq.Expressions.Expression.Constant(Environment.TickCount));
        var compiled = System.Linq.Expressions.Expression.Lambda<Func<int, int>>(body, parameter).Compile(preferInterpretation: false);
        Assert.Equal(1, compiled(1) - compiled(0)); // its first call compiles it
        Assert.True(jit.SecondsQuiet() < 0.15, "the compilation restarts the quiet time");
    }

    [Fact]
    public void ASmallRunMeasuresEveryRequestedBenchmarkAndWritesJsonAndTable()
    {
        using var folder = new TempFolder();
        var options = new BenchmarkOptions
        {
            Cases = [BenchmarkCases.Vae, BenchmarkCases.PriorDiffusion, BenchmarkCases.Warmup, BenchmarkCases.Ddvi, BenchmarkCases.EvaluateVae],
            Device = Ddvi.Runtime.DeviceChoice.Cpu,
            Hidden = 16, PosteriorSteps = 4, PriorSteps = 3, TrainImages = 300, TestImages = 100,
            WarmupSteps = 1, MinWarmupSeconds = 0, JitQuietSeconds = 0, Repetitions = 2, MinRepetitionSeconds = 0.01, EvaluationRepetitions = 1,
        };
        var lines = new List<string>();
        var report = BenchmarkSuite.Run(options, lines.Add);
        var (json, table) = BenchmarkSuite.Write(report, folder.Path);

        var run = Assert.Single(report.Runs);
        Assert.Equal(options.Cases, run.Results.Select(r => r.Name));
        foreach (var r in run.Results)
        {
            Assert.True(r.SecondsPerStep.Median > 0, r.Name);
            Assert.True(r.GigaflopsPerStep > 0, r.Name);
            Assert.True(r.PeakResidentBytes > 0, r.Name);
            Assert.Equal(r.SecondsPerStep.Median * r.StepsPerEpoch, r.SecondsPerEpoch, 12);
            Assert.Equal(r.SecondsPerStep.Median / (r.FloorSecondsPerEpoch / r.StepsPerEpoch), r.RatioToFloor, 9);
        }
        // An epoch of 300 images in batches of 128 is 3 steps; stage 1's epoch is the release's 1000 iterations.
        Assert.Equal(3, run.Results.Single(r => r.Name == BenchmarkCases.Vae).StepsPerEpoch);
        Assert.Equal(1000, run.Results.Single(r => r.Name == BenchmarkCases.PriorDiffusion).StepsPerEpoch);
        Assert.Equal(100, run.Results.Single(r => r.Name == BenchmarkCases.PriorDiffusion).StageEpochs);
        Assert.NotNull(run.Results.Single(r => r.Name == BenchmarkCases.Ddvi).MeetsTarget);
        Assert.Null(run.Pipeline); // the frozen-decoder stage and the DDVI evaluation were not measured

        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var first = document.RootElement.GetProperty("runs")[0];
        Assert.Equal("cpu", first.GetProperty("machine").GetProperty("device").GetString());
        Assert.True(first.GetProperty("results")[0].GetProperty("seconds_per_epoch").GetDouble() > 0);
        string markdown = File.ReadAllText(table);
        Assert.Contains("| ddvi-warmup |", markdown);
        Assert.Contains("GFLOP/s", markdown);
        Assert.Equal(options.Cases.Count, lines.Count(l => l.Contains("ms/step", StringComparison.Ordinal)));
    }

    [Fact]
    public void TheCifar10CasesRunOnColourImagesWithConvNetworksTheirFloorAndThePipelineInHours()
    {
        Assert.Equal(BenchmarkDataset.Mnist, new BenchmarkOptions().Dataset); // the default list stays MNIST's
        Assert.Equal(50_000, new BenchmarkOptions { Dataset = BenchmarkDataset.Cifar10 }.ResolvedTrainImages);
        Assert.Equal(60_000, new BenchmarkOptions().ResolvedTrainImages);

        using var folder = new TempFolder();
        var options = new BenchmarkOptions
        {
            Dataset = BenchmarkDataset.Cifar10,
            Cases = [BenchmarkCases.Vae, BenchmarkCases.PriorDiffusion, BenchmarkCases.Warmup, BenchmarkCases.DdviFrozenDecoder, BenchmarkCases.Ddvi,
                     BenchmarkCases.EvaluateDdvi],
            Device = Ddvi.Runtime.DeviceChoice.Cpu,
            Hidden = 16, PosteriorSteps = 4, PriorSteps = 3, TrainImages = 300, TestImages = 100,
            WarmupSteps = 1, MinWarmupSeconds = 0, JitQuietSeconds = 0, Repetitions = 2, MinRepetitionSeconds = 0.01, EvaluationRepetitions = 1,
        };
        var report = BenchmarkSuite.Run(options, _ => { });
        var (_, table) = BenchmarkSuite.Write(report, folder.Path);

        var run = Assert.Single(report.Runs);
        var vae = run.Results.Single(r => r.Name == BenchmarkCases.Vae);
        // The VAE's conv encoder (trunk, 128 → 16 → 2 + 2) and decoder (above), trained on the images: 2·B·(3·Macs − the
        // first convolution's, which needs no input gradient).
        double macs = 4_333_568 + 128 * 16 + 16 * 4 + 4_191_616;
        Assert.Equal(2.0 * 128 * (3 * macs - 442_368) / 1e9, vae.GigaflopsPerStep, 9);
        foreach (var r in run.Results.Where(r => !BenchmarkCases.IsEvaluation(r.Name)))
        {
            Assert.Equal(2.0, r.Target!.MaxRatioToFloor);
            Assert.Null(r.Target.MaxSecondsPerEpoch);
            Assert.Equal(r.RatioToFloor <= 2.0, r.MeetsTarget);
        }
        Assert.Null(run.Results.Single(r => r.Name == BenchmarkCases.EvaluateDdvi).Target);
        Assert.NotNull(run.Pipeline);
        string markdown = File.ReadAllText(table);
        Assert.Contains("CIFAR-10-shaped images (3×32×32 in [−1, 1])", markdown);
        Assert.Contains("DDVI pipeline at the paper's lengths on 300 images", markdown);
        Assert.Matches(@"\*\*\d+\.\d\d h\*\*", markdown);
        Assert.Contains("≤ 2× floor", markdown);
    }

    [Fact]
    public void TheBenchCommandRejectsAnUnknownDatasetWithTheValidNames()
    {
        var (code, _, error) = DdviProcess.Run("bench", "--dataset", "imagenet");
        Assert.Equal(2, code);
        Assert.Contains("imagenet", error);
        Assert.Contains("mnist, cifar10", error);
    }

    [Fact]
    public void TheBenchCommandRejectsAnUnknownBenchmarkWithTheValidNames()
    {
        var (code, _, error) = DdviProcess.Run("bench", "--cases", "warp-drive");
        Assert.Equal(2, code);
        Assert.Contains("warp-drive", error);
        Assert.Contains("evaluate-ddvi", error);
    }

    [Fact]
    public void ATimeTargetBelowTheFloorIsNamedInTheVerdict()
    {
        // DDVI-semi as measured in session 13: 335 s per epoch against a 243 s floor and a 150 s target.
        var result = new BenchmarkResult
        {
            Name = BenchmarkCases.SemiDdvi, Description = "ddvi-semi", Threads = 2, SecondsPerStep = TimeStatistics.Of([5.72, 5.73, 5.74]),
            StepsPerRepetition = 3, StepsPerEpoch = 59, EpochUnit = "epoch", SecondsPerEpoch = 335, StageEpochs = 50, SecondsPerStage = 16750,
            ExamplesPerSecond = 179, PeakResidentBytes = 1L << 30, PeakIsPerBenchmark = true, GigaflopsPerStep = 836, FloorSecondsPerEpoch = 243,
            RatioToFloor = 1.38, Target = BenchmarkSuite.TargetOf(BenchmarkCases.SemiDdvi), MeetsTarget = false,
        };
        Assert.True(result.TargetBelowFloor);
        Assert.Contains("[target missed: its time is below the floor]", BenchmarkSuite.Line(result));

        var reachable = result with { FloorSecondsPerEpoch = 100, RatioToFloor = 3.35 };
        Assert.False(reachable.TargetBelowFloor);
        Assert.EndsWith("[target missed]", BenchmarkSuite.Line(reachable));

        var ratioOnly = result with { Target = new BenchmarkTarget(null, MaxRatioToFloor: 2.0) };
        Assert.False(ratioOnly.TargetBelowFloor);
    }

    static BenchmarkResult Stage(string name, double secondsPerStep, int stepsPerEpoch, int stageEpochs, double floorPerEpoch) => new()
    {
        Name = name, Description = name, Threads = 2, SecondsPerStep = TimeStatistics.Of([secondsPerStep, secondsPerStep]),
        StepsPerRepetition = 1, StepsPerEpoch = stepsPerEpoch, EpochUnit = "epoch", SecondsPerEpoch = secondsPerStep * stepsPerEpoch,
        StageEpochs = stageEpochs, SecondsPerStage = secondsPerStep * stepsPerEpoch * stageEpochs, ExamplesPerSecond = 1,
        PeakResidentBytes = 1, PeakIsPerBenchmark = true, GigaflopsPerStep = 1, FloorSecondsPerEpoch = floorPerEpoch,
        RatioToFloor = secondsPerStep * stepsPerEpoch / floorPerEpoch,
    };

    [Fact]
    public void EachPipelineAddsUpItsStagesAtThePapersLengthsBesideItsFloorAndTarget()
    {
        // DDVI-semi as measured on 6 December (216.5 GFLOP/s): stage 1 6.68 ms per iteration, the warm-up 152 s and stage 3
        // 357 s per 60,000-image epoch; the frozen-decoder step and the evaluation made up.
        BenchmarkResult[] semi =
        [
            Stage(BenchmarkCases.SemiPriorDiffusion, 0.00668, 1000, 100, 1.76),
            Stage(BenchmarkCases.SemiWarmup, 2.58, 59, 50, 87.9),
            Stage(BenchmarkCases.SemiFrozenDecoder, 5.5, 59, 50, 216.0),
            Stage(BenchmarkCases.SemiDdvi, 6.05, 59, 50, 228.2),
            Stage(BenchmarkCases.EvaluateSemiDdvi, 300, 1, 1, 20),
        ];
        var options = new BenchmarkOptions();
        var p = BenchmarkSuite.Pipeline(semi, options, semi: true)!;
        Assert.Equal("DDVI-semi", p.Model);
        // The release's 50 epochs, the first 30 (60%) with the decoder frozen; two evaluations.
        Assert.Equal(6.68 * 100, p.PriorDiffusionSeconds, 9);
        Assert.Equal(2.58 * 59 * 50, p.WarmupSeconds, 9);
        Assert.Equal(5.5 * 59 * 30, p.FrozenDecoderSeconds, 9);
        Assert.Equal(6.05 * 59 * 20, p.DdviSeconds, 9);
        Assert.Equal(600, p.EvaluationSeconds, 9);
        Assert.Equal(p.PriorDiffusionSeconds + p.WarmupSeconds + p.FrozenDecoderSeconds + p.DdviSeconds + 600, p.TotalSeconds, 9);
        Assert.Equal(1.76 * 100 + 87.9 * 50 + 216.0 * 30 + 228.2 * 20 + 2 * 20, p.FloorSeconds, 9);
        Assert.Equal(2.5 * 3600, p.TargetSeconds);
        Assert.True(p.TargetBelowFloor); // 15,655 s of products against 9,000 s
        Assert.False(p.MeetsTarget);
        Assert.Contains("stage 3: 30 epochs with the decoder frozen + 20 without", p.Composition);
        Assert.Null(BenchmarkSuite.Pipeline(semi[..4], options, semi: true)); // no evaluation measured
        Assert.Null(BenchmarkSuite.Pipeline(semi, options, semi: false));      // none of DDVI's stages
        Assert.Null(BenchmarkSuite.Pipeline(semi, options with { Dataset = BenchmarkDataset.Cifar10 }, semi: true)!.TargetSeconds);

        BenchmarkResult[] ddvi =
        [
            Stage(BenchmarkCases.PriorDiffusion, 0.0005, 1000, 100, 0.2),
            Stage(BenchmarkCases.Warmup, 0.02, 469, 100, 4.0),
            Stage(BenchmarkCases.DdviFrozenDecoder, 0.07, 469, 100, 20.0),
            Stage(BenchmarkCases.Ddvi, 0.08, 469, 100, 22.0),
            Stage(BenchmarkCases.EvaluateDdvi, 5, 1, 1, 1.0),
        ];
        var d = BenchmarkSuite.Pipeline(ddvi, options, semi: false)!;
        Assert.Equal(0.07 * 469 * 30 + 0.08 * 469 * 70, d.FrozenDecoderSeconds + d.DdviSeconds, 9); // 30 of 100 epochs frozen
        Assert.Equal(0.2 * 100 + 4.0 * 100 + 20.0 * 30 + 22.0 * 70 + 2 * 1.0, d.FloorSeconds, 9);
        Assert.Equal(3600, d.TargetSeconds);
        Assert.False(d.TargetBelowFloor);
        Assert.Equal(d.TotalSeconds <= 3600, d.MeetsTarget);

        using var folder = new TempFolder();
        var run = new BenchmarkRun(new BenchmarkMachine("cpu", 2, 1, 2, null, "os", "runtime", "ts", "ddvi", "notes"), 0, 0.0, [], 216.5,
            [.. ddvi, .. semi], d, p);
        var (json, table) = BenchmarkSuite.Write(new BenchmarkReport(DateTimeOffset.Now, options, [run], []), folder.Path);
        string markdown = File.ReadAllText(table);
        Assert.Contains("DDVI pipeline at the paper's lengths on 60,000 images", markdown);
        Assert.Contains("DDVI-semi pipeline at the paper's lengths on 60,000 images", markdown);
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"its arithmetic floor {p.FloorSeconds / 3600:F2} h ({p.TotalSeconds / p.FloorSeconds:F2}× it); target under 2.50 h, below the floor: **not met**."), markdown);
        Assert.Contains("target under 60.0 min", markdown);
        var pipelines = JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("runs")[0];
        Assert.True(pipelines.GetProperty("semi_pipeline").GetProperty("target_below_floor").GetBoolean());
        Assert.Equal(p.FloorSeconds, pipelines.GetProperty("semi_pipeline").GetProperty("floor_seconds").GetDouble(), 6);
    }
}
