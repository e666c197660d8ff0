using Ddvi.Inference;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Methods;

/// <summary>
/// Denoising diffusion variational inference as the release trains it, in three stages over one
/// <see cref="DdviModel"/> (arXiv:2401.02739; the authors' release):
/// (1) a diffusion model of the prior trained on prior samples,
/// (2) the warm-up model whose posterior runs the prior's reverse chain, (3) DDVI proper with the
/// x-conditioned posterior chain, trained by wake steps on data and K sleep steps on fantasy pairs,
/// with the decoder frozen for the first epochs. Every stage continues from the previous one's weights
/// in the same run folder, so no manual earlier run or checkpoint path is needed.
/// </summary>
public sealed class DdviMethod : IExperimentMethod
{
    public const string PriorDiffusionStage = "prior-diffusion";
    public const string WarmupStage = "warmup";
    public const string DdviStageName = "ddvi";

    /// <summary>
    /// Stage 3 reads these settings and stages 1 and 2 do not (the wake and sleep weights, K, the start term, the aggregate
    /// term, the frozen-decoder epochs, stage 3's learning rate and length): a run that changes only them can reuse another
    /// run's prior diffusion and warm-up (<c>ddvi train --fork-from</c>). The network sizes, T of both chains, the schedule
    /// and the noise loss are read before stage 3.
    /// </summary>
    public static ForkPoint ForkPoint { get; } = new(DdviStageName, [PriorDiffusionStage, WarmupStage],
    [
        "ddvi.kl_weight", "ddvi.prior_weight", "ddvi.matching_weight", "ddvi.sleep_steps", "ddvi.frozen_decoder_epochs",
        "ddvi.start", "ddvi.aggregate_weight", "learning_rate", "epochs",
    ]);

    private readonly DdviModel _model;
    private readonly MethodContext _context;

    public DdviMethod(MethodContext context)
    {
        _context = context;
        var config = context.Config;
        var s = config.Ddvi;
        var networks = context.Networks();
        _model = networks.AreModelDefaults
            ? DdviModel.Paper((int)context.Train.Dimension, latentDim: context.Prior.Dimension, s.Hidden, s.PriorSteps, s.PosteriorSteps, s.Schedule,
                s.Dropout, s.AuxiliaryDropout)
            : Build(networks, context.Prior.Dimension, s);
        // Move before any optimiser sees the parameters: .to() replaces parameter objects.
        _model.to(context.Device);
        // Evaluation and plots use the DDVI posterior; the training losses pick their chain themselves.
        _model.Stage = Models.DdviStage.Ddvi;

        var prior = context.Prior;
        int iterations = config.ResolvedPriorDiffusionIterations;
        int stepsPerEpoch = Math.Min(s.PriorDiffusionStepsPerEpoch, iterations);
        var priorDiffusion = new TrainingPhase
        {
            Name = "prior",
            Parameters = _model.PriorDiffusionParameters(),
            LearningRate = s.PriorDiffusionLearningRate,
            Loss = step => DdviObjectives.PriorDiffusionLoss(_model.PriorDenoiser, _model.PriorSchedule, prior,
                s.PriorDiffusionBatchSize, s.NoiseLoss, step.Generator),
        };

        var warmupWeights = new DdviWarmupWeights(s.WarmupKlWeight, 1.0, s.NoiseLoss);
        var warmup = new TrainingPhase
        {
            Name = "warmup",
            Parameters = _model.WarmupParameters(),
            LearningRate = s.WarmupLearningRate,
            Loss = step => DdviObjectives.WarmupLoss(_model, step.Batch.RequireX(), prior, warmupWeights, step.Generator),
        };

        int epochs = config.ResolvedEpochs;
        int frozen = config.ResolvedFrozenDecoderEpochs;
        var weights = new DdviWeights(s.KlWeight, s.PriorWeight, s.MatchingWeight, s.NoiseLoss, Start: s.Start, AggregateWeight: s.AggregateWeight);
        Weights = weights;
        var (wake, sleep) = DdviPhases.WakeAndSleep(_model, prior, weights, config.ResolvedLearningRate, config.ResolvedLearningRate,
            s.SleepSteps, config.ResolvedBatchSize, frozenParameters: epoch => epoch < frozen ? _model.DecoderParameters() : []);

        Stages =
        [
            new TrainingStage(PriorDiffusionStage, (iterations + stepsPerEpoch - 1) / stepsPerEpoch, new DataFreeSteps(stepsPerEpoch), [priorDiffusion]),
            new TrainingStage(WarmupStage, config.ResolvedWarmupEpochs, context.TrainingBatches(), [warmup],
                UsePosterior: () =>
                {
                    _model.Stage = Models.DdviStage.Warmup;
                    return () => _model.Stage = Models.DdviStage.Ddvi;
                }),
            new TrainingStage(DdviStageName, epochs, context.TrainingBatches(), [wake, sleep]),
        ];
    }

    /// <summary>The DDVI model with the networks <paramref name="networks"/> gives, created in the order of
    /// <see cref="DdviModel.Paper"/>: encoder, decoder, prior denoiser, auxiliary encoder, posterior denoiser.</summary>
    private static DdviModel Build(ImageNetworks networks, int d, DdviSettings s)
    {
        var encoder = networks.Encoder([d, d], s.Hidden, s.Dropout);
        var likelihood = networks.Likelihood(d, s.Hidden, s.Dropout);
        var priorDenoiser = new TimeConditionedMlp(s.PriorSteps, d, PaperSettings.DenoiserHidden);
        var auxiliaryEncoder = networks.AuxiliaryEncoder(PaperSettings.ContextDim, s.Hidden, s.AuxiliaryDropout);
        var posteriorDenoiser = new ConditionalDenoiser(s.PosteriorSteps, d, PaperSettings.ContextDim, PaperSettings.DenoiserHidden);
        return new DdviModel(encoder, likelihood, auxiliaryEncoder, posteriorDenoiser, priorDenoiser, s.Schedule);
    }

    public nn.Module Module => _model;
    public ILatentVariableModel Model => _model;
    public DdviModel DdviModel => _model;
    public IReadOnlyList<TrainingStage> Stages { get; }

    /// <summary>The weights of stage 3's wake and sleep losses.</summary>
    public DdviWeights Weights { get; }
    public bool HasElbo => true;

    public string ElboDefinition =>
        "the release's DDVI evaluation formula (arXiv:2401.02739; the authors' release), one sample per test image: log p(x|z) − KL(N(μ,σ²) ‖ N(0,I)) + log p(z) " +
        "− Σ_{t=2}^{T} ‖μ_φ,t − μ̃_t‖²/(2σ̃²_t) along the sampled chain; nats_per_image sums log p(x|z) over pixels, " +
        "release_per_pixel_scale averages it over pixels (the release's BCE scale). It is not a strict bound (see docs/elbo.md)";

    public ElboEstimate EstimateElbo(Tensor x, Generator generator) => DdviObjectives.Elbo(_model, x, _context.Prior, generator);
}
