using System.Text.Json.Serialization;
using Ddvi.Diffusion;

namespace Ddvi.Experiments;

/// <summary>
/// Settings of the semi-supervised models (config key <c>semi</c>), the authors' release's values as defaults
/// (arXiv:2401.02739; <c>conf/model/diff_vae_warmup_semi.yaml</c>, <c>diff_vae_semi.yaml</c>, <c>vae_semi.yaml</c>,
/// <c>iaf_vae_semi.yaml</c>, <c>aae_semi.yaml</c>). The label budget itself is <see cref="ExperimentConfig.Labels"/>.
/// </summary>
public sealed record SemiSettings
{
    /// <summary>DDVI-semi's β (<c>kld_weight</c>); null = the release's 0.1, or 0.5 on colour images (CIFAR-10).</summary>
    public double? KlWeight { get; init; }

    /// <summary>λ_z, the weight of −log p(z|c) in DDVI-semi's wake loss (<c>prior_z_weight</c>, 1).</summary>
    public double PriorWeight { get; init; } = 1;

    /// <summary>w, the weight of the wake matching and sleep noise prediction (<c>diff_weight</c>, 1).</summary>
    public double MatchingWeight { get; init; } = 1;

    /// <summary>Weight of the entropy of q(c|x) on unlabelled examples inside the β term (0.001 in the release).</summary>
    public double EntropyWeight { get; init; } = 0.001;

    /// <summary><c>cls_weight</c>: the labelled cross-entropy enters as this × β (1).</summary>
    public double ClassifierWeight { get; init; } = 1;

    /// <summary>T of DDVI-semi's per-class chains (prior and posterior; 100 in the release).</summary>
    public int Steps { get; init; } = 100;

    /// <summary>K, sleep steps per wake step (<c>diff_ct</c>, 30).</summary>
    public int SleepSteps { get; init; } = 30;

    /// <summary>Stage 1: optimiser steps of the ten per-class prior diffusions, trained together; null = 100,000
    /// (3,000 on the synthetic set).</summary>
    public int? PriorDiffusionIterations { get; init; }

    public int PriorDiffusionStepsPerEpoch { get; init; } = 1000;

    /// <summary>Stage 1 prior samples per class and step.</summary>
    public int PriorDiffusionPerClass { get; init; } = 128;

    public double PriorDiffusionLearningRate { get; init; } = 1e-3;

    /// <summary>Stage 2 (the release's <c>diff_vae_semi</c>) epochs; null = its 50 (4 on the synthetic set).</summary>
    public int? WarmupEpochs { get; init; }

    public double WarmupLearningRate { get; init; } = 1e-4;

    /// <summary>Stage-3 epochs with the decoder fixed; null = 60% of the stage (the release's 30 of 50).</summary>
    public int? FrozenDecoderEpochs { get; init; }

    [JsonConverter(typeof(JsonStringEnumConverter<NoiseLossKind>))]
    public NoiseLossKind NoiseLoss { get; init; } = NoiseLossKind.Huber;

    public int Hidden { get; init; } = PaperSettings.Hidden;
    public double Dropout { get; init; } = PaperSettings.Dropout;

    /// <summary>Dropout of DDVI-semi's auxiliary encoder (<c>dropout</c> 0.4).</summary>
    public double AuxiliaryDropout { get; init; } = 0.4;

    /// <summary>β for a dataset of colour images or not.</summary>
    public double KlWeightFor(bool colour) => KlWeight ?? (colour ? 0.5 : 0.1);

    public void Validate()
    {
        ExperimentConfig.Require(KlWeight is null || (KlWeight >= 0 && double.IsFinite(KlWeight.Value)), $"semi.kl_weight must be a finite number ≥ 0, got {KlWeight}");
        foreach (var (name, value) in new[] { ("prior_weight", PriorWeight), ("matching_weight", MatchingWeight), ("entropy_weight", EntropyWeight), ("classifier_weight", ClassifierWeight) })
            ExperimentConfig.Require(value >= 0 && double.IsFinite(value), $"semi.{name} must be a finite number ≥ 0, got {value}");
        ExperimentConfig.Require(Steps >= 1, $"semi.steps must be ≥ 1, got {Steps}");
        ExperimentConfig.Require(SleepSteps >= 0, $"semi.sleep_steps must be ≥ 0, got {SleepSteps}");
        ExperimentConfig.Require(PriorDiffusionIterations is null or >= 1, $"semi.prior_diffusion_iterations must be ≥ 1, got {PriorDiffusionIterations}");
        ExperimentConfig.Require(PriorDiffusionStepsPerEpoch >= 1, $"semi.prior_diffusion_steps_per_epoch must be ≥ 1, got {PriorDiffusionStepsPerEpoch}");
        ExperimentConfig.Require(PriorDiffusionPerClass >= 1, $"semi.prior_diffusion_per_class must be ≥ 1, got {PriorDiffusionPerClass}");
        ExperimentConfig.Require(PriorDiffusionLearningRate > 0 && double.IsFinite(PriorDiffusionLearningRate), $"semi.prior_diffusion_learning_rate must be a finite number > 0, got {PriorDiffusionLearningRate}");
        ExperimentConfig.Require(WarmupEpochs is null or >= 1, $"semi.warmup_epochs must be ≥ 1, got {WarmupEpochs}");
        ExperimentConfig.Require(WarmupLearningRate > 0 && double.IsFinite(WarmupLearningRate), $"semi.warmup_learning_rate must be a finite number > 0, got {WarmupLearningRate}");
        ExperimentConfig.Require(FrozenDecoderEpochs is null or >= 0, $"semi.frozen_decoder_epochs must be ≥ 0, got {FrozenDecoderEpochs}");
        ExperimentConfig.Require(Hidden >= 1, $"semi.hidden must be ≥ 1, got {Hidden}");
        ExperimentConfig.Require(Dropout is >= 0 and < 1, $"semi.dropout must be in [0, 1), got {Dropout}");
        ExperimentConfig.Require(AuxiliaryDropout is >= 0 and < 1, $"semi.auxiliary_dropout must be in [0, 1), got {AuxiliaryDropout}");
    }
}
