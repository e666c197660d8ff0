using static TorchSharp.torch;

namespace Ddvi.Training;

/// <summary>Where an epoch's batches come from.</summary>
public interface IBatchSource
{
    int StepsPerEpoch { get; }

    /// <summary>The batches of one epoch, ordered by <paramref name="generator"/>.</summary>
    IEnumerable<TrainingBatch> Epoch(Generator generator);
}

/// <summary>
/// Seeded shuffled mini-batches of rows of a data tensor (and of its labels, when given), which already lives on the
/// training device. The last, smaller batch is kept.
/// </summary>
public sealed class TensorBatches : IBatchSource
{
    private readonly Tensor _x;
    private readonly Tensor? _labels;
    private readonly int _batchSize;
    private readonly Func<Tensor, Generator, Tensor>? _transform;

    /// <param name="x">The data <c>[N, D]</c>.</param>
    /// <param name="labels">Labels <c>[N]</c> to carry along, or null.</param>
    /// <param name="batchSize">Rows per batch (≥ 1).</param>
    /// <param name="transform">Applied to each batch's rows <c>[B, D]</c> → <c>[B, D]</c> with the epoch's generator (data
    /// augmentation, e.g. random flips), after the epoch's order is drawn; null leaves batches as they are.</param>
    public TensorBatches(Tensor x, Tensor? labels, int batchSize, Func<Tensor, Generator, Tensor>? transform = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() < 1 || x.shape[0] < 1)
            throw new ArgumentException($"TensorBatches: the data must have at least one row, got shape [{string.Join(", ", x.shape)}].", nameof(x));
        if (labels is not null && (labels.dim() != 1 || labels.shape[0] != x.shape[0]))
            throw new ArgumentException($"TensorBatches: {labels.shape[0]} labels for {x.shape[0]} rows.", nameof(labels));
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "TensorBatches: the batch size must be at least 1.");
        _x = x;
        _labels = labels;
        _batchSize = batchSize;
        _transform = transform;
        StepsPerEpoch = BatchSampler.BatchCount(x.shape[0], batchSize);
    }

    public int StepsPerEpoch { get; }

    public IEnumerable<TrainingBatch> Epoch(Generator generator)
    {
        foreach (var indices in BatchSampler.Shuffled(_x.shape[0], _batchSize, generator, _x.device))
        {
            using (indices)
            {
                var rows = _x.index_select(0, indices);
                if (_transform is not null)
                {
                    using var original = rows;
                    rows = _transform(original, generator);
                }
                yield return new TrainingBatch(rows, _labels?.index_select(0, indices));
            }
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
