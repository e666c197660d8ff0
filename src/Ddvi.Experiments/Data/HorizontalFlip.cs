using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Data;

/// <summary>
/// Random left–right flips of flattened images, the training augmentation of the release's CIFAR-10 loader
/// (torchvision's RandomHorizontalFlip, p = ½). Ddvi applies it to training batches only; the release also flips test
/// images, which makes its evaluation random.
/// </summary>
public static class HorizontalFlip
{
    /// <summary>
    /// Each row of <paramref name="images"/> <c>[B, C·H·W]</c> mirrored left–right with probability ½ (one uniform draw per
    /// row from <paramref name="generator"/>); a new tensor.
    /// </summary>
    public static Tensor Random(Tensor images, ImageShape shape, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(generator);
        if (images.dim() != 2 || images.shape[1] != shape.Size)
            throw new ArgumentException($"HorizontalFlip: images must be [B, {shape.Size}] for {shape}, got [{string.Join(", ", images.shape)}].", nameof(images));
        using var scope = NewDisposeScope();
        long rows = images.shape[0];
        var flip = RandomDraws.Uniform([rows], float32, images.device, generator).lt(Scalars.Of(0.5)).view(rows, 1); // [B, 1]
        var mirrored = images.view(rows, shape.Channels, shape.Height, shape.Width).flip(3).reshape(rows, shape.Size);
        return where(flip, mirrored, images).MoveToOuterDisposeScope();
    }

    /// <summary>The batch transform for <see cref="Training.TensorBatches"/> of <paramref name="train"/>: random flips when
    /// the dataset asks for them (<see cref="ImageDataset.FlipInTraining"/>), else null.</summary>
    public static Func<Tensor, Generator, Tensor>? TrainingTransform(ImageDataset train)
    {
        ArgumentNullException.ThrowIfNull(train);
        var shape = train.Shape;
        return train.FlipInTraining ? (x, generator) => Random(x, shape, generator) : null;
    }
}
