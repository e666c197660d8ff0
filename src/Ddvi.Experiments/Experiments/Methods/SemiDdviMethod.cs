using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Methods;

/// <summary>
/// Semi-supervised DDVI as the authors' release trains it (arXiv:2401.02739; <c>./run.sh mnist_semi diff_vae_warmup_semi
/// PRIOR</c> after its <c>diff_vae_semi</c> warm-up), in three stages over one <see cref="SemiDdviModel"/> and one run folder:
/// (1) "prior-diffusion": the C per-class prior diffusions, each on its prior segment, trained together;
/// (2) "warmup" (<c>diff_vae_semi</c>): encoder with class logits → y → the fixed prior chain of each class → decoder;
/// (3) "ddvi-semi" (<c>diff_vae_warmup_semi</c>): the per-class posterior chains with the auxiliary context, wake steps on
/// data and K sleep steps on fantasies of every class, the decoder fixed for the first 60% of the epochs.
/// Latents route each example through the chain of its predicted class.
/// </summary>
public sealed class SemiDdviMethod : IExperimentMethod
{
    public const string PriorDiffusionStage = "prior-diffusion";
    public const string WarmupStage = "warmup";
    public const string StageName = "ddvi-semi";

    /// <summary>
    /// Stage 3 reads these settings and stages 1 and 2 do not (the prior and matching weights, K, the frozen-decoder epochs,
    /// stage 3's learning rate and length); the warm-up also reads β, the entropy and classifier weights, so those are not
    /// here (<c>ddvi train --fork-from</c>).
    /// </summary>
    public static ForkPoint ForkPoint { get; } = new(StageName, [PriorDiffusionStage, WarmupStage],
    [
        "semi.prior_weight", "semi.matching_weight", "semi.sleep_steps", "semi.frozen_decoder_epochs", "learning_rate", "epochs",
    ]);

    private readonly SemiDdviModel _model;
    private readonly ClassConditionalDensity _classDensity;

    public SemiDdviMethod(MethodContext context)
    {
        var config = context.Config;
        var s = config.Semi;
        var prior = context.Prior;
        int d = prior.Dimension;
        int classes = prior.ClassCount;
        if (classes != context.Train.ClassCount)
            throw new ArgumentException($"--model ddvi-semi: the prior {prior.Name} has {classes} segments but {config.Dataset} has {context.Train.ClassCount} classes; class c is tied to segment c, so they must match.");
        var networks = context.Networks();
        _model = networks.AreModelDefaults
            ? SemiDdviModel.Paper((int)context.Train.Dimension, d, classes, s.Hidden, s.Steps, s.Dropout, s.AuxiliaryDropout)
            : new SemiDdviModel(networks.Encoder([d, d, classes], s.Hidden, s.Dropout), networks.Likelihood(d, s.Hidden, s.Dropout),
                networks.AuxiliaryEncoder(PaperSettings.ContextDim, s.Hidden, s.AuxiliaryDropout),
                new ClassDenoisers(classes, s.Steps, d, 0, PaperSettings.DenoiserHidden),
                new ClassDenoisers(classes, s.Steps, d, PaperSettings.ContextDim, PaperSettings.DenoiserHidden));
        // Move before any optimiser sees the parameters: .to() replaces parameter objects.
        _model.to(context.Device);
        _classDensity = new ClassConditionalDensity(prior, Trainer.EpochSeed(config.Seed, "class-density", 0), context.Device);

        Weights = new SemiDdviWeights(s.KlWeightFor(context.Train.Shape.Channels == 3), s.PriorWeight, s.MatchingWeight,
            s.EntropyWeight, s.ClassifierWeight, s.NoiseLoss);
        var weights = Weights;
        int iterations = config.ResolvedSemiPriorDiffusionIterations;
        int stepsPerEpoch = Math.Min(s.PriorDiffusionStepsPerEpoch, iterations);
        var priorDiffusion = new TrainingPhase
        {
            Name = "prior",
            Parameters = _model.PriorDiffusionParameters(),
            LearningRate = s.PriorDiffusionLearningRate,
            Loss = step => SemiDdviObjectives.PriorDiffusionLoss(_model, prior, s.PriorDiffusionPerClass, s.NoiseLoss, step.Generator),
        };
        var priorParameters = _model.PriorDiffusionParameters();
        var warmup = new TrainingPhase
        {
            Name = "warmup",
            Parameters = _model.WarmupParameters(),
            LearningRate = s.WarmupLearningRate,
            FrozenParameters = _ => priorParameters,
            Loss = step => SemiDdviObjectives.WarmupLoss(_model, step.Batch.RequireX(), Labels(step), weights, step.Generator),
        };
        int frozen = config.ResolvedSemiFrozenDecoderEpochs;
        var wake = new TrainingPhase
        {
            Name = "wake",
            Parameters = _model.WakeParameters(),
            LearningRate = config.ResolvedLearningRate,
            FrozenParameters = epoch => epoch < frozen ? _model.DecoderParameters() : [],
            Loss = step => SemiDdviObjectives.WakeLoss(_model, step.Batch.RequireX(), Labels(step), _classDensity, weights, step.Generator),
        };
        int sleepBatch = config.ResolvedBatchSize;
        var sleep = new TrainingPhase
        {
            Name = "sleep",
            Parameters = _model.SleepParameters(),
            LearningRate = config.ResolvedLearningRate,
            RepeatsPerBatch = Math.Max(1, s.SleepSteps),
            IsActive = _ => s.SleepSteps > 0,
            Loss = step => SemiDdviObjectives.SleepLoss(_model, prior, sleepBatch, weights, step.Generator),
        };
        _model.Stage = DdviStage.Ddvi;
        Stages =
        [
            new TrainingStage(PriorDiffusionStage, (iterations + stepsPerEpoch - 1) / stepsPerEpoch, new DataFreeSteps(stepsPerEpoch), [priorDiffusion]),
            new TrainingStage(WarmupStage, config.ResolvedSemiWarmupEpochs, context.TrainingBatches(), [warmup],
                UsePosterior: () =>
                {
                    _model.Stage = DdviStage.Warmup;
                    return () => _model.Stage = DdviStage.Ddvi;
                }),
            new TrainingStage(StageName, config.ResolvedEpochs, context.TrainingBatches(), [wake, sleep]),
        ];
    }

    private static Tensor Labels(PhaseStep step) =>
        step.Batch.Labels ?? throw new InvalidOperationException("ddvi-semi: its training batches carry no labels");

    public nn.Module Module => _model;
    public ILatentVariableModel Model => _model;
    public SemiDdviModel SemiModel => _model;
    public ClassConditionalDensity ClassDensity => _classDensity;
    public SemiDdviWeights Weights { get; }
    public IReadOnlyList<TrainingStage> Stages { get; }
    public bool HasElbo => true;

    public string ElboDefinition =>
        "the release's semi-supervised DDVI evaluation formula, one y_T per test image through every class's chain, weighted by q(c|x): " +
        "Σ_c q(c|x) [log p(x|z_c) + log p(z_c|c) − Σ_{t=2}^{T} ‖μ_φ,t − μ̃_t‖²/(2σ̃²_t)] − KL(N(μ,σ²) ‖ N(0,I)), log p(z|c) the per-class KDE " +
        "(2,000 samples per class, bandwidth 0.05); nats_per_image sums log p(x|z) over pixels, release_per_pixel_scale averages it. Not a strict bound (docs/elbo.md)";

    public ElboEstimate EstimateElbo(Tensor x, Generator generator) => SemiDdviObjectives.Elbo(_model, x, _classDensity, generator);
}
