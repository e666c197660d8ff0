using Ddvi.Data;
using static TorchSharp.torch;

namespace Ddvi.Training;

/// <summary>Where an epoch's batches come from.</summary>
public interface IBatchSource
{
    int StepsPerEpoch { get; }

    /// <summary>The batches of one epoch, ordered by <paramref name="generator"/>.</summary>
    IEnumerable<TrainingBatch> Epoch(Generator generator);
}

/// <summary>Seeded shuffled mini-batches of an image dataset (which already lives on the training device).</summary>
public sealed class ImageBatches(ImageDataset dataset, int batchSize) : IBatchSource
{
    public int StepsPerEpoch { get; } = BatchSampler.BatchCount(dataset.Count, batchSize);

    public IEnumerable<TrainingBatch> Epoch(Generator generator)
    {
        foreach (var indices in BatchSampler.Shuffled(dataset.Count, batchSize, generator, dataset.Images.device))
        {
            using (indices)
                yield return new TrainingBatch(dataset.Images.index_select(0, indices), dataset.Labels.index_select(0, indices));
        }
    }
}

/// <summary>A fixed number of steps with no data, for phases that sample their own inputs (prior diffusion).</summary>
public sealed class DataFreeSteps(int stepsPerEpoch) : IBatchSource
{
    public int StepsPerEpoch { get; } = stepsPerEpoch > 0 ? stepsPerEpoch
        : throw new ArgumentOutOfRangeException(nameof(stepsPerEpoch), stepsPerEpoch, "steps per epoch must be positive");

    public IEnumerable<TrainingBatch> Epoch(Generator generator) => Enumerable.Repeat(TrainingBatch.Empty, StepsPerEpoch);
}
