using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Inference;

/// <summary>
/// The two training phases of DDVI proper (arXiv:2401.02739): per data batch one wake step (the regularised ELBO on
/// data, <see cref="DdviObjectives.WakeLoss"/>) and K sleep steps on fantasy pairs z ~ p(z), x ~ p(x|z)
/// (<see cref="DdviObjectives.SleepLoss"/>), each with its own optimiser. <see cref="DdviFit"/> and the paper's
/// three-stage pipeline both train with these.
/// </summary>
public static class DdviPhases
{
    /// <param name="model">The model; its wake parameters are trained by the wake phase unless others are given.</param>
    /// <param name="prior">p(z) for −log p(z) and the sleep phase's draws.</param>
    /// <param name="weights">The objective's weights.</param>
    /// <param name="learningRate">Adam's rate for the wake phase.</param>
    /// <param name="sleepLearningRate">Adam's rate for the sleep phase (auxiliary encoder and posterior denoiser).</param>
    /// <param name="sleepSteps">K, sleep steps per wake step (0: no sleep phase).</param>
    /// <param name="sleepBatchSize">Prior draws per sleep step.</param>
    /// <param name="wakeParameters">What the wake phase trains (<see cref="DdviModel.WakeParameters"/> when null).</param>
    /// <param name="frozenParameters">Parameters held fixed in a given epoch (none when null).</param>
    /// <param name="mask">The missing-entry mask of a wake step's batch (none when null).</param>
    public static (TrainingPhase Wake, TrainingPhase Sleep) WakeAndSleep(DdviModel model, IPrior prior, DdviWeights weights,
        double learningRate, double sleepLearningRate, int sleepSteps, int sleepBatchSize,
        IReadOnlyList<Parameter>? wakeParameters = null, Func<int, IReadOnlyList<Parameter>>? frozenParameters = null,
        Func<PhaseStep, Tensor?>? mask = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prior);
        ArgumentNullException.ThrowIfNull(weights);
        if (sleepSteps < 0)
            throw new ArgumentOutOfRangeException(nameof(sleepSteps), sleepSteps, "DdviPhases: the number of sleep steps K must be ≥ 0.");
        var wake = new TrainingPhase
        {
            Name = "wake",
            Parameters = wakeParameters ?? model.WakeParameters(),
            LearningRate = learningRate,
            FrozenParameters = frozenParameters ?? (_ => []),
            Loss = step =>
            {
                using var batchMask = mask?.Invoke(step);
                return DdviObjectives.WakeLoss(model, step.Batch.RequireX(), prior, weights, step.Generator, batchMask);
            },
        };
        var sleep = new TrainingPhase
        {
            Name = "sleep",
            Parameters = model.SleepParameters(),
            LearningRate = sleepLearningRate,
            RepeatsPerBatch = Math.Max(1, sleepSteps),
            IsActive = _ => sleepSteps > 0,
            Loss = step => DdviObjectives.SleepLoss(model, prior, sleepBatchSize, weights, step.Generator),
        };
        return (wake, sleep);
    }
}
