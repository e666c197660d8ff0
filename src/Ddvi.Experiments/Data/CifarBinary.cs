using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Data;

/// <summary>The files of a CIFAR-10 folder in the official binary layout that are present.</summary>
/// <param name="Folder">The folder holding the <c>.bin</c> files.</param>
/// <param name="TrainBatches">The training batches present, in number order (1 to 5 of <c>data_batch_N.bin</c>).</param>
/// <param name="TestBatch">The path of <c>test_batch.bin</c>.</param>
public sealed record CifarFiles(string Folder, IReadOnlyList<string> TrainBatches, string TestBatch);

/// <summary>
/// CIFAR-10's official binary distribution (<c>cifar-10-batches-bin/</c>, Krizhevsky 2009): each <c>.bin</c> file is a
/// run of 3,073-byte records with no header, one label byte (0–9) followed by 3,072 pixel bytes, the 1,024 red values,
/// then the 1,024 green, then the 1,024 blue, each a 32×32 plane row by row. <c>data_batch_1.bin</c> …
/// <c>data_batch_5.bin</c> hold the 50,000 training images, <c>test_batch.bin</c> the 10,000 test images and
/// <c>batches.meta.txt</c> the class names. The record layout is the layout of <see cref="ImageDataset.Images"/>, so a
/// record's pixels become a row as they are.
/// </summary>
public static class CifarBinary
{
    public const int ClassCount = 10;
    public const int PixelsPerImage = 3 * 32 * 32;
    public const int RecordSize = 1 + PixelsPerImage;
    public const int StandardTrainBatches = 5;
    public const string BatchFolderName = "cifar-10-batches-bin";
    public const string TestBatchName = "test_batch.bin";
    public const string MetaName = "batches.meta.txt";

    public static ImageShape Shape => new(3, 32, 32);

    /// <summary>The names of the five training batches.</summary>
    public static IReadOnlyList<string> TrainBatchNames { get; } =
        [.. Enumerable.Range(1, StandardTrainBatches).Select(i => $"data_batch_{i}.bin")];

    /// <summary>Every file of the official layout, for messages.</summary>
    public static IReadOnlyList<string> FileNames { get; } = [.. TrainBatchNames, TestBatchName, MetaName];

    /// <summary>
    /// The batches in <paramref name="folder"/> or in its <c>cifar-10-batches-bin/</c> sub-folder (the archive's own
    /// layout), or null when neither holds <c>test_batch.bin</c> and at least one training batch.
    /// </summary>
    public static CifarFiles? Find(string folder)
    {
        foreach (string candidate in new[] { folder, Path.Combine(folder, BatchFolderName) })
        {
            if (!Directory.Exists(candidate)) continue;
            string test = Path.Combine(candidate, TestBatchName);
            var train = TrainBatchNames.Select(name => Path.Combine(candidate, name)).Where(File.Exists).ToList();
            if (File.Exists(test) && train.Count > 0) return new CifarFiles(Path.GetFullPath(candidate), train, test);
        }
        return null;
    }

    /// <summary>Whether <paramref name="folder"/> holds any file of the layout (so a problem with it is worth naming).</summary>
    public static bool LooksLikeCifar(string folder) =>
        new[] { folder, Path.Combine(folder, BatchFolderName) }.Any(candidate =>
            Directory.Exists(candidate) && FileNames.Take(StandardTrainBatches + 1).Any(name => File.Exists(Path.Combine(candidate, name))));

    /// <summary>
    /// Reads one batch file: images <c>[N, 3072]</c> float32 in <paramref name="range"/> and labels <c>[N]</c> int64.
    /// A file that is empty, ends inside a record, or holds a label above 9 is a <see cref="DataFormatException"/> naming
    /// the file and the record (0-based).
    /// </summary>
    public static (Tensor Images, Tensor Labels) ReadBatch(string path, PixelRange range)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, $"cannot be read: {e.Message}", e);
        }
        if (bytes.Length == 0)
            throw new DataFormatException(path, $"the file is empty; a CIFAR-10 batch holds records of {RecordSize:N0} bytes (a label byte, then 3,072 pixel bytes).");
        long records = bytes.Length / RecordSize;
        int rest = bytes.Length % RecordSize;
        if (rest != 0)
            throw new DataFormatException(path,
                $"{bytes.Length:N0} bytes is not a whole number of {RecordSize:N0}-byte records: record {records} (0-based) is cut short after {rest:N0} of its bytes.");

        var labels = new long[records];
        var pixels = new byte[records * PixelsPerImage];
        for (long record = 0; record < records; record++)
        {
            long offset = record * RecordSize;
            byte label = bytes[offset];
            if (label >= ClassCount)
                throw new DataFormatException(path, $"record {record} (0-based, byte offset {offset:N0}) has label {label}; CIFAR-10 labels are 0–{ClassCount - 1}.");
            labels[record] = label;
            Buffer.BlockCopy(bytes, (int)(offset + 1), pixels, (int)(record * PixelsPerImage), PixelsPerImage);
        }
        using var scope = NewDisposeScope();
        var raw = tensor(pixels, dtype: ScalarType.Byte).reshape(records, PixelsPerImage);
        var images = range.FromBytes(raw);
        return (images.MoveToOuterDisposeScope(), tensor(labels, dtype: int64).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Reads the training batches present (concatenated in number order) and the test batch, pixels in [−1, 1] as the
    /// release normalises them, training images flipped at random in training. <see cref="DatasetSplits.Note"/> says when
    /// fewer than the five training batches are present.
    /// </summary>
    public static DatasetSplits Read(string name, CifarFiles files)
    {
        const PixelRange range = PixelRange.Symmetric;
        var parts = new List<(Tensor Images, Tensor Labels)>();
        Tensor? testImages = null, testLabels = null;
        try
        {
            foreach (string batch in files.TrainBatches) parts.Add(ReadBatch(batch, range));
            (testImages, testLabels) = ReadBatch(files.TestBatch, range);
            using var scope = NewDisposeScope();
            var trainImages = parts.Count == 1 ? parts[0].Images.alias() : cat(parts.Select(p => p.Images).ToArray(), 0);
            var trainLabels = parts.Count == 1 ? parts[0].Labels.alias() : cat(parts.Select(p => p.Labels).ToArray(), 0);
            var train = new ImageDataset($"{name}/train", trainImages, trainLabels, Shape, ClassCount, range, flipInTraining: true);
            var test = new ImageDataset($"{name}/test", testImages, testLabels, Shape, ClassCount, range);
            (testImages, testLabels) = (null, null); // the dataset owns them now
            string? note = files.TrainBatches.Count < StandardTrainBatches
                ? $"{files.Folder} holds {files.TrainBatches.Count} of the {StandardTrainBatches} CIFAR-10 training batches " +
                  $"({string.Join(", ", files.TrainBatches.Select(Path.GetFileName))}): {train.Count:N0} training images, not 50,000"
                : null;
            return new DatasetSplits(train, test, note);
        }
        finally
        {
            foreach (var (images, labels) in parts)
            {
                images.Dispose();
                labels.Dispose();
            }
            testImages?.Dispose();
            testLabels?.Dispose();
        }
    }
}
