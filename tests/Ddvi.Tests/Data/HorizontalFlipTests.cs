using Ddvi.Data;
using Ddvi.Experiments;
using Ddvi.Priors;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Data;

public class HorizontalFlipTests
{
    static readonly ImageShape Shape = new(3, 2, 4);

    [Fact]
    public void AFlipMirrorsEachRowOfEveryPlaneAndHitsAboutHalfTheImages()
    {
        using var images = arange(200 * Shape.Size, dtype: float32).view(200, Shape.Size);
        using var generator = new Generator(5);
        using var flipped = HorizontalFlip.Random(images, Shape, generator);
        int mirrored = 0;
        for (int i = 0; i < 200; i++)
        {
            using var original = images[i].view(3, 2, 4);
            using var row = flipped[i].view(3, 2, 4);
            if (row.allclose(original, 0, 0)) continue;
            using var mirror = original.flip(2);
            Assert.True(row.allclose(mirror, 0, 0), $"image {i} is neither itself nor its mirror image");
            mirrored++;
        }
        Assert.InRange(mirrored, 70, 130);
    }

    [Fact]
    public void OnlyTrainingBatchesOfAFlippingDatasetAreFlipped()
    {
        using var images = arange(64 * Shape.Size, dtype: float32).view(64, Shape.Size);
        using var labels = zeros(64, dtype: int64);
        using var train = new ImageDataset("t/train", images.clone(), labels.clone(), Shape, 10, PixelRange.Symmetric, flipInTraining: true);
        using var test = new ImageDataset("t/test", images.clone(), labels.clone(), Shape, 10, PixelRange.Symmetric);
        var prior = PriorCatalog.Create("gaussian", null, 0, CPU, PriorDensityChoice.Auto);
        var context = new MethodContext(new ExperimentConfig { BatchSize = 64 }, train, prior, CPU);
        using var generator = new Generator(1);
        var batch = context.TrainingBatches().Epoch(generator).Single();
        using var x = batch.X!;
        batch.Labels?.Dispose();
        // The batch holds the shuffled rows, some of them mirrored: sorted by their first-plane sums they are the images,
        // while the images themselves (and the test split) are untouched.
        using var sorted = x.sum(1).sort().Values;
        using var expected = images.sum(1);
        Assert.True(sorted.allclose(expected));
        using var unflippedRows = x.view(64, 3, 2, 4)[.., .., .., 0].sum([1, 2]).sort().Values;
        using var originalRows = images.view(64, 3, 2, 4)[.., .., .., 0].sum([1, 2]);
        Assert.False(unflippedRows.allclose(originalRows), "no training image was flipped");
        Assert.True(train.Images.allclose(images, 0, 0));
        Assert.Null(HorizontalFlip.TrainingTransform(test));
    }
}
