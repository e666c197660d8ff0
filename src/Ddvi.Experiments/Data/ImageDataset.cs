using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Data;

/// <summary>
/// A labelled image set held as one tensor: pixels flattened to <c>[N, C·H·W]</c> (channel planes, then rows), float32
/// in the dataset's <see cref="PixelRange"/>, and labels <c>[N]</c> int64. Owns its tensors; dispose it when done.
/// </summary>
public sealed class ImageDataset : IDisposable
{
    /// <param name="range">The interval the pixels lie in, which also chooses the likelihood (see <see cref="Data.PixelRange"/>).</param>
    /// <param name="flipInTraining">Whether training batches are flipped left–right at random (see <see cref="FlipInTraining"/>).</param>
    public ImageDataset(string name, Tensor images, Tensor labels, ImageShape shape, int classCount,
        PixelRange range = PixelRange.UnitInterval, bool flipInTraining = false)
    {
        if (images.dim() != 2) throw new ArgumentException($"{name}: images must be [N, D], got {Describe(images)}.");
        if (labels.dim() != 1 || labels.shape[0] != images.shape[0])
            throw new ArgumentException($"{name}: {labels.shape[0]} labels for {images.shape[0]} images.");
        if (images.shape[1] != shape.Size)
            throw new ArgumentException($"{name}: images have {images.shape[1]} values each, expected {shape.Size} for {shape}.");
        Name = name;
        Images = images.DetachFromDisposeScope();
        Labels = labels.DetachFromDisposeScope();
        Shape = shape;
        ClassCount = classCount;
        Range = range;
        FlipInTraining = flipInTraining;
    }

    public string Name { get; }
    /// <summary>[N, D] float32 in <see cref="Range"/>.</summary>
    public Tensor Images { get; }
    /// <summary>[N] int64 class labels in [0, ClassCount).</summary>
    public Tensor Labels { get; }
    public ImageShape Shape { get; }
    public int ClassCount { get; }

    /// <summary>The interval the pixels lie in.</summary>
    public PixelRange Range { get; }

    /// <summary>
    /// Whether training batches of this set are flipped left–right at random (each image with probability ½, as the
    /// release's CIFAR-10 loader does); never applied to test images or at evaluation.
    /// </summary>
    public bool FlipInTraining { get; }
    public long Count => Images.shape[0];
    public long Dimension => Images.shape[1];

    /// <summary>A new dataset with both tensors on <paramref name="device"/>.</summary>
    public ImageDataset To(Device device) => new(Name, Images.to(device), Labels.to(device), Shape, ClassCount, Range, FlipInTraining);

    /// <summary>The first <paramref name="count"/> examples (all when count is larger).</summary>
    public ImageDataset Take(long count)
    {
        long n = Math.Min(count, Count);
        return new ImageDataset(Name, Images[..(int)n].clone(), Labels[..(int)n].clone(), Shape, ClassCount, Range, FlipInTraining);
    }

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }

    static string Describe(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}

/// <summary>Channels × height × width of one image.</summary>
public readonly record struct ImageShape(int Channels, int Height, int Width)
{
    public int Size => Channels * Height * Width;
    public override string ToString() => $"{Channels}×{Height}×{Width}";
    public static ImageShape Mnist => new(1, 28, 28);
}

/// <summary>
/// The interval a dataset's pixels lie in. It chooses the likelihood: [0, 1] intensities take the paper's Bernoulli
/// likelihood (MNIST format); [−1, 1] takes a Gaussian likelihood whose decoder mean is squashed into [−1, 1] (the paper's
/// CIFAR-10 setting, with the release's normalisation x ↦ 2x − 1).
/// </summary>
public enum PixelRange
{
    /// <summary>[0, 1]: byte / 255.</summary>
    UnitInterval,

    /// <summary>[−1, 1]: 2 · byte / 255 − 1.</summary>
    Symmetric,
}

/// <summary>Conversions of a <see cref="PixelRange"/>.</summary>
public static class PixelRanges
{
    /// <summary>The interval's ends.</summary>
    public static (double Low, double High) Bounds(this PixelRange range) => range switch
    {
        PixelRange.UnitInterval => (0.0, 1.0),
        PixelRange.Symmetric => (-1.0, 1.0),
        _ => throw new ArgumentOutOfRangeException(nameof(range), range, "unknown pixel range"),
    };

    /// <summary>Pixel values in <paramref name="range"/> mapped to [0, 1] for display (a new tensor).</summary>
    public static Tensor ToUnitInterval(this PixelRange range, Tensor pixels)
    {
        var (low, high) = range.Bounds();
        return (pixels - Scalars.Of(low)) / Scalars.Of(high - low);
    }

    /// <summary>Bytes 0–255 → float32 in <paramref name="range"/> (a new tensor).</summary>
    public static Tensor FromBytes(this PixelRange range, Tensor bytes)
    {
        using var scope = NewDisposeScope();
        var (low, high) = range.Bounds();
        return (bytes.to(float32) * Scalars.Of((float)((high - low) / 255.0))).add(Scalars.Of((float)low), Scalars.One).MoveToOuterDisposeScope();
    }
}

/// <summary>Train and test splits of one dataset.</summary>
/// <param name="Note">What loading did to the files' images that a user should know of (e.g. EMNIST's transposed
/// storage undone); null when they were read as they are.</param>
public sealed record DatasetSplits(ImageDataset Train, ImageDataset Test, string? Note = null) : IDisposable
{
    /// <summary>
    /// The same splits with only the first <paramref name="count"/> training examples (<c>--train-images</c>); this
    /// object's training tensors are disposed, its test split moves to the result. <paramref name="source"/> names the
    /// dataset in the error when it holds fewer than <paramref name="count"/> training examples.
    /// </summary>
    public DatasetSplits WithFirstTrainingExamples(int count, string source)
    {
        if (count < 1)
            throw new ArgumentOutOfRangeException(nameof(count), count, "--train-images must be ≥ 1 (the number of training examples to keep).");
        if (count > Train.Count)
            throw new ArgumentException($"--train-images {count} is more than the {Train.Count} training examples of dataset {source}; " +
                                        $"give at most {Train.Count}, or leave it out to train on all of them.");
        if (count == Train.Count) return this;
        var kept = Train.Take(count);
        Train.Dispose();
        return new DatasetSplits(kept, Test, Note);
    }

    public void Dispose()
    {
        Train.Dispose();
        Test.Dispose();
    }
}
