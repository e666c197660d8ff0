using Ddvi.Data;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Experiments;

/// <summary>One stage of training: its own epochs, batches and phases, over the method's single module.</summary>
/// <param name="UsePosterior">
/// When set, the stage has a posterior of its own worth measuring when it ends (DDVI's warm-up chain):
/// calling it switches the model to that posterior and returns an action that switches back.
/// </param>
public sealed record TrainingStage(string Name, int Epochs, IBatchSource Batches, IReadOnlyList<TrainingPhase> Phases,
    Func<Action>? UsePosterior = null);

/// <summary>Latent metrics of the posterior a stage ended with (e.g. DDVI's warm-up), to compare with the final model.</summary>
public sealed record StageSnapshot(string Stage, double KnnAccuracy, double LatentNll);

/// <summary>What a method needs to build itself: the configuration, the training data, the prior and the device.</summary>
/// <param name="TrainingLabels">The training labels the method may learn from, <c>[N]</c> int64: under a label budget
/// (<see cref="LabelBudget.MaskLabels"/>) the unlabelled examples hold <see cref="LabelBudget.Unlabelled"/>; null = every
/// label of <see cref="Train"/>.</param>
public sealed record MethodContext(ExperimentConfig Config, ImageDataset Train, ILabelledPrior Prior, Device Device, Tensor? TrainingLabels = null)
{
    /// <summary>Shuffled training batches of <see cref="ExperimentConfig.ResolvedBatchSize"/> with their (budgeted) labels, flipped
    /// at random where the dataset asks for it (<see cref="ImageDataset.FlipInTraining"/>).</summary>
    public TensorBatches TrainingBatches() =>
        new(Train.Images, TrainingLabels ?? Train.Labels, Config.ResolvedBatchSize, HorizontalFlip.TrainingTransform(Train));

    /// <summary>The networks and likelihood the data call for under <see cref="ExperimentConfig.Networks"/>.</summary>
    public ImageNetworks Networks() => ImageNetworks.For(Config.Networks, Train, Config.ResolvedBatchSize);
}

/// <summary>
/// A model together with how it is trained: the glue between a model, its objectives and the trainer.
/// All its weights live in <see cref="Module"/> (one checkpoint covers every stage).
/// </summary>
public interface IExperimentMethod
{
    nn.Module Module { get; }

    ILatentVariableModel Model { get; }

    /// <summary>Training stages in order (most methods have one).</summary>
    IReadOnlyList<TrainingStage> Stages { get; }

    /// <summary>Whether <see cref="EstimateElbo"/> gives a bound (an adversarial autoencoder has none).</summary>
    bool HasElbo { get; }

    /// <summary>How the ELBO is computed, for metrics.json.</summary>
    string ElboDefinition { get; }

    /// <summary>Per-example ELBO estimates for x <c>[B, D]</c>.</summary>
    ElboEstimate EstimateElbo(Tensor x, Generator generator);
}
