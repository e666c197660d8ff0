using Ddvi.Runtime;
using System.Buffers.Binary;
using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Data;

/// <summary>
/// Reads the IDX files that MNIST and Fashion-MNIST ship in, gzipped or raw (told apart by the gzip magic bytes
/// <c>1f 8b</c>, not by the file name).
/// </summary>
/// <remarks>
/// An IDX file is a big-endian header followed by unsigned bytes in row-major order: the magic number
/// <c>0x000008nn</c> (type code 0x08 = unsigned byte, nn = number of dimensions), then nn int32 dimension sizes.
/// Labels are <c>0x00000801</c> with dimensions [N]; images are <c>0x00000803</c> with dimensions [N, rows, cols].
/// </remarks>
public static class IdxReader
{
    public const int LabelMagic = 0x00000801;
    public const int ImageMagic = 0x00000803;

    /// <summary>
    /// Images as float32 <c>[N, rows·cols]</c>, pixel = byte / 255 in [0, 1]. When <paramref name="expectedShape"/>
    /// is given, the file's rows and columns must match its height and width.
    /// </summary>
    public static Tensor ReadImages(string path, ImageShape? expectedShape = null) // [N, rows·cols]
    {
        var (dimensions, data) = Read(path, ImageMagic, "unsigned-byte images [N, rows, cols]");
        int count = dimensions[0], rows = dimensions[1], columns = dimensions[2];
        if (expectedShape is { } shape && (shape.Channels != 1 || rows != shape.Height || columns != shape.Width))
            throw new DataFormatException(path, $"unexpected dimensions: images are {rows}×{columns}, expected {shape.Height}×{shape.Width}.");
        using var bytes = tensor(data, [count, (long)rows * columns], dtype: ScalarType.Byte);
        return bytes.to(ScalarType.Float32).div_(Scalars.Of(255f));
    }

    /// <summary>
    /// Labels as int64 <c>[N]</c>. When <paramref name="classCount"/> is given, every label must lie in [0, classCount).
    /// </summary>
    public static Tensor ReadLabels(string path, int? classCount = null) // [N]
    {
        var (dimensions, data) = Read(path, LabelMagic, "unsigned-byte labels [N]");
        if (classCount is { } classes)
        {
            int bad = Array.FindIndex(data, label => label >= classes);
            if (bad >= 0)
                throw new DataFormatException(path, $"label {data[bad]} at index {bad} is outside [0, {classes}).");
        }
        using var bytes = tensor(data, [dimensions[0]], dtype: ScalarType.Byte);
        return bytes.to(ScalarType.Int64);
    }

    /// <summary>
    /// An images file and its labels file, checked to hold the same number of examples.
    /// </summary>
    public static (Tensor Images, Tensor Labels) ReadPair(string imagesPath, string labelsPath, ImageShape? expectedShape = null, int? classCount = null) // ([N, D], [N])
    {
        var labels = ReadLabels(labelsPath, classCount);
        Tensor images;
        try
        {
            images = ReadImages(imagesPath, expectedShape);
        }
        catch
        {
            labels.Dispose();
            throw;
        }
        if (images.shape[0] != labels.shape[0])
        {
            long imageCount = images.shape[0], labelCount = labels.shape[0];
            images.Dispose();
            labels.Dispose();
            throw new DataFormatException(imagesPath,
                $"image/label count mismatch: {imageCount} images in {imagesPath} but {labelCount} labels in {labelsPath}.");
        }
        return (images, labels);
    }

    /// <summary>True when the file starts with the gzip magic bytes 1f 8b.</summary>
    public static bool IsGzip(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> start = stackalloc byte[2];
        return file.ReadAtLeast(start, 2, throwOnEndOfStream: false) == 2 && start[0] == 0x1f && start[1] == 0x8b;
    }

    /// <summary>The image size an images file holds, read from its header alone.</summary>
    public static ImageShape ReadImageShape(string path)
    {
        int[] dimensions = ReadFile(path, stream => ReadHeader(path, stream, ImageMagic, "unsigned-byte images [N, rows, cols]"));
        return new ImageShape(1, dimensions[1], dimensions[2]);
    }

    static (int[] Dimensions, byte[] Data) Read(string path, int expectedMagic, string expectedContent) =>
        ReadFile(path, stream => ReadContent(path, stream, expectedMagic, expectedContent));

    static T ReadFile<T>(string path, Func<Stream, T> read)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found.", path);
        bool gzip = IsGzip(path);
        using var file = File.OpenRead(path);
        using Stream stream = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
        try
        {
            return read(stream);
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(path, $"corrupt gzip stream ({e.Message}).", e);
        }
    }

    static (int[] Dimensions, byte[] Data) ReadContent(string path, Stream stream, int expectedMagic, string expectedContent)
    {
        int[] dimensions = ReadHeader(path, stream, expectedMagic, expectedContent);
        long size = 1;
        foreach (int dimension in dimensions) size *= dimension;
        if (size > Array.MaxLength)
            throw new DataFormatException(path, $"unexpected dimensions [{string.Join(", ", dimensions)}]: {size} bytes is more than one array can hold.");

        var data = new byte[size];
        int read = stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
        if (read < data.Length)
            throw new DataFormatException(path,
                $"truncated file: dimensions [{string.Join(", ", dimensions)}] need {size} bytes of data, found {read}.");
        long extra = CountRemaining(stream);
        if (extra > 0)
            throw new DataFormatException(path,
                $"dimensions [{string.Join(", ", dimensions)}] need {size} bytes of data, found {size + extra} ({extra} bytes too many).");
        return (dimensions, data);
    }

    /// <summary>The magic number, checked against <paramref name="expectedMagic"/>, and the dimension sizes that follow it.</summary>
    static int[] ReadHeader(string path, Stream stream, int expectedMagic, string expectedContent)
    {
        Span<byte> word = stackalloc byte[4];
        int read = stream.ReadAtLeast(word, 4, throwOnEndOfStream: false);
        if (read < 4) throw new DataFormatException(path, $"truncated file: expected a 4-byte IDX magic number, found {read} bytes.");
        int magic = BinaryPrimitives.ReadInt32BigEndian(word);
        if (magic != expectedMagic)
            throw new DataFormatException(path,
                $"wrong magic number 0x{magic:X8}, expected 0x{expectedMagic:X8} (IDX {expectedContent}). Is this the right file?");

        int rank = expectedMagic & 0xff;
        var dimensions = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            read = stream.ReadAtLeast(word, 4, throwOnEndOfStream: false);
            if (read < 4)
                throw new DataFormatException(path, $"truncated file: expected a {4 + 4 * rank}-byte header, found {4 + 4 * i + read} bytes.");
            dimensions[i] = BinaryPrimitives.ReadInt32BigEndian(word);
            if (dimensions[i] < 0 || (i > 0 && dimensions[i] == 0))
                throw new DataFormatException(path, $"unexpected dimensions [{string.Join(", ", dimensions[..(i + 1)])}]: sizes must be positive.");
        }
        return dimensions;
    }

    static long CountRemaining(Stream stream)
    {
        var buffer = new byte[81920];
        long total = 0;
        int read;
        while ((read = stream.Read(buffer)) > 0) total += read;
        return total;
    }
}
