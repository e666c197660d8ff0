using System.Buffers.Binary;
using System.IO.Compression;
using Ddvi.Data;

namespace Ddvi.Tests.Data;

/// <summary>Writes IDX files and MNIST-format folders for tests, and owns a temporary folder that it deletes.</summary>
internal sealed class IdxTestFiles : IDisposable
{
    public IdxTestFiles()
    {
        Root = Path.Combine(Path.GetTempPath(), "ddvi-data-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public void Dispose()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }

    /// <summary>The bytes of an IDX file: big-endian magic, dimensions, then the data.</summary>
    public static byte[] Idx(int magic, int[] dimensions, byte[] data)
    {
        var bytes = new byte[4 + 4 * dimensions.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dimensions.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dimensions[i]);
        data.CopyTo(bytes, 4 + 4 * dimensions.Length);
        return bytes;
    }

    public static byte[] Gzip(byte[] content)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest)) gzip.Write(content);
        return buffer.ToArray();
    }

    public string Write(string name, byte[] content, bool gzip = false)
    {
        string path = Path.Combine(Root, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, gzip ? Gzip(content) : content);
        return path;
    }

    /// <summary>
    /// Seeded random pixel bytes for <paramref name="count"/> images of <paramref name="height"/>×<paramref name="width"/>
    /// (28×28 unless given) and labels cycling through <paramref name="firstLabel"/> … firstLabel + classes − 1 (0–9 unless given).
    /// </summary>
    public static (byte[] Pixels, byte[] Labels) RandomExamples(int count, int seed, int height = 28, int width = 28, int classes = 10, int firstLabel = 0)
    {
        var random = new Random(seed);
        var pixels = new byte[count * height * width];
        random.NextBytes(pixels);
        pixels[0] = 255; // the full range appears, so the /255 scaling is pinned
        pixels[1] = 0;
        var labels = Enumerable.Range(0, count).Select(i => (byte)(firstLabel + i % classes)).ToArray();
        return (pixels, labels);
    }

    /// <summary>The four MNIST-format .gz files (small, random; image size and labels as <see cref="RandomExamples"/>) as name → file bytes.</summary>
    public static Dictionary<string, byte[]> MnistFormatGzipFiles(int trainCount, int testCount, int seed,
        int height = 28, int width = 28, int classes = 10, int firstLabel = 0)
    {
        var (trainPixels, trainLabels) = RandomExamples(trainCount, seed, height, width, classes, firstLabel);
        var (testPixels, testLabels) = RandomExamples(testCount, seed + 1, height, width, classes, firstLabel);
        return new Dictionary<string, byte[]>
        {
            [MnistFormat.TrainImages + ".gz"] = Gzip(Idx(IdxReader.ImageMagic, [trainCount, height, width], trainPixels)),
            [MnistFormat.TrainLabels + ".gz"] = Gzip(Idx(IdxReader.LabelMagic, [trainCount], trainLabels)),
            [MnistFormat.TestImages + ".gz"] = Gzip(Idx(IdxReader.ImageMagic, [testCount, height, width], testPixels)),
            [MnistFormat.TestLabels + ".gz"] = Gzip(Idx(IdxReader.LabelMagic, [testCount], testLabels)),
        };
    }
}
