using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Data;

/// <summary>
/// A labelled image set held as one tensor: pixels flattened to <c>[N, C·H·W]</c>, float32 in [0, 1],
/// and labels <c>[N]</c> int64. Owns its tensors; dispose it when done.
/// </summary>
public sealed class ImageDataset : IDisposable
{
    public ImageDataset(string name, Tensor images, Tensor labels, ImageShape shape, int classCount)
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
    }

    public string Name { get; }
    /// <summary>[N, D] float32 in [0, 1].</summary>
    public Tensor Images { get; }
    /// <summary>[N] int64 class labels in [0, ClassCount).</summary>
    public Tensor Labels { get; }
    public ImageShape Shape { get; }
    public int ClassCount { get; }
    public long Count => Images.shape[0];
    public long Dimension => Images.shape[1];

    /// <summary>A new dataset with both tensors on <paramref name="device"/>.</summary>
    public ImageDataset To(Device device) => new(Name, Images.to(device), Labels.to(device), Shape, ClassCount);

    /// <summary>The first <paramref name="count"/> examples (all when count is larger).</summary>
    public ImageDataset Take(long count)
    {
        long n = Math.Min(count, Count);
        return new ImageDataset(Name, Images[..(int)n].clone(), Labels[..(int)n].clone(), Shape, ClassCount);
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

/// <summary>Train and test splits of one dataset.</summary>
/// <param name="Note">What loading did to the files' images that a user should know of (e.g. EMNIST's transposed
/// storage undone); null when they were read as they are.</param>
public sealed record DatasetSplits(ImageDataset Train, ImageDataset Test, string? Note = null) : IDisposable
{
    public void Dispose()
    {
        Train.Dispose();
        Test.Dispose();
    }
}
