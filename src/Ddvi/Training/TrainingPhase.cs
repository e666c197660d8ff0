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

    /// <summary>Whether the phase steps on every data batch (true by default); false for a phase that runs only after
    /// the epoch's batches (<see cref="StepsAfterEpoch"/>).</summary>
    public bool OnBatches { get; init; } = true;

    /// <summary>
    /// Steps with no data batch run once the epoch's batches are done, in a given (0-based) epoch: 0 by default. The
    /// release's clustering DDVI re-fits its prior diffusion to the current learnable prior this way, (epoch + 1) steps
    /// after each epoch. Phases run these steps in their list order, each all of its steps before the next.
    /// </summary>
    public Func<int, int> StepsAfterEpoch { get; init; } = _ => 0;

    /// <summary>Rescales the gradients of some parameters to a total L2 norm of at most a bound after each backward pass
    /// of this phase, before the optimiser's step (PyTorch's <c>clip_grad_norm_</c>); none by default.</summary>
    public GradientNormClip? Clip { get; init; }
}

/// <summary>Clip the joint gradient of <paramref name="Parameters"/> to L2 norm ≤ <paramref name="MaxNorm"/> (&gt; 0):
/// g ← g · min(1, MaxNorm / (‖g‖ + 1e-6)).</summary>
public sealed record GradientNormClip(IReadOnlyList<TorchSharp.Modules.Parameter> Parameters, double MaxNorm)
{
    public void Validate(string phase)
    {
        if (!(MaxNorm > 0) || !double.IsFinite(MaxNorm))
            throw new ArgumentOutOfRangeException(nameof(MaxNorm), MaxNorm, $"training phase '{phase}': the gradient norm bound must be positive and finite.");
    }
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
