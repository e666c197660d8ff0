using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Training;

namespace Ddvi.Inference;

/// <summary>
/// The training phases of clustering with a learned Gaussian-mixture prior (the paper's genomics experiment,
/// arXiv:2401.02739; the authors' release), for any <see cref="Trainer"/>. Learning rates and the other defaults are
/// the release's.
/// </summary>
public static class ClusteringPhases
{
    /// <summary>
    /// Clustering DDVI (<c>diff_vae_autoclustering_mse</c>): per data batch a "wake" step
    /// (<see cref="ClusteringObjectives.WakeLoss"/>; encoder, decoder and prior denoiser, the denoiser's gradient clipped
    /// to norm <paramref name="denoiserClip"/>); after every epoch e (0-based), e + 1 "centres" steps
    /// (<see cref="ClusteringObjectives.CentreLoss"/>, the mixture's centres only) and then e + 1 "refit" steps
    /// (<see cref="ClusteringObjectives.RefitLoss"/>, the prior denoiser only), each on <paramref name="priorBatchSize"/>
    /// prior draws.
    /// </summary>
    public static IReadOnlyList<TrainingPhase> ForDdvi(ClusteringDdvi model, ClusteringWeights? weights = null, double learningRate = 1e-4,
        double centreLearningRate = 0.01, double refitLearningRate = 1e-3, int priorBatchSize = 128, double denoiserClip = 0.1)
    {
        ArgumentNullException.ThrowIfNull(model);
        weights ??= new ClusteringWeights();
        weights.Validate();
        CheckRate(learningRate, nameof(learningRate));
        CheckRate(centreLearningRate, nameof(centreLearningRate));
        CheckRate(refitLearningRate, nameof(refitLearningRate));
        if (priorBatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(priorBatchSize), priorBatchSize, "ClusteringPhases: the batch of prior draws must hold at least 1 point.");
        var wake = new TrainingPhase
        {
            Name = "wake",
            Parameters = model.NetworkParameters(),
            LearningRate = learningRate,
            Clip = new GradientNormClip(model.DenoiserParameters(), denoiserClip),
            Loss = step => ClusteringObjectives.WakeLoss(model, step.Batch.RequireX(), weights, step.Generator),
        };
        var centres = new TrainingPhase
        {
            Name = "centres",
            Parameters = model.CentreParameters(),
            LearningRate = centreLearningRate,
            OnBatches = false,
            StepsAfterEpoch = epoch => epoch + 1,
            Loss = step => ClusteringObjectives.CentreLoss(model, priorBatchSize, step.Epoch, weights, step.Generator),
        };
        var refit = new TrainingPhase
        {
            Name = "refit",
            Parameters = model.DenoiserParameters(),
            LearningRate = refitLearningRate,
            OnBatches = false,
            StepsAfterEpoch = epoch => epoch + 1,
            Loss = step => ClusteringObjectives.RefitLoss(model, priorBatchSize, weights, step.Generator),
        };
        return [wake, centres, refit];
    }

    /// <summary>
    /// The clustering VAE: per data batch an "elbo" step (<see cref="VaeObjective.Loss"/> with the mixture's exact density,
    /// so its centres learn from log p(z); KL weight <paramref name="klWeight"/>(epoch)) over the VAE and the centres, then
    /// a "centres" step (<see cref="ClusteringObjectives.SeparationLoss"/> over <paramref name="pairs"/> pairs). Every rate
    /// is multiplied by <paramref name="decayFactor"/> from epoch <paramref name="decayEpoch"/> on (the release: 0.1 from 100).
    /// </summary>
    public static IReadOnlyList<TrainingPhase> ForVae(GaussianVae vae, LearnableGaussianMixture prior, Func<int, double> klWeight,
        ClusteringWeights? weights = null, double learningRate = 1e-4, int pairs = 20, int decayEpoch = 100, double decayFactor = 0.1)
    {
        ArgumentNullException.ThrowIfNull(vae);
        ArgumentNullException.ThrowIfNull(prior);
        ArgumentNullException.ThrowIfNull(klWeight);
        weights ??= new ClusteringWeights();
        weights.Validate();
        CheckRate(learningRate, nameof(learningRate));
        if (pairs < 1)
            throw new ArgumentOutOfRangeException(nameof(pairs), pairs, "ClusteringPhases: at least one pair of centres is needed.");
        Func<int, double> factor = epoch => epoch >= decayEpoch ? decayFactor : 1.0;
        var centreParameters = prior.PriorParameters;
        var elbo = new TrainingPhase
        {
            Name = "elbo",
            Parameters = [.. vae.parameters(), .. centreParameters],
            LearningRate = learningRate,
            LearningRateFactor = factor,
            Loss = step => VaeObjective.Loss(vae, step.Batch.RequireX(), prior, new VaeWeights(klWeight(step.Epoch), 1.0), step.Generator),
        };
        var centres = new TrainingPhase
        {
            Name = "centres",
            Parameters = centreParameters,
            LearningRate = learningRate,
            LearningRateFactor = factor,
            Loss = step => ClusteringObjectives.SeparationLoss(prior, pairs, step.Epoch, weights, step.Generator),
        };
        return [elbo, centres];
    }

    private static void CheckRate(double rate, string name)
    {
        if (!(rate > 0) || !double.IsFinite(rate))
            throw new ArgumentOutOfRangeException(name, rate, $"ClusteringPhases: {name} must be positive and finite.");
    }
}
