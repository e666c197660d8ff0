using Ddvi.Objectives;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Training;

/// <summary>
/// One optimisation phase run on every batch: an objective over some parameters with its own Adam
/// optimiser. Methods with several phases (DDVI's wake and sleep steps, an AAE's reconstruction,
/// discriminator and generator steps) are lists of these; the trainer drives them in order.
/// </summary>
public sealed class TrainingPhase
{
    /// <summary>Short name, used as the prefix of its loss columns and as its optimiser's checkpoint key.</summary>
    public required string Name { get; init; }

    /// <summary>Parameters this phase's optimiser updates.</summary>
    public required IReadOnlyList<Parameter> Parameters { get; init; }

    public required double LearningRate { get; init; }

    /// <summary>The objective evaluated on one batch; its total is minimised.</summary>
    public required Func<PhaseStep, LossTerms> Loss { get; init; }

    /// <summary>Optimiser steps per batch (e.g. K sleep steps per wake step).</summary>
    public int RepeatsPerBatch { get; init; } = 1;

    /// <summary>Whether the phase runs in a given epoch (0-based); always by default.</summary>
    public Func<int, bool> IsActive { get; init; } = _ => true;

    /// <summary>Parameters held fixed in a given epoch (e.g. the decoder in DDVI's first epochs); none by default.</summary>
    public Func<int, IReadOnlyList<Parameter>> FrozenParameters { get; init; } = _ => [];

    /// <summary>Multiplier of <see cref="LearningRate"/> in a given epoch (a step schedule); 1 by default.</summary>
    public Func<int, double> LearningRateFactor { get; init; } = _ => 1.0;
}

/// <summary>What an objective sees on one optimiser step.</summary>
/// <param name="Batch">The data batch (empty for phases that draw their own inputs, such as prior samples).</param>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="Repeat">Index of this step among the phase's repeats on the batch.</param>
/// <param name="Generator">The run's generator for this epoch: every random draw of the step uses it.</param>
public sealed record PhaseStep(TrainingBatch Batch, int Epoch, int Repeat, Generator Generator);

/// <summary>A mini-batch: inputs <c>[B, D]</c> and labels <c>[B]</c>, or neither.</summary>
public sealed record TrainingBatch(Tensor? X, Tensor? Labels)
{
    public static TrainingBatch Empty { get; } = new(null, null);

    /// <summary>The inputs; throws when the phase was given no data (a configuration error).</summary>
    public Tensor RequireX() => X ?? throw new InvalidOperationException("this training phase needs data batches but its batch source yields none");
}
