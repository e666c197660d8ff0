using System.Text.Json.Serialization;
using Ddvi.Diffusion;
using Ddvi.Objectives;

namespace Ddvi.Experiments;

/// <summary>
/// The three-stage DDVI pipeline's settings (arXiv:2401.02739; the authors' release), the release's values as defaults.
/// Stage lengths left null take the paper's values, or short ones on the built-in synthetic dataset.
/// </summary>
public sealed record DdviSettings
{
    /// <summary>Stage 1: total optimiser steps of the prior diffusion (100 × 1000 in the release); null = default.</summary>
    public int? PriorDiffusionIterations { get; init; }

    /// <summary>Stage 1 steps per logged epoch.</summary>
    public int PriorDiffusionStepsPerEpoch { get; init; } = 1000;

    public int PriorDiffusionBatchSize { get; init; } = PaperSettings.BatchSize;

    /// <summary>Stage 1 Adam learning rate (<c>--prior-diffusion-lr</c>; 1e-3 in the release).</summary>
    public double PriorDiffusionLearningRate { get; init; } = 1e-3;

    /// <summary>T of the prior (warm-up) chain.</summary>
    public int PriorSteps { get; init; } = PaperSettings.PriorSteps;

    /// <summary>Stage 2 epochs (100 in the release); null = default.</summary>
    public int? WarmupEpochs { get; init; }

    /// <summary>Stage 2 Adam learning rate (<c>--warmup-lr</c>; 1e-4 in the release). Stage 3 takes <c>--lr</c>
    /// (<see cref="ExperimentConfig.ResolvedLearningRate"/>).</summary>
    public double WarmupLearningRate { get; init; } = 1e-4;
    public double WarmupKlWeight { get; init; } = 0.01;

    /// <summary>T of the x-conditioned posterior chain.</summary>
    public int PosteriorSteps { get; init; } = PaperSettings.PosteriorSteps;

    /// <summary>β_KL of the wake loss.</summary>
    public double KlWeight { get; init; } = 0.003;

    /// <summary>λ_z, the weight of −log p(z) inside the wake loss's latent term.</summary>
    public double PriorWeight { get; init; } = 1;

    /// <summary>w, the weight of the mean-matching (wake) and noise-prediction (sleep) terms.</summary>
    public double MatchingWeight { get; init; } = 1;

    /// <summary>K, sleep steps per wake step.</summary>
    public int SleepSteps { get; init; } = PaperSettings.SleepSteps;

    /// <summary>Epochs of stage 3 during which the decoder stays fixed; null = 30% of the stage (30 of the release's 100).</summary>
    public int? FrozenDecoderEpochs { get; init; }

    [JsonConverter(typeof(JsonStringEnumConverter<NoiseScheduleKind>))]
    public NoiseScheduleKind Schedule { get; init; } = NoiseScheduleKind.Linear;

    [JsonConverter(typeof(JsonStringEnumConverter<NoiseLossKind>))]
    public NoiseLossKind NoiseLoss { get; init; } = NoiseLossKind.Huber;

    /// <summary>What stage 3's wake loss compares y_T with: N(0, I) as the release, or the forward marginal r(y_T | z).</summary>
    [JsonConverter(typeof(JsonStringEnumConverter<StartTarget>))]
    public StartTarget Start { get; init; } = StartTarget.StandardNormal;

    /// <summary>λ_agg, weight of an MMD² between the wake batch's latents and as many prior draws
    /// (<see cref="AggregateMatching"/>; 0, the release's: off).</summary>
    public double AggregateWeight { get; init; }

    public int Hidden { get; init; } = PaperSettings.Hidden;
    public double Dropout { get; init; } = PaperSettings.Dropout;
    public double AuxiliaryDropout { get; init; } = PaperSettings.AuxiliaryDropout;

    public void Validate()
    {
        ExperimentConfig.Require(PriorDiffusionIterations is null or >= 1, $"--prior-diffusion-iterations must be ≥ 1, got {PriorDiffusionIterations}");
        ExperimentConfig.Require(PriorDiffusionStepsPerEpoch >= 1, $"ddvi.prior_diffusion_steps_per_epoch must be ≥ 1, got {PriorDiffusionStepsPerEpoch}");
        ExperimentConfig.Require(PriorDiffusionBatchSize >= 1, $"ddvi.prior_diffusion_batch_size must be ≥ 1, got {PriorDiffusionBatchSize}");
        ExperimentConfig.Require(PriorDiffusionLearningRate > 0 && double.IsFinite(PriorDiffusionLearningRate), $"--prior-diffusion-lr must be a finite number > 0, got {PriorDiffusionLearningRate}");
        ExperimentConfig.Require(PriorSteps >= 1, $"--prior-steps must be ≥ 1, got {PriorSteps}");
        ExperimentConfig.Require(WarmupEpochs is null or >= 1, $"--warmup-epochs must be ≥ 1, got {WarmupEpochs}");
        ExperimentConfig.Require(WarmupLearningRate > 0 && double.IsFinite(WarmupLearningRate), $"--warmup-lr must be a finite number > 0, got {WarmupLearningRate}");
        ExperimentConfig.Require(WarmupKlWeight >= 0 && double.IsFinite(WarmupKlWeight), $"ddvi.warmup_kl_weight must be a finite number ≥ 0, got {WarmupKlWeight}");
        ExperimentConfig.Require(PosteriorSteps >= 1, $"--posterior-steps must be ≥ 1, got {PosteriorSteps}");
        ExperimentConfig.Require(KlWeight >= 0 && double.IsFinite(KlWeight), $"--kl-weight must be a finite number ≥ 0, got {KlWeight}");
        ExperimentConfig.Require(PriorWeight >= 0 && double.IsFinite(PriorWeight), $"--prior-weight must be a finite number ≥ 0, got {PriorWeight}");
        ExperimentConfig.Require(MatchingWeight >= 0 && double.IsFinite(MatchingWeight), $"--matching-weight must be a finite number ≥ 0, got {MatchingWeight}");
        ExperimentConfig.Require(AggregateWeight >= 0 && double.IsFinite(AggregateWeight), $"--aggregate-weight must be a finite number ≥ 0, got {AggregateWeight}");
        ExperimentConfig.Require(SleepSteps >= 0, $"--sleep-steps must be ≥ 0, got {SleepSteps}");
        ExperimentConfig.Require(FrozenDecoderEpochs is null or >= 0, $"--frozen-decoder-epochs must be ≥ 0, got {FrozenDecoderEpochs}");
        ExperimentConfig.Require(Hidden >= 1, $"ddvi.hidden must be ≥ 1, got {Hidden}");
        ExperimentConfig.Require(Dropout is >= 0 and < 1, $"ddvi.dropout must be in [0, 1), got {Dropout}");
        ExperimentConfig.Require(AuxiliaryDropout is >= 0 and < 1, $"ddvi.auxiliary_dropout must be in [0, 1), got {AuxiliaryDropout}");
    }
}
