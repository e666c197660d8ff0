using Ddvi.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Data;

public class IdxReaderTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ImagesRoundTripExactly(bool gzip)
    {
        using var files = new IdxTestFiles();
        var (pixels, _) = IdxTestFiles.RandomExamples(5, seed: 1);
        // A name without .gz for gzipped content and vice versa: detection goes by the bytes.
        string path = files.Write(gzip ? "images.raw" : "images.gz", IdxTestFiles.Idx(IdxReader.ImageMagic, [5, 28, 28], pixels), gzip);

        using var images = IdxReader.ReadImages(path, ImageShape.Mnist);

        Assert.Equal(gzip, IdxReader.IsGzip(path));
        Assert.Equal(new long[] { 5, 784 }, images.shape);
        Assert.Equal(ScalarType.Float32, images.dtype);
        Assert.Equal(pixels.Select(p => p / 255f).ToArray(), images.data<float>().ToArray());
        Assert.Equal(1f, images.max().item<float>());
        Assert.Equal(0f, images.min().item<float>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LabelsRoundTripExactly(bool gzip)
    {
        using var files = new IdxTestFiles();
        byte[] values = [3, 0, 9, 9, 1, 250];
        string path = files.Write("labels", IdxTestFiles.Idx(IdxReader.LabelMagic, [values.Length], values), gzip);

        using var labels = IdxReader.ReadLabels(path);

        Assert.Equal(ScalarType.Int64, labels.dtype);
        Assert.Equal(values.Select(v => (long)v).ToArray(), labels.data<long>().ToArray());
    }

    [Fact]
    public void NonSquareImagesKeepTheirSizeWithoutAnExpectedShape()
    {
        using var files = new IdxTestFiles();
        var pixels = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)(i * 10)).ToArray();
        string path = files.Write("images", IdxTestFiles.Idx(IdxReader.ImageMagic, [2, 3, 4], pixels));

        using var images = IdxReader.ReadImages(path);

        Assert.Equal(new long[] { 2, 12 }, images.shape);
        Assert.Equal(pixels.Select(p => p / 255f).ToArray(), images.data<float>().ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LabelsFileReadAsImagesNamesBothMagicNumbers(bool gzip)
    {
        using var files = new IdxTestFiles();
        string path = files.Write("train-labels", IdxTestFiles.Idx(IdxReader.LabelMagic, [2], [1, 2]), gzip);

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Equal(path, error.FilePath);
        Assert.Contains(path, error.Message);
        Assert.Contains("wrong magic number 0x00000801", error.Message);
        Assert.Contains("expected 0x00000803", error.Message);
    }

    [Fact]
    public void ImagesFileReadAsLabelsIsRejected()
    {
        using var files = new IdxTestFiles();
        string path = files.Write("images", IdxTestFiles.Idx(IdxReader.ImageMagic, [1, 1, 1], [7]));

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("wrong magic number 0x00000803, expected 0x00000801", error.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TruncatedDataSaysHowManyBytesWereExpectedAndFound(bool gzip)
    {
        using var files = new IdxTestFiles();
        var content = IdxTestFiles.Idx(IdxReader.ImageMagic, [3, 28, 28], new byte[3 * 784]);
        string path = files.Write("t10k-images", content[..^100], gzip);

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("truncated", error.Message);
        Assert.Contains($"need {3 * 784} bytes of data, found {3 * 784 - 100}", error.Message);
    }

    [Fact]
    public void TruncatedHeaderIsRejected()
    {
        using var files = new IdxTestFiles();
        var content = IdxTestFiles.Idx(IdxReader.ImageMagic, [3, 28, 28], []);
        string path = files.Write("images", content[..10]);

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("expected a 16-byte header, found 10 bytes", error.Message);
    }

    [Fact]
    public void EmptyFileIsRejected()
    {
        using var files = new IdxTestFiles();
        string path = files.Write("labels", []);

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("found 0 bytes", error.Message);
    }

    [Fact]
    public void TrailingBytesAreRejected()
    {
        using var files = new IdxTestFiles();
        string path = files.Write("labels", IdxTestFiles.Idx(IdxReader.LabelMagic, [2], [1, 2, 3, 4]));

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("need 2 bytes of data, found 4", error.Message);
    }

    [Fact]
    public void CorruptGzipStreamNamesTheFile()
    {
        using var files = new IdxTestFiles();
        var gzip = IdxTestFiles.Gzip(IdxTestFiles.Idx(IdxReader.LabelMagic, [4], [1, 2, 3, 4]));
        for (int i = 10; i < gzip.Length - 8; i++) gzip[i] ^= 0xA5; // scramble the deflate body, keep the gzip header
        string path = files.Write("labels.gz", gzip);

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path));

        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void UnexpectedImageSizeNamesBothSizes()
    {
        using var files = new IdxTestFiles();
        string path = files.Write("images", IdxTestFiles.Idx(IdxReader.ImageMagic, [1, 32, 32], new byte[32 * 32]));

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path, ImageShape.Mnist));

        Assert.Contains(path, error.Message);
        Assert.Contains("unexpected dimensions: images are 32×32, expected 28×28", error.Message);
    }

    [Fact]
    public void NegativeDimensionIsRejected()
    {
        using var files = new IdxTestFiles();
        string path = files.Write("labels", IdxTestFiles.Idx(IdxReader.LabelMagic, [-5], []));

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("unexpected dimensions [-5]", error.Message);
    }

    [Fact]
    public void LabelOutsideTheClassesIsRejected()
    {
        using var files = new IdxTestFiles();
        string path = files.Write("labels", IdxTestFiles.Idx(IdxReader.LabelMagic, [3], [0, 12, 3]));

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path, classCount: 10));

        Assert.Contains(path, error.Message);
        Assert.Contains("label 12 at index 1 is outside [0, 10)", error.Message);
    }

    [Fact]
    public void CountMismatchNamesBothCountsAndBothFiles()
    {
        using var files = new IdxTestFiles();
        var (pixels, labels) = IdxTestFiles.RandomExamples(4, seed: 2);
        string imagesPath = files.Write("images", IdxTestFiles.Idx(IdxReader.ImageMagic, [4, 28, 28], pixels));
        string labelsPath = files.Write("labels", IdxTestFiles.Idx(IdxReader.LabelMagic, [3], labels[..3]));

        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadPair(imagesPath, labelsPath));

        Assert.Contains($"4 images in {imagesPath}", error.Message);
        Assert.Contains($"3 labels in {labelsPath}", error.Message);
    }

    [Fact]
    public void PairReadsMatchingFiles()
    {
        using var files = new IdxTestFiles();
        var (pixels, labels) = IdxTestFiles.RandomExamples(4, seed: 3);
        string imagesPath = files.Write("images", IdxTestFiles.Idx(IdxReader.ImageMagic, [4, 28, 28], pixels), gzip: true);
        string labelsPath = files.Write("labels", IdxTestFiles.Idx(IdxReader.LabelMagic, [4], labels));

        var (images, labelTensor) = IdxReader.ReadPair(imagesPath, labelsPath, ImageShape.Mnist, 10);
        using (images)
        using (labelTensor)
        {
            Assert.Equal(new long[] { 4, 784 }, images.shape);
            Assert.Equal(new long[] { 0, 1, 2, 3 }, labelTensor.data<long>().ToArray());
        }
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), "ddvi-no-such-file-" + Guid.NewGuid().ToString("N"));

        var error = Assert.Throws<FileNotFoundException>(() => IdxReader.ReadLabels(path));

        Assert.Contains(path, error.Message);
    }
}
