using Ddvi.Data;
using Ddvi.Experiments;
using Ddvi.Experiments.Methods;
using Ddvi.Models;
using Ddvi.Priors;
using Ddvi.Runtime;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Benchmarking;

/// <summary>A benchmark ready to time: one call of <see cref="Step"/> is one measured unit of work.</summary>
public sealed class PreparedBenchmark(Action step, double flopsPerStep, long examplesPerStep, int stepsPerEpoch, int stageEpochs,
    string epochUnit, Action dispose) : IDisposable
{
    public Action Step { get; } = step;

    /// <summary>Matrix-product FLOPs of one step, from the network shapes (<see cref="NetworkCost"/>).</summary>
    public double FlopsPerStep { get; } = flopsPerStep;
    public long ExamplesPerStep { get; } = examplesPerStep;
    public int StepsPerEpoch { get; } = stepsPerEpoch;

    /// <summary>Epochs of this stage at the paper's length (100 for each DDVI stage, 200 for the baselines).</summary>
    public int StageEpochs { get; } = stageEpochs;
    public string EpochUnit { get; } = epochUnit;

    public void Dispose() => dispose();
}

/// <summary>Shared inputs of every benchmark in one run: seeded random images of the dataset's shape and range
/// (uniform in [0, 1] for MNIST, in [−1, 1] for CIFAR-10) and the prior.</summary>
public sealed class BenchmarkInputs : IDisposable
{
    public BenchmarkInputs(BenchmarkOptions options, Device device)
    {
        Options = options;
        Device = device;
        using var generator = new Generator((ulong)options.Seed);
        Data = new DatasetSplits(RandomImages("bench-train", options.ResolvedTrainImages, options.Dataset, generator, device),
                                 RandomImages("bench-test", options.TestImages, options.Dataset, generator, device));
        ExactPrior = PriorCatalog.Create("pinwheel", null, options.Seed, device, PriorDensityChoice.Exact);
        KdePrior = PriorCatalog.Create("pinwheel", null, options.Seed, device, PriorDensityChoice.Kde);
    }

    public BenchmarkOptions Options { get; }
    public Device Device { get; }
    public DatasetSplits Data { get; }
    public ILabelledPrior ExactPrior { get; }
    public ILabelledPrior KdePrior { get; }

    static ImageDataset RandomImages(string name, int count, BenchmarkDataset dataset, Generator generator, Device device)
    {
        using var scope = NewDisposeScope();
        if (dataset == BenchmarkDataset.Cifar10)
        {
            var shape = new ImageShape(3, 32, 32);
            var colour = rand([count, shape.Size], generator: generator).mul_(Scalars.Of(2)).sub_(Scalars.Of(1)).to(device);
            var classes = randint(0, 10, [count], generator: generator).to(device);
            // Flipped in training, as the CIFAR-10 reader's training set is.
            return new ImageDataset(name, colour, classes, shape, classCount: 10, PixelRange.Symmetric, flipInTraining: true);
        }
        var images = rand([count, 784], generator: generator).to(device);
        var labels = randint(0, 10, [count], generator: generator).to(device);
        return new ImageDataset(name, images, labels, new ImageShape(1, 28, 28), classCount: 10);
    }

    public void Dispose()
    {
        Data.Dispose();
        (ExactPrior as IDisposable)?.Dispose();
        (KdePrior as IDisposable)?.Dispose();
    }
}

/// <summary>
/// The benchmarks of <c>ddvi bench</c>: one training step of every model and DDVI stage, exactly as the trainer runs it
/// (the same <see cref="StepRunner"/>, phases and objectives), and a full evaluation.
/// </summary>
public static class BenchmarkCases
{
    public const string Vae = "vae";
    public const string VaeKde = "vae-kde";
    public const string IafVae = "iaf-vae";
    public const string HierarchicalIafVae = "h-iaf-vae";
    public const string Aae = "aae";
    public const string PriorDiffusion = "ddvi-prior-diffusion";
    public const string Warmup = "ddvi-warmup";
    public const string DdviFrozenDecoder = "ddvi-frozen-decoder";
    public const string Ddvi = "ddvi";
    public const string EvaluateDdvi = "evaluate-ddvi";
    public const string EvaluateVae = "evaluate-vae";
    public const string SemiPriorDiffusion = "ddvi-semi-prior-diffusion";
    public const string SemiWarmup = "ddvi-semi-warmup";
    public const string SemiFrozenDecoder = "ddvi-semi-frozen-decoder";
    public const string SemiDdvi = "ddvi-semi";
    public const string EvaluateSemiDdvi = "evaluate-ddvi-semi";
    public const string VaeSemi = "vae-semi";
    public const string IafVaeSemi = "iaf-vae-semi";
    public const string AaeSemi = "aae-semi";

    /// <summary>Labelled examples of the semi-supervised cases (the release's MNIST budget).</summary>
    public const int SemiLabels = 1000;

    public static IReadOnlyList<string> Names { get; } =
        [Vae, VaeKde, IafVae, HierarchicalIafVae, Aae, PriorDiffusion, Warmup, DdviFrozenDecoder, Ddvi, EvaluateDdvi, EvaluateVae,
         SemiPriorDiffusion, SemiWarmup, SemiFrozenDecoder, SemiDdvi, EvaluateSemiDdvi, VaeSemi, IafVaeSemi, AaeSemi];

    public static string Describe(string name) => name switch
    {
        Vae => "VAE training step (exact pinwheel log-density)",
        VaeKde => "VAE training step with the release's KDE log-density (the training default for pinwheel)",
        IafVae => "IAF-VAE training step",
        HierarchicalIafVae => "hierarchical IAF-VAE training step",
        Aae => "AAE training step (reconstruction, discriminator, generator)",
        PriorDiffusion => "DDVI stage 1: prior-diffusion iteration",
        Warmup => "DDVI stage 2: warm-up model step",
        DdviFrozenDecoder => "DDVI stage 3 step, decoder frozen (first 30 epochs): wake + K sleep steps, KDE log-density",
        Ddvi => "DDVI stage 3 step (epochs 30-100): wake + K sleep steps, KDE log-density",
        EvaluateDdvi => "evaluation of a DDVI model: KNN, latent NLL, ELBO (KDE log-density), true ELBO and IWAE bound (chain Jacobians), MMD on the test images",
        EvaluateVae => "evaluation of a VAE: KNN, latent NLL, ELBO, true ELBO and IWAE bound, MMD on the test images",
        SemiPriorDiffusion => "DDVI-semi stage 1: one iteration of the ten per-class prior diffusions (batched)",
        SemiWarmup => "DDVI-semi stage 2 (diff_vae_semi) step, batch 1024: ten per-class prior chains (T = 100) as one batched chain",
        SemiFrozenDecoder => "DDVI-semi stage 3 step, decoder frozen (first 30 epochs), batch 1024, 1,000 labels: wake through ten per-class posterior chains (T = 100, batched) + K = 30 sleep steps",
        SemiDdvi => "DDVI-semi stage 3 step (epochs 30-50), batch 1024, 1,000 labels: wake through ten per-class posterior chains (T = 100, batched) + K = 30 sleep steps",
        EvaluateSemiDdvi => "evaluation of a DDVI-semi model: q(c|x) accuracy, KNN both ways, latent NLLs, ELBO, true ELBO and IWAE bound (routed chain's Jacobians), MMD on the test images",
        VaeSemi => "semi-supervised VAE training step (per-class KDE log-density, 1,000 labels)",
        IafVaeSemi => "semi-supervised IAF-VAE training step (per-class KDE log-density, 1,000 labels)",
        AaeSemi => "semi-supervised AAE training step (label-aware discriminator, 1,000 labels)",
        _ => throw new ArgumentException($"unknown benchmark '{name}'"),
    };

    public static bool IsEvaluation(string name) => name is EvaluateDdvi or EvaluateVae or EvaluateSemiDdvi;

    /// <summary>Stage-3 epochs with the decoder frozen at the paper's lengths: DDVI's or, with <paramref name="semi"/>,
    /// DDVI-semi's (the configuration's resolved value, whose default each settings record states).</summary>
    public static int FrozenDecoderEpochs(BenchmarkOptions o, bool semi) =>
        semi ? Config(o, "ddvi-semi").ResolvedSemiFrozenDecoderEpochs : Config(o, "ddvi").ResolvedFrozenDecoderEpochs;

    /// <summary>Builds the model of benchmark <paramref name="name"/> (seeded) and returns its step.</summary>
    public static PreparedBenchmark Prepare(string name, BenchmarkInputs inputs)
    {
        var o = inputs.Options;
        ComputeDevice.SeedGlobal(o.Seed);
        return name switch
        {
            Vae => Training(inputs, Context(inputs, "vae", inputs.ExactPrior), stage: 0, epoch: 0, AevbFlops),
            VaeKde => Training(inputs, Context(inputs, "vae", inputs.KdePrior), stage: 0, epoch: 0, AevbFlops),
            IafVae => Training(inputs, Context(inputs, "iaf-vae", inputs.ExactPrior), stage: 0, epoch: 0, AevbFlops),
            HierarchicalIafVae => Training(inputs, Context(inputs, "h-iaf-vae", inputs.ExactPrior), stage: 0, epoch: 0, AevbFlops),
            Aae => Training(inputs, Context(inputs, "aae", inputs.ExactPrior), stage: 0, epoch: 0, AaeFlops),
            PriorDiffusion => Training(inputs, Context(inputs, "ddvi", inputs.ExactPrior), stage: 0, epoch: 0, DdviFlops),
            Warmup => Training(inputs, Context(inputs, "ddvi", inputs.ExactPrior), stage: 1, epoch: 0, DdviFlops),
            DdviFrozenDecoder => Training(inputs, Context(inputs, "ddvi", inputs.KdePrior), stage: 2, epoch: 0, DdviFlops),
            Ddvi => Training(inputs, Context(inputs, "ddvi", inputs.KdePrior), stage: 2,
                epoch: Config(o, "ddvi").ResolvedFrozenDecoderEpochs, DdviFlops),
            EvaluateDdvi => Evaluation(inputs, Context(inputs, "ddvi", inputs.KdePrior)),
            EvaluateVae => Evaluation(inputs, Context(inputs, "vae", inputs.ExactPrior)),
            SemiPriorDiffusion => Training(inputs, Context(inputs, "ddvi-semi", inputs.KdePrior), stage: 0, epoch: 0, SemiDdviFlops),
            SemiWarmup => Training(inputs, Context(inputs, "ddvi-semi", inputs.KdePrior), stage: 1, epoch: 0, SemiDdviFlops),
            SemiFrozenDecoder => Training(inputs, Context(inputs, "ddvi-semi", inputs.KdePrior), stage: 2, epoch: 0, SemiDdviFlops),
            SemiDdvi => Training(inputs, Context(inputs, "ddvi-semi", inputs.KdePrior), stage: 2,
                epoch: Config(o, "ddvi-semi").ResolvedSemiFrozenDecoderEpochs, SemiDdviFlops),
            EvaluateSemiDdvi => Evaluation(inputs, Context(inputs, "ddvi-semi", inputs.KdePrior)),
            VaeSemi => Training(inputs, Context(inputs, "vae-semi", inputs.KdePrior), stage: 0, epoch: 0, AevbFlops),
            IafVaeSemi => Training(inputs, Context(inputs, "iaf-vae-semi", inputs.KdePrior), stage: 0, epoch: 0, AevbFlops),
            AaeSemi => Training(inputs, Context(inputs, "aae-semi", inputs.KdePrior), stage: 0, epoch: 0, AaeFlops),
            _ => throw new ArgumentException($"--cases: '{name}' is not a benchmark; valid: {string.Join(", ", Names)}"),
        };
    }

    /// <summary>The paper's configuration of <paramref name="model"/> (its lengths, the same for Fashion-MNIST and CIFAR-10)
    /// with the benchmark's sizes; the networks follow the data (<see cref="NetworkChoice.Auto"/>: conv on CIFAR-10).</summary>
    static ExperimentConfig Config(BenchmarkOptions o, string model) => new ExperimentConfig
    {
        Dataset = o.Dataset == BenchmarkDataset.Cifar10 ? "cifar10" : "fashion-mnist",
        Model = model,
        // DDVI-semi keeps its registered batch (the release's 1,024) whatever --batch-size says.
        BatchSize = model == "ddvi-semi" ? null : o.BatchSize,
        Seed = o.Seed,
        Precision = o.Precision,
        Vae = new VaeSettings { Hidden = o.Hidden },
        Aae = new AaeSettings { Hidden = o.Hidden, DiscriminatorHidden = o.Hidden },
        Iaf = new IafSettings { Hidden = o.Hidden },
        HierarchicalIaf = new HierarchicalIafSettings { Hidden = o.Hidden },
        Ddvi = new DdviSettings { Hidden = o.Hidden, PosteriorSteps = o.PosteriorSteps, PriorSteps = o.PriorSteps, SleepSteps = o.SleepSteps },
        Semi = new SemiSettings { Hidden = o.Hidden },
    }.Validate();

    static (IExperimentMethod Method, ExperimentConfig Config, ILabelledPrior Prior) Context(BenchmarkInputs inputs, string model, ILabelledPrior prior)
    {
        var config = Config(inputs.Options, model);
        // The semi-supervised cases learn from a budget of the release's 1,000 labels; the others see every label.
        Tensor? labels = ModelCatalog.Get(model).SemiSupervised
            ? LabelBudget.Choose(inputs.Data.Train.Labels, inputs.Data.Train.ClassCount, SemiLabels, config.Seed).MaskLabels(inputs.Data.Train.Labels)
            : null;
        var method = ModelCatalog.Create(new MethodContext(config, inputs.Data.Train, prior, inputs.Device, labels));
        return (method, config, prior);
    }

    static PreparedBenchmark Training(BenchmarkInputs inputs, (IExperimentMethod Method, ExperimentConfig Config, ILabelledPrior Prior) built,
        int stage, int epoch, Func<IExperimentMethod, ExperimentConfig, int, int, long, double> flops)
    {
        var (method, config, _) = built;
        var trainingStage = method.Stages[stage];
        var runner = new StepRunner(trainingStage.Phases);
        runner.BeginEpoch(epoch);
        var generator = new Generator((ulong)config.Seed);
        method.Module.train();
        var batches = Cycle(trainingStage.Batches, generator).GetEnumerator();
        bool semi = method is SemiDdviMethod;
        long examples = trainingStage.Batches is DataFreeSteps
            ? (semi ? (long)config.Semi.PriorDiffusionPerClass * built.Prior.ClassCount : config.Ddvi.PriorDiffusionBatchSize)
            : config.ResolvedBatchSize;
        bool priorDiffusion = trainingStage.Batches is DataFreeSteps;
        return new PreparedBenchmark(
            step: () =>
            {
                batches.MoveNext();
                var batch = batches.Current;
                try
                {
                    runner.Step(batch, epoch, generator);
                }
                finally
                {
                    batch.X?.Dispose();
                    batch.Labels?.Dispose();
                }
            },
            flopsPerStep: flops(method, config, stage, epoch, inputs.Data.Train.Shape.Size),
            examplesPerStep: examples,
            stepsPerEpoch: trainingStage.Batches.StepsPerEpoch,
            stageEpochs: priorDiffusion
                ? (semi ? config.ResolvedSemiPriorDiffusionIterations : config.ResolvedPriorDiffusionIterations) / trainingStage.Batches.StepsPerEpoch
                : stage == 1 ? (semi ? config.ResolvedSemiWarmupEpochs : config.ResolvedWarmupEpochs) : config.ResolvedEpochs,
            epochUnit: priorDiffusion ? $"{trainingStage.Batches.StepsPerEpoch}-iteration epoch" : $"{inputs.Data.Train.Count:N0}-image epoch",
            dispose: () =>
            {
                batches.Dispose();
                runner.Dispose();
                generator.Dispose();
                method.Module.Dispose();
            });
    }

    static IEnumerable<TrainingBatch> Cycle(IBatchSource source, Generator generator)
    {
        while (true)
            foreach (var batch in source.Epoch(generator))
                yield return batch;
    }

    static PreparedBenchmark Evaluation(BenchmarkInputs inputs, (IExperimentMethod Method, ExperimentConfig Config, ILabelledPrior Prior) built)
    {
        var (method, config, prior) = built;
        var e = config.Evaluation;
        long train = inputs.Data.Train.Count, test = inputs.Data.Test.Count;
        long mmd = Math.Min(Math.Min(e.MmdSamples, test), e.PriorSamples);
        double flops = EncodeFlops(method, train + test) + EncodeFlops(method, test) + DecodeFlops(method, test + mmd)
                       + GramFlops(mmd, inputs.Data.Test.Shape.Size);
        return new PreparedBenchmark(
            step: () =>
            {
                var (_, artifacts) = ModelEvaluator.Evaluate(method, inputs.Data, prior, config, inputs.Device);
                artifacts.Dispose();
            },
            flopsPerStep: flops,
            examplesPerStep: test,
            stepsPerEpoch: 1,
            stageEpochs: 1,
            epochUnit: "evaluation",
            dispose: () => method.Module.Dispose());
    }

    // ---- matrix-product FLOPs per step, from the network shapes ----

    // Each takes D, the values of one image: the width of the layers (or conv trunks) that read the data.

    static double AevbFlops(IExperimentMethod method, ExperimentConfig config, int stage, int epoch, long dataWidth)
        // Every layer is trained and applied once per example; only the layers reading the images need no input gradient.
        => NetworkCost.Of(method.Module, dataWidth).TrainedOnData(config.ResolvedBatchSize);

    static double AaeFlops(IExperimentMethod method, ExperimentConfig config, int stage, int epoch, long dataWidth)
    {
        var model = (AdversarialAutoencoder)method.Module;
        long b = config.ResolvedBatchSize;
        var encoder = NetworkCost.Of(model.Encoder, dataWidth);
        var decoder = NetworkCost.Of(model.Decoder);
        var discriminator = NetworkCost.Of(model.Discriminator, dataWidth: 2);
        double reconstruction = encoder.TrainedOnData(b) + decoder.TrainedOnLatents(b);
        double discriminatorStep = encoder.ForwardOnly(b) + discriminator.TrainedOnData(2 * b);
        double generatorStep = encoder.TrainedOnData(b) + discriminator.FrozenPassThrough(b);
        return reconstruction + discriminatorStep + generatorStep;
    }

    static double DdviFlops(IExperimentMethod method, ExperimentConfig config, int stage, int epoch, long dataWidth)
    {
        var model = ((DdviMethod)method).DdviModel;
        long b = config.ResolvedBatchSize;
        var s = config.Ddvi;
        var encoder = NetworkCost.Of(model.Encoder, dataWidth);
        var decoder = NetworkCost.Of(model.Decoder);
        var auxiliary = NetworkCost.Of(model.AuxiliaryEncoder, dataWidth);
        var priorDenoiser = NetworkCost.Of(model.PriorDenoiser, dataWidth: model.LatentDim);
        var posteriorDenoiser = NetworkCost.Of(model.PosteriorDenoiser);
        switch (stage)
        {
            case 0:
                return priorDenoiser.TrainedOnData(s.PriorDiffusionBatchSize);
            case 1:
                return encoder.TrainedOnData(b) + s.PriorSteps * priorDenoiser.TrainedOnLatents(b) + decoder.TrainedOnLatents(b)
                       + priorDenoiser.TrainedOnData(b);
            default:
                bool frozen = epoch < config.ResolvedFrozenDecoderEpochs;
                double wake = encoder.TrainedOnData(b) + auxiliary.TrainedOnData(b) + s.PosteriorSteps * posteriorDenoiser.TrainedOnLatents(b)
                              + (frozen ? decoder.FrozenPassThrough(b) : decoder.TrainedOnLatents(b));
                double sleep = decoder.ForwardOnly(b) + auxiliary.TrainedOnData(b) + posteriorDenoiser.TrainedOnLatents(b);
                return wake + s.SleepSteps * sleep;
        }
    }

    /// <summary>DDVI-semi: the per-class networks run for every class on every example (C·B rows), the chains T steps.</summary>
    static double SemiDdviFlops(IExperimentMethod method, ExperimentConfig config, int stage, int epoch, long dataWidth)
    {
        var model = ((SemiDdviMethod)method).SemiModel;
        long b = config.ResolvedBatchSize, c = model.ClassCount;
        var s = config.Semi;
        var encoder = NetworkCost.Of(model.Encoder, dataWidth);
        var decoder = NetworkCost.Of(model.Likelihood.Decoder);
        var auxiliary = NetworkCost.Of(model.AuxiliaryEncoder, dataWidth);
        // Training (forward and both backward products) is ×3 a forward pass.
        double prior = ClassNetworkFlops(model.PriorDenoisers, false), posterior = ClassNetworkFlops(model.PosteriorDenoisers, true);
        switch (stage)
        {
            case 0:
                return 3 * prior * s.PriorDiffusionPerClass * c;
            case 1:
                return encoder.TrainedOnData(b) + 2 * s.Steps * prior * c * b + decoder.TrainedOnLatents(c * b);
            default:
                bool frozen = epoch < config.ResolvedSemiFrozenDecoderEpochs;
                double wake = encoder.TrainedOnData(b) + auxiliary.TrainedOnData(b) + 3 * s.Steps * posterior * c * b
                              + (frozen ? decoder.FrozenPassThrough(c * b) : decoder.TrainedOnLatents(c * b));
                long fantasies = (b + c - 1) / c * c;
                double sleep = decoder.ForwardOnly(fantasies) + auxiliary.TrainedOnData(fantasies) + 3 * posterior * fantasies;
                return wake + s.SleepSteps * sleep;
        }
    }

    /// <summary>FLOPs of one class network's forward pass on one row (multiply-adds ×2).</summary>
    static double ClassNetworkFlops(ClassDenoisers n, bool context) =>
        2.0 * ((n.DataDim + (context ? n.ContextDim : 0)) * (double)n.Hidden + 3.0 * n.Hidden * n.Hidden + n.Hidden * (double)n.DataDim);

    static double EncodeFlops(IExperimentMethod method, long rows)
    {
        if (method is DdviMethod ddvi)
        {
            var m = ddvi.DdviModel;
            return NetworkCost.Of(m.Encoder).ForwardOnly(rows) + NetworkCost.Of(m.AuxiliaryEncoder).ForwardOnly(rows)
                   + m.PosteriorSchedule.Steps * NetworkCost.Of(m.PosteriorDenoiser).ForwardOnly(rows);
        }
        if (method is SemiDdviMethod semi)
        {
            // Each row through the chain of its predicted class only: T steps of one class's posterior network.
            var m = semi.SemiModel;
            return NetworkCost.Of(m.Encoder).ForwardOnly(rows) + NetworkCost.Of(m.AuxiliaryEncoder).ForwardOnly(rows)
                   + m.PosteriorDenoisers.Steps * ClassNetworkFlops(m.PosteriorDenoisers, context: true) * rows;
        }
        var vae = (GaussianVae)method.Module;
        return NetworkCost.Of(vae.Encoder).ForwardOnly(rows);
    }

    static double DecodeFlops(IExperimentMethod method, long rows) => method.Module switch
    {
        DdviModel m => NetworkCost.Of(m.Decoder).ForwardOnly(rows),
        SemiDdviModel m => NetworkCost.Of(m.Likelihood.Decoder).ForwardOnly(rows),
        GaussianVae v => NetworkCost.Of(v.Decoder).ForwardOnly(rows),
        _ => 0,
    };

    /// <summary>The MMD's Gram matrices: X·Xᵀ and Y·Yᵀ (one triangle each, symmetric) and X·Yᵀ, n rows of D features.</summary>
    static double GramFlops(long n, long features) => 2.0 * features * (n * (double)n + n * (n + 1.0));
}
