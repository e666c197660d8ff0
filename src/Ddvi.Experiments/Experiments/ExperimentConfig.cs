using System.Text.Json;
using System.Text.Json.Serialization;
using Ddvi.Runtime;

using Ddvi.Models;
namespace Ddvi.Experiments;

/// <summary>
/// Everything that defines a run, with the release's values as defaults (arXiv:2401.02739; the authors' release).
/// Immutable; <see cref="Validate"/> checks it once, and the resolved copy is written as config.json next to the
/// checkpoints and results.
/// </summary>
public sealed record ExperimentConfig
{
    /// <summary>Dataset: synthetic, mnist, fashion-mnist, or the path of a folder holding the four MNIST-format files.</summary>
    public string Dataset { get; init; } = "synthetic";

    /// <summary>Folder holding downloaded datasets; null = the user cache folder.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>Model name (see <see cref="ModelCatalog.Names"/>).</summary>
    public string Model { get; init; } = "ddvi";

    /// <summary>Prior name (see the priors catalog); aliases of the release are accepted.</summary>
    public string Prior { get; init; } = "pinwheel";

    /// <summary>Swiss-roll noise or square noise level; null = the prior's default.</summary>
    public double? PriorNoise { get; init; }

    /// <summary>Which log p(z) training and the ELBO use: auto (the release's KDE for the structured priors), exact or kde.</summary>
    [JsonConverter(typeof(JsonStringEnumConverter<Priors.PriorDensityChoice>))]
    public Priors.PriorDensityChoice PriorDensity { get; init; } = Priors.PriorDensityChoice.Auto;

    /// <summary>Reads the <c>prior_kde</c> flag of configurations written before <see cref="PriorDensity"/> existed (true = kde, false = exact, as it meant then).</summary>
    [JsonInclude, JsonPropertyName("prior_kde"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    private bool? LegacyPriorKde
    {
        get => null;
        init => PriorDensity = value is true ? Priors.PriorDensityChoice.Kde : Priors.PriorDensityChoice.Exact;
    }

    /// <summary>
    /// The models' networks (<c>--networks</c>): auto (conv networks for colour images of at least 28×28, the paper's
    /// CIFAR-10 setting; MLPs otherwise, the paper's MNIST setting), mlp or conv. See <see cref="ImageNetworks"/>.
    /// </summary>
    [JsonConverter(typeof(JsonStringEnumConverter<NetworkChoice>))]
    public NetworkChoice Networks { get; init; } = NetworkChoice.Auto;

    /// <summary>Epochs of the (last) training stage; null = the model's paper default (see <see cref="ResolvedEpochs"/>).</summary>
    public int? Epochs { get; init; }

    /// <summary>Mini-batch size (<c>--batch-size</c>); null = the model's default (<see cref="ModelRegistration.BatchSize"/>:
    /// the release's 128, 1,024 for ddvi-semi). See <see cref="ResolvedBatchSize"/>.</summary>
    public int? BatchSize { get; init; }

    /// <summary>The mini-batch size: explicit, else the model's.</summary>
    public int ResolvedBatchSize => BatchSize ?? ModelCatalog.Get(Model).BatchSize;

    /// <summary>
    /// Adam learning rate (<c>--lr</c>) of the model's training: DDVI's stage 3 (its wake and sleep phases; stages 1 and 2
    /// take <see cref="DdviSettings.PriorDiffusionLearningRate"/> and <see cref="DdviSettings.WarmupLearningRate"/>), the
    /// single stage of the other models. Null = the model's default (<see cref="ModelRegistration.LearningRate"/>).
    /// </summary>
    public double? LearningRate { get; init; }

    public long Seed { get; init; }

    /// <summary>
    /// <c>--labels N</c>: keep exactly N training labels, balanced over the classes and chosen by <see cref="Seed"/>
    /// (<see cref="Data.LabelBudget"/>); every other training example is unlabelled. Null = the semi-supervised models'
    /// default (the release's: 1,000 for MNIST-format data, 10,000 for CIFAR-10) and every label for the other models.
    /// </summary>
    public int? Labels { get; init; }

    /// <summary>
    /// <c>--train-images N</c>: train on the dataset's first N training examples, in the dataset's own order (the test
    /// split is kept whole). Null = every training example. Makes the data-size studies (8,000 or 20,000 Fashion-MNIST
    /// images) one option instead of a copied folder.
    /// </summary>
    public int? TrainImages { get; init; }

    [JsonConverter(typeof(JsonStringEnumConverter<DeviceChoice>))]
    public DeviceChoice Device { get; init; } = DeviceChoice.Auto;

    /// <summary>
    /// <c>--precision</c>: the arithmetic of the model's networks (its MLPs, conv trunks and conv decoders;
    /// <see cref="NetworkPrecision"/>). Part of what a run is, not of where it runs: a resumed run keeps its own. Denoisers and
    /// flows compute in float32 either way.
    /// </summary>
    [JsonConverter(typeof(JsonStringEnumConverter<NetworkPrecision>))]
    public NetworkPrecision Precision { get; init; } = NetworkPrecisions.Default;

    /// <summary>libtorch intra-op threads; 0 = libtorch's default.</summary>
    public int Threads { get; init; }

    public int CheckpointEvery { get; init; } = 5;

    /// <summary>
    /// Folder of TensorBoard event files (<c>--tensorboard</c>): the run writes into <c>TENSORBOARD/RUN_NAME</c>
    /// (see <see cref="TensorBoardLog"/>); null = none.
    /// </summary>
    [JsonPropertyName("tensorboard")]
    public string? TensorBoard { get; init; }

    /// <summary>Sizes of the built-in synthetic dataset (ignored for file datasets).</summary>
    public int SyntheticTrainCount { get; init; } = 8_000;
    public int SyntheticTestCount { get; init; } = 2_000;

    public VaeSettings Vae { get; init; } = new();
    public DdviSettings Ddvi { get; init; } = new();
    public AaeSettings Aae { get; init; } = new();
    public IafSettings Iaf { get; init; } = new();
    public HierarchicalIafSettings HierarchicalIaf { get; init; } = new();
    public SemiSettings Semi { get; init; } = new();
    public EvaluationSettings Evaluation { get; init; } = new();

    /// <summary>The epochs to train: explicit, else a short run on the synthetic set, else the paper's length.</summary>
    public int ResolvedEpochs => Epochs ?? (Dataset == "synthetic" ? ModelCatalog.QuickEpochs(Model) : ModelCatalog.PaperEpochs(Model));

    public double ResolvedLearningRate => LearningRate ?? ModelCatalog.DefaultLearningRate(Model);

    private bool Quick => Dataset == "synthetic";

    /// <summary>
    /// The label budget for a training set: <see cref="Labels"/> when given, else the release's default of a
    /// semi-supervised model (10,000 for colour images, CIFAR-10; 1,000 otherwise), else null (every label kept).
    /// </summary>
    public int? ResolvedLabels(Data.ImageDataset train) =>
        Labels ?? (ModelCatalog.Get(Model).SemiSupervised
            ? (train.Shape.Channels == 3 ? Data.LabelBudget.Cifar10Default : Data.LabelBudget.MnistDefault)
            : null);

    /// <summary>DDVI-semi stage 1 length: explicit, else 3,000 steps on the synthetic set, else 100 × 1000.</summary>
    public int ResolvedSemiPriorDiffusionIterations => Semi.PriorDiffusionIterations ?? (Quick ? 3_000 : 100_000);

    /// <summary>DDVI-semi stage 2 length: explicit, else 4 epochs on the synthetic set, else the release's 50.</summary>
    public int ResolvedSemiWarmupEpochs => Semi.WarmupEpochs ?? (Quick ? 4 : 50);

    /// <summary>DDVI-semi stage 3 epochs with a frozen decoder: explicit, else 60% of the stage (the release's 30 of 50).</summary>
    public int ResolvedSemiFrozenDecoderEpochs => Semi.FrozenDecoderEpochs ?? (int)Math.Round(0.6 * ResolvedEpochs);

    /// <summary>DDVI stage 1 length: explicit, else 3,000 steps on the synthetic set, else the release's 100 × 1000.</summary>
    public int ResolvedPriorDiffusionIterations => Ddvi.PriorDiffusionIterations ?? (Quick ? 3_000 : 100_000);

    /// <summary>DDVI stage 2 length: explicit, else 8 epochs on the synthetic set, else the release's 100.</summary>
    public int ResolvedWarmupEpochs => Ddvi.WarmupEpochs ?? (Quick ? 8 : 100);

    /// <summary>DDVI stage 3 epochs with a frozen decoder: explicit, else 30% of the stage (the release's 30 of 100).</summary>
    public int ResolvedFrozenDecoderEpochs => Ddvi.FrozenDecoderEpochs ?? (int)Math.Round(0.3 * ResolvedEpochs);

    /// <summary>
    /// This configuration with <paramref name="epochs"/> epochs of the last stage, keeping every schedule that is
    /// measured in epochs where it was (so that the epochs already trained stay what they were): DDVI's frozen-decoder
    /// epochs, the KL ramp of the VAE and IAF models (its fraction rescaled to the same epochs, capped at the whole run),
    /// the AAE's learning-rate step.
    /// </summary>
    public ExperimentConfig WithEpochs(int epochs)
    {
        int old = ResolvedEpochs;
        var changed = this with { Epochs = epochs };
        if (epochs == old) return changed;
        double Ramp(double fraction) => Math.Min(1.0, fraction * old / epochs);
        return Model switch
        {
            "ddvi" => changed with { Ddvi = Ddvi with { FrozenDecoderEpochs = ResolvedFrozenDecoderEpochs } },
            "ddvi-semi" => changed with { Semi = Semi with { FrozenDecoderEpochs = ResolvedSemiFrozenDecoderEpochs } },
            "vae" => changed with { Vae = Vae with { KlRampFraction = Ramp(Vae.KlRampFraction) } },
            "iaf-vae" => changed with { Iaf = Iaf with { KlRampFraction = Ramp(Iaf.KlRampFraction) } },
            "h-iaf-vae" => changed with { HierarchicalIaf = HierarchicalIaf with { KlRampFraction = Ramp(HierarchicalIaf.KlRampFraction) } },
            "aae" or "aae-semi" => changed with { Aae = Aae with { LearningRateDecayEpoch = Aae.DecayEpochFor(old) } },
            _ => changed,
        };
    }

    /// <summary>Checks names and ranges; every message names the option and what is expected.</summary>
    public ExperimentConfig Validate()
    {
        Require(!string.IsNullOrWhiteSpace(Dataset), $"--dataset must be one of {string.Join(", ", Data.DatasetCatalog.Names)} or a folder of MNIST-format files");
        if (Data.DatasetCatalog.FolderProblem(Dataset) is { } datasetProblem) Require(false, datasetProblem);
        Require(ModelCatalog.Names.Contains(Model), $"--model '{Model}' is not known; valid: {string.Join(", ", ModelCatalog.Names)}");
        // Resolving checks the name (aliases included) and that --prior-noise suits that prior.
        var prior = Priors.PriorCatalog.Resolve(Prior, PriorNoise);
        Priors.PriorCatalog.RequireDensity(prior.Name, PriorDensity);
        Require(Epochs is null || Epochs >= 1, $"--epochs must be ≥ 1, got {Epochs}");
        Require(BatchSize is null or >= 1, $"--batch-size must be ≥ 1, got {BatchSize}");
        Require(Seed >= 0, $"--seed must be an integer ≥ 0, got {Seed}");
        Require(Labels is null or >= 1, $"--labels must be ≥ 1 (the number of labelled training examples), got {Labels}");
        Require(TrainImages is null or >= 1, $"--train-images must be ≥ 1 (the number of training examples to keep), got {TrainImages}");
        Require(LearningRate is null || (LearningRate > 0 && double.IsFinite(LearningRate.Value)), $"--lr must be a finite number > 0, got {LearningRate}");
        Require(Threads >= 0, $"--threads must be ≥ 0 (0 = libtorch default), got {Threads}");
        Require(CheckpointEvery >= 1, $"--checkpoint-every must be ≥ 1, got {CheckpointEvery}");
        Require(SyntheticTrainCount >= 1 && SyntheticTestCount >= 1, "synthetic dataset sizes must be ≥ 1");
        Vae.Validate();
        Ddvi.Validate();
        Aae.Validate();
        Iaf.Validate();
        HierarchicalIaf.Validate();
        Semi.Validate();
        Evaluation.Validate();
        return this;
    }

    internal static void Require(bool condition, string message)
    {
        if (!condition) throw new ArgumentException(message);
    }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new FiniteOrNullConverter() },
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Parses a config.json; <paramref name="source"/> names the file in errors.</summary>
    public static ExperimentConfig FromJson(string json, string source)
    {
        try
        {
            return (JsonSerializer.Deserialize<ExperimentConfig>(json, JsonOptions)
                    ?? throw new InvalidDataException($"{source}: empty configuration")).Validate();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not a valid Ddvi configuration ({e.Message})", e);
        }
    }
}

/// <summary>AEVB baseline weights (arXiv:2401.02739; the authors' release).</summary>
public sealed record VaeSettings
{
    /// <summary>Final weight β of the latent terms.</summary>
    public double KlWeight { get; init; } = 0.01;

    /// <summary>Fraction of the epochs over which β ramps linearly from 0.</summary>
    public double KlRampFraction { get; init; } = 0.8;

    /// <summary>p_w, the weight of log p(z).</summary>
    public double PriorWeight { get; init; } = 5;

    public int Hidden { get; init; } = 1000;
    public double Dropout { get; init; } = 0.2;

    public void Validate()
    {
        ExperimentConfig.Require(KlWeight >= 0 && double.IsFinite(KlWeight), $"vae.kl_weight must be a finite number ≥ 0, got {KlWeight}");
        ExperimentConfig.Require(KlRampFraction is > 0 and <= 1, $"vae.kl_ramp_fraction must be in (0, 1], got {KlRampFraction}");
        ExperimentConfig.Require(PriorWeight >= 0 && double.IsFinite(PriorWeight), $"vae.prior_weight must be a finite number ≥ 0, got {PriorWeight}");
        ExperimentConfig.Require(Hidden >= 1, $"vae.hidden must be ≥ 1, got {Hidden}");
        ExperimentConfig.Require(Dropout is >= 0 and < 1, $"vae.dropout must be in [0, 1), got {Dropout}");
    }

    /// <summary>β in a 0-based epoch: linear from 0 to <see cref="KlWeight"/> over the ramp, then constant.</summary>
    public double KlWeightAt(int epoch, int epochs) =>
        KlWeight * Math.Min(1.0, epoch / Math.Max(1e-9, KlRampFraction * epochs));
}

/// <summary>How the paper's metrics are computed (arXiv:2401.02739; the authors' release).</summary>
public sealed record EvaluationSettings
{
    /// <summary>Neighbours of the KNN classifier on latents.</summary>
    public int KnnNeighbours { get; init; } = 20;

    /// <summary>Prior samples at which the latent NLL is averaged.</summary>
    public int PriorSamples { get; init; } = 10_000;

    /// <summary>Bandwidths of the KDE of test latents in the latent NLL.</summary>
    public double[] NllBandwidths { get; init; } = [0.005, 0.008, 0.01, 0.03, 0.05];

    /// <summary>Images on each side of the MMD (decoded prior samples vs test images), capped by the test set size.</summary>
    public int MmdSamples { get; init; } = 10_000;

    /// <summary>RBF kernel scales of the MMD.</summary>
    public double[] MmdSigmas { get; init; } = [2, 5, 10, 20, 40, 80];

    /// <summary>Rows per no-grad forward pass (for the likelihood bounds: test images × posterior draws per pass).</summary>
    public int BatchSize { get; init; } = 2_000;

    /// <summary>
    /// K, posterior draws per test image for the true ELBO and the importance-weighted bound on log p(x)
    /// (<c>ddvi evaluate --iwae-samples</c>); bounds are reported for k = 1, 10, 100, … dividing K, and K.
    /// </summary>
    public int IwaeSamples { get; init; } = 100;

    /// <summary>
    /// N, the first test images the true ELBO and the importance-weighted bound average over
    /// (<c>ddvi evaluate --iwae-examples</c>); capped by the test set. Kept small because DDVI's posterior density needs a
    /// backward pass through its chain per latent coordinate and draw.
    /// </summary>
    public int IwaeExamples { get; init; } = 500;

    public void Validate()
    {
        ExperimentConfig.Require(KnnNeighbours >= 1, $"evaluation.knn_neighbours must be ≥ 1, got {KnnNeighbours}");
        ExperimentConfig.Require(PriorSamples >= 1, $"evaluation.prior_samples must be ≥ 1, got {PriorSamples}");
        ExperimentConfig.Require(NllBandwidths.Length > 0 && NllBandwidths.All(h => h > 0 && double.IsFinite(h)), "evaluation.nll_bandwidths must be finite positive numbers");
        ExperimentConfig.Require(MmdSamples >= 1, $"evaluation.mmd_samples must be ≥ 1, got {MmdSamples}");
        ExperimentConfig.Require(MmdSigmas.Length > 0 && MmdSigmas.All(s => s > 0 && double.IsFinite(s)), "evaluation.mmd_sigmas must be finite positive numbers");
        ExperimentConfig.Require(BatchSize >= 1, $"evaluation.batch_size must be ≥ 1, got {BatchSize}");
        ExperimentConfig.Require(IwaeSamples >= 1, $"--iwae-samples (evaluation.iwae_samples) must be ≥ 1, got {IwaeSamples}");
        ExperimentConfig.Require(IwaeExamples >= 1, $"--iwae-examples (evaluation.iwae_examples) must be ≥ 1, got {IwaeExamples}");
    }
}

/// <summary>Adversarial autoencoder baseline settings (arXiv:2401.02739; the authors' release).</summary>
public sealed record AaeSettings
{
    /// <summary>w, the weight of the discriminator and generator losses (6 in the release).</summary>
    public double AdversarialWeight { get; init; } = 6;

    /// <summary>σ₀ of the discriminator's input noise in the first quarter of training (σ₀/2 in the second, 0 after).</summary>
    public double DiscriminatorNoise { get; init; } = 0.2;

    /// <summary>0-based epoch from which every learning rate is multiplied by <see cref="LearningRateDecay"/>; null = 75% of the epochs (the release's 150 of 200).</summary>
    public int? LearningRateDecayEpoch { get; init; }

    public double LearningRateDecay { get; init; } = 0.1;

    public int Hidden { get; init; } = 1000;
    public double Dropout { get; init; } = 0.2;
    public int DiscriminatorHidden { get; init; } = 1000;
    public double DiscriminatorDropout { get; init; } = 0.2;

    /// <summary>The epoch of the learning-rate step for a run of <paramref name="epochs"/> epochs.</summary>
    public int DecayEpochFor(int epochs) => LearningRateDecayEpoch ?? (int)Math.Round(0.75 * epochs);

    public void Validate()
    {
        ExperimentConfig.Require(AdversarialWeight > 0 && double.IsFinite(AdversarialWeight), $"aae.adversarial_weight must be a finite number > 0, got {AdversarialWeight}");
        ExperimentConfig.Require(DiscriminatorNoise >= 0 && double.IsFinite(DiscriminatorNoise), $"aae.discriminator_noise must be a finite number ≥ 0, got {DiscriminatorNoise}");
        ExperimentConfig.Require(LearningRateDecayEpoch is null or >= 0, $"aae.learning_rate_decay_epoch must be ≥ 0, got {LearningRateDecayEpoch}");
        ExperimentConfig.Require(LearningRateDecay > 0 && LearningRateDecay <= 1, $"aae.learning_rate_decay must be in (0, 1], got {LearningRateDecay}");
        ExperimentConfig.Require(Hidden >= 1, $"aae.hidden must be ≥ 1, got {Hidden}");
        ExperimentConfig.Require(Dropout is >= 0 and < 1, $"aae.dropout must be in [0, 1), got {Dropout}");
        ExperimentConfig.Require(DiscriminatorHidden >= 1, $"aae.discriminator_hidden must be ≥ 1, got {DiscriminatorHidden}");
        ExperimentConfig.Require(DiscriminatorDropout is >= 0 and < 1, $"aae.discriminator_dropout must be in [0, 1), got {DiscriminatorDropout}");
    }
}

/// <summary>IAF-VAE weights and sizes of the release (arXiv:2401.02739; the authors' release,
/// conf/model/iaf_vae.yaml).</summary>
public record IafSettings
{
    /// <summary>Final weight β of the latent terms.</summary>
    public double KlWeight { get; init; } = 0.01;

    /// <summary>Fraction of the epochs over which β ramps linearly from 0.</summary>
    public double KlRampFraction { get; init; } = 0.8;

    /// <summary>p_w, the weight of log p(z).</summary>
    public double PriorWeight { get; init; } = 1;

    /// <summary>Width of the flow context h from the encoder.</summary>
    public int ContextSize { get; init; } = 10;

    /// <summary>IAF layers (per level in the hierarchical model).</summary>
    public int FlowLayers { get; init; } = 4;

    /// <summary>Units per hidden layer of each MADE.</summary>
    public int MadeHidden { get; init; } = 128;

    public int Hidden { get; init; } = 1000;
    public double Dropout { get; init; } = 0.2;

    /// <summary>The key of these settings in config.json, for error messages.</summary>
    protected virtual string Key => "iaf";

    public virtual void Validate()
    {
        ExperimentConfig.Require(KlWeight >= 0 && double.IsFinite(KlWeight), $"{Key}.kl_weight must be a finite number ≥ 0, got {KlWeight}");
        ExperimentConfig.Require(KlRampFraction is > 0 and <= 1, $"{Key}.kl_ramp_fraction must be in (0, 1], got {KlRampFraction}");
        ExperimentConfig.Require(PriorWeight >= 0 && double.IsFinite(PriorWeight), $"{Key}.prior_weight must be a finite number ≥ 0, got {PriorWeight}");
        ExperimentConfig.Require(ContextSize >= 1, $"{Key}.context_size must be ≥ 1, got {ContextSize}");
        ExperimentConfig.Require(FlowLayers >= 1, $"{Key}.flow_layers must be ≥ 1, got {FlowLayers}");
        ExperimentConfig.Require(MadeHidden >= 1, $"{Key}.made_hidden must be ≥ 1, got {MadeHidden}");
        ExperimentConfig.Require(Hidden >= 1, $"{Key}.hidden must be ≥ 1, got {Hidden}");
        ExperimentConfig.Require(Dropout is >= 0 and < 1, $"{Key}.dropout must be in [0, 1), got {Dropout}");
    }

    /// <summary>β in a 0-based epoch: linear from 0 to <see cref="KlWeight"/> over the ramp, then constant.</summary>
    public double KlWeightAt(int epoch, int epochs) =>
        KlWeight * Math.Min(1.0, epoch / Math.Max(1e-9, KlRampFraction * epochs));
}

/// <summary>
/// Hierarchical IAF-VAE settings of the release (arXiv:2401.02739; the authors' release, conf/model/h_iaf_vae.yaml):
/// the IAF-VAE's with β = 0.005, p_w = 0.5 and 64-unit MADEs, plus the level-2 network sizes.
/// </summary>
public sealed record HierarchicalIafSettings : IafSettings
{
    public HierarchicalIafSettings()
    {
        KlWeight = 0.005;
        PriorWeight = 0.5;
        MadeHidden = 64;
    }

    /// <summary>Width of the level-2 image features.</summary>
    public int FeatureSize { get; init; } = 128;

    /// <summary>Width of the two hidden layers of the level-2 encoder.</summary>
    public int Level2Hidden { get; init; } = 24;

    protected override string Key => "hierarchical_iaf";

    public override void Validate()
    {
        base.Validate();
        ExperimentConfig.Require(FeatureSize >= 1, $"{Key}.feature_size must be ≥ 1, got {FeatureSize}");
        ExperimentConfig.Require(Level2Hidden >= 1, $"{Key}.level2_hidden must be ≥ 1, got {Level2Hidden}");
    }
}

/// <summary>
/// Writes a NaN or infinite double as JSON null (JSON has no such numbers: the serializer would otherwise stop with its
/// own message) and reads null back as NaN. Configurations never hold one (validation rejects them); a metric that could
/// not be computed does, and metrics.json names it with the reason (<see cref="MetricsReport.NotComputed"/>).
/// </summary>
public sealed class FiniteOrNullConverter : JsonConverter<double>
{
    public override bool HandleNull => true;

    public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

    public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
    {
        if (double.IsFinite(value)) writer.WriteNumberValue(value);
        else writer.WriteNullValue();
    }
}
