using SkiaSharp;
using static TorchSharp.torch;

namespace Ddvi.Data;

/// <summary>
/// A dataset of image files in class sub-folders: <c>train/CLASS/*.png|jpg|jpeg</c> and <c>test/CLASS/*</c>, decoded with
/// SkiaSharp. Classes are the training sub-folders in ordinal name order (label 0 is the first); a test sub-folder must
/// name one of them. Every image must have the size of the first training image; the set is grey (1 channel) when every
/// file is stored grey, RGB (3 channels) otherwise, grey files then repeating their plane. Pixels are in [−1, 1], as
/// CIFAR-10's, and the Gaussian likelihood models them. Files with other extensions are ignored.
/// </summary>
public static class ImageFolder
{
    public const string TrainFolder = "train";
    public const string TestFolder = "test";

    static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>Whether <paramref name="folder"/> has both split folders.</summary>
    public static bool Matches(string folder) =>
        Directory.Exists(Path.Combine(folder, TrainFolder)) && Directory.Exists(Path.Combine(folder, TestFolder));

    /// <summary>Why <paramref name="folder"/> is not an image-folder dataset (without decoding anything), or null.</summary>
    public static string? Problem(string folder)
    {
        if (!Matches(folder)) return $"has no '{TrainFolder}' and '{TestFolder}' sub-folders";
        foreach (string split in new[] { TrainFolder, TestFolder })
        {
            string root = Path.Combine(folder, split);
            if (!Directory.EnumerateDirectories(root).Any(d => ImageFiles(d).Any()))
                return $"has no class sub-folder with .png or .jpg images in {root}";
        }
        return null;
    }

    /// <summary>Reads both splits; every error names the file (and, for a size mismatch, both sizes).</summary>
    public static DatasetSplits Read(string name, string folder)
    {
        if (Problem(folder) is { } problem) throw new DatasetUnavailableException(folder, $"--dataset folder {Path.GetFullPath(folder)} {problem}.");
        string trainRoot = Path.Combine(folder, TrainFolder), testRoot = Path.Combine(folder, TestFolder);
        var classes = Directory.EnumerateDirectories(trainRoot).Select(Path.GetFileName).OfType<string>()
            .Where(c => ImageFiles(Path.Combine(trainRoot, c)).Any()).Order(StringComparer.Ordinal).ToList();
        foreach (string testClass in Directory.EnumerateDirectories(testRoot).Select(Path.GetFileName).OfType<string>())
            if (!classes.Contains(testClass) && ImageFiles(Path.Combine(testRoot, testClass)).Any())
                throw new DataFormatException(Path.Combine(testRoot, testClass),
                    $"is a test class with no training images; the training classes are {string.Join(", ", classes)}.");

        var train = List(trainRoot, classes);
        var test = List(testRoot, classes);
        var (height, width, _) = Decode(train[0].Path);
        var decodedTrain = train.Select(f => (f.Label, Image: DecodeChecked(f.Path, height, width))).ToList();
        var decodedTest = test.Select(f => (f.Label, Image: DecodeChecked(f.Path, height, width))).ToList();
        bool grey = decodedTrain.Concat(decodedTest).All(d => d.Image.Grey);
        var shape = new ImageShape(grey ? 1 : 3, height, width);
        const PixelRange range = PixelRange.Symmetric;
        var trainSet = ToDataset($"{name}/train", decodedTrain, shape, classes.Count, range);
        try
        {
            var testSet = ToDataset($"{name}/test", decodedTest, shape, classes.Count, range);
            return new DatasetSplits(trainSet, testSet,
                $"{folder}: {trainSet.Count:N0} training and {testSet.Count:N0} test images of {shape} in {classes.Count} classes ({string.Join(", ", classes)})");
        }
        catch
        {
            trainSet.Dispose();
            throw;
        }
    }

    static IEnumerable<string> ImageFiles(string folder) =>
        Directory.EnumerateFiles(folder).Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()));

    static List<(string Path, int Label)> List(string root, IReadOnlyList<string> classes)
    {
        var files = new List<(string, int)>();
        for (int label = 0; label < classes.Count; label++)
        {
            string folder = Path.Combine(root, classes[label]);
            if (Directory.Exists(folder)) files.AddRange(ImageFiles(folder).Order(StringComparer.Ordinal).Select(f => (f, label)));
        }
        if (files.Count == 0) throw new DataFormatException(root, "holds no .png or .jpg images in its class sub-folders.");
        return files;
    }

    sealed record DecodedImage(byte[] Rgb, bool Grey);

    static (int Height, int Width, DecodedImage Image) Decode(string path)
    {
        using var stream = File.OpenRead(path);
        using var codec = SKCodec.Create(stream, out var result)
            ?? throw new DataFormatException(path, $"cannot be decoded as an image ({result}); expected a PNG or JPEG file.");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var status = codec.GetPixels(info, bitmap.GetPixels());
        if (status is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            throw new DataFormatException(path, $"cannot be decoded as an image ({status}).");
        if (status == SKCodecResult.IncompleteInput)
            throw new DataFormatException(path, "is truncated: the image data ends before the last row.");
        bool grey = codec.Info.ColorType == SKColorType.Gray8;
        var rgba = bitmap.Bytes;
        int plane = info.Width * info.Height;
        var planes = new byte[3 * plane];
        for (int i = 0; i < plane; i++)
        {
            planes[i] = rgba[4 * i];
            planes[plane + i] = rgba[4 * i + 1];
            planes[2 * plane + i] = rgba[4 * i + 2];
        }
        return (info.Height, info.Width, new DecodedImage(planes, grey));
    }

    static DecodedImage DecodeChecked(string path, int height, int width)
    {
        var (h, w, image) = Decode(path);
        if (h != height || w != width)
            throw new DataFormatException(path, $"is {w}×{h} pixels; every image of the dataset must be {width}×{height}, the size of the first training image.");
        return image;
    }

    static ImageDataset ToDataset(string name, List<(int Label, DecodedImage Image)> images, ImageShape shape, int classes, PixelRange range)
    {
        int size = shape.Size;
        var pixels = new byte[(long)images.Count * size];
        for (int i = 0; i < images.Count; i++)
            Buffer.BlockCopy(images[i].Image.Rgb, 0, pixels, i * size, size); // grey: the red plane, which equals the others
        using var scope = NewDisposeScope();
        var raw = tensor(pixels, dtype: ScalarType.Byte).reshape(images.Count, size);
        var labels = tensor(images.Select(d => (long)d.Label).ToArray(), dtype: int64);
        return new ImageDataset(name, range.FromBytes(raw), labels, shape, classes, range);
    }
}
