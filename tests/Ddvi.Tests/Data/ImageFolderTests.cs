using Ddvi.Data;
using SkiaSharp;
using TorchSharp;

namespace Ddvi.Tests.Data;

public class ImageFolderTests
{
    /// <summary>Writes a width×height image whose pixel (x, y) is (r, g, b) = (10x, 10y, 200) as PNG or JPEG.</summary>
    static void WriteImage(string path, int width, int height, SKEncodedImageFormat format, bool grey = false)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var info = new SKImageInfo(width, height, grey ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            bitmap.SetPixel(x, y, grey ? new SKColor((byte)(10 * x), (byte)(10 * x), (byte)(10 * x)) : new SKColor((byte)(10 * x), (byte)(10 * y), 200));
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, 95);
        File.WriteAllBytes(path, data.ToArray());
    }

    static DatasetSplits Load(string folder) => DatasetCatalog.Load(folder, new DatasetOptions(null, 0, AllowDownload: false));

    [Fact]
    public void PngAndJpegImagesInClassFoldersAreDecoded()
    {
        using var temp = new TempFolder();
        WriteImage(temp["train/cat/a.png"], 8, 6, SKEncodedImageFormat.Png);
        WriteImage(temp["train/dog/b.jpg"], 8, 6, SKEncodedImageFormat.Jpeg);
        WriteImage(temp["train/dog/c.jpeg"], 8, 6, SKEncodedImageFormat.Jpeg);
        File.WriteAllText(temp["train/dog/notes.txt"], "not an image");
        WriteImage(temp["test/dog/d.png"], 8, 6, SKEncodedImageFormat.Png);
        Assert.Null(DatasetCatalog.FolderProblem(temp.Path));

        using var splits = Load(temp.Path);
        Assert.Equal(new ImageShape(3, 6, 8), splits.Train.Shape);
        Assert.Equal(3, splits.Train.Count);
        Assert.Equal(2, splits.Train.ClassCount);
        Assert.Equal([0L, 1L, 1L], splits.Train.Labels.data<long>().ToArray());
        Assert.Equal([1L], splits.Test.Labels.data<long>().ToArray());
        Assert.Equal(PixelRange.Symmetric, splits.Train.Range);
        Assert.False(splits.Train.FlipInTraining);
        Assert.Contains("cat, dog", splits.Note);

        // PNG is lossless: red plane pixel (x = 3, y = 2) is 30, green 20, blue 200, as 2b/255 − 1.
        var png = splits.Train.Images[0].data<float>().ToArray();
        int plane = 6 * 8, at = 2 * 8 + 3;
        Assert.Equal(2f * 30 / 255f - 1f, png[at], 5);
        Assert.Equal(2f * 20 / 255f - 1f, png[plane + at], 5);
        Assert.Equal(2f * 200 / 255f - 1f, png[2 * plane + at], 5);
        // JPEG is lossy: within a few levels.
        var jpeg = splits.Train.Images[1].data<float>().ToArray();
        Assert.InRange(jpeg[2 * plane + at], 2f * 185 / 255f - 1f, 2f * 215 / 255f - 1f);
    }

    [Fact]
    public void GreyImagesGiveOneChannel()
    {
        using var temp = new TempFolder();
        WriteImage(temp["train/a/1.png"], 5, 5, SKEncodedImageFormat.Png, grey: true);
        WriteImage(temp["test/a/2.png"], 5, 5, SKEncodedImageFormat.Png, grey: true);
        using var splits = Load(temp.Path);
        Assert.Equal(new ImageShape(1, 5, 5), splits.Train.Shape);
        Assert.Equal(2f * 40 / 255f - 1f, splits.Train.Images[0, 4].item<float>(), 5);
    }

    [Fact]
    public void AWrongSizeAnUndecodableFileAndAnUnknownTestClassAreNamed()
    {
        using var temp = new TempFolder();
        WriteImage(temp["train/a/1.png"], 8, 8, SKEncodedImageFormat.Png);
        WriteImage(temp["train/a/2.png"], 9, 8, SKEncodedImageFormat.Png);
        WriteImage(temp["test/a/3.png"], 8, 8, SKEncodedImageFormat.Png);
        var error = Assert.Throws<DataFormatException>(() => Load(temp.Path));
        Assert.Equal(temp["train/a/2.png"], error.FilePath);
        Assert.Contains("9×8", error.Message);
        Assert.Contains("8×8", error.Message);

        File.WriteAllBytes(temp["train/a/2.png"], [1, 2, 3, 4, 5]);
        error = Assert.Throws<DataFormatException>(() => Load(temp.Path));
        Assert.Equal(temp["train/a/2.png"], error.FilePath);
        Assert.Contains("cannot be decoded", error.Message);

        File.Delete(temp["train/a/2.png"]);
        WriteImage(temp["test/zebra/4.png"], 8, 8, SKEncodedImageFormat.Png);
        error = Assert.Throws<DataFormatException>(() => Load(temp.Path));
        Assert.Contains("zebra", error.FilePath);
        Assert.Contains("no training images", error.Message);
    }
}
