using System.Security.Cryptography;
using Ddvi.Data;
using TorchSharp;

namespace Ddvi.Tests.Data;

public class CifarBinaryTests
{
    static float Pixel(int record, int j, int seed) => 2f * ((7 * record + 3 * j + seed) % 256) / 255f - 1f;

    [Fact]
    public void GeneratedFolderWithTwoBatchesRoundTripsAndSaysItHoldsTwoOfFive()
    {
        using var temp = new TempFolder();
        CifarTestFiles.WriteFolder(temp.Path, count: 12, 1, 3);
        Assert.Null(DatasetCatalog.FolderProblem(temp.Path));
        using var splits = DatasetCatalog.Load(temp.Path, new DatasetOptions(null, Seed: 0, AllowDownload: false));

        Assert.Equal(24, splits.Train.Count);
        Assert.Equal(12, splits.Test.Count);
        Assert.Equal(new ImageShape(3, 32, 32), splits.Train.Shape);
        Assert.Equal(PixelRange.Symmetric, splits.Train.Range);
        Assert.True(splits.Train.FlipInTraining);
        Assert.False(splits.Test.FlipInTraining);
        Assert.Contains("2 of the 5", splits.Note);
        Assert.Contains("data_batch_1.bin, data_batch_3.bin", splits.Note);

        var labels = splits.Train.Labels.data<long>().ToArray();
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (long)((i + 1) % 10)).Concat(Enumerable.Range(0, 12).Select(i => (long)((i + 3) % 10))), labels);
        // Row 13 is record 1 of data_batch_3: red plane first, then green (offset 1024), then blue (2048).
        var row = splits.Train.Images[13].data<float>().ToArray();
        foreach (int j in new[] { 0, 5, 1023, 1024, 2047, 2048, 3071 }) Assert.Equal(Pixel(1, j, seed: 3), row[j], 5);
        var test = splits.Test.Images.data<float>().ToArray();
        Assert.Equal(Pixel(11, 3071, seed: 0), test[11 * 3072 + 3071], 5);
    }

    [SharedCifarFact]
    public void SharedSubsetReadsAsItsReadmeDescribes()
    {
        string folder = CifarTestFiles.SharedSubset();
        using var splits = DatasetCatalog.Load(folder, new DatasetOptions(null, Seed: 0, AllowDownload: false));
        Assert.Equal(10_000, splits.Train.Count);
        Assert.Equal(10_000, splits.Test.Count);
        Assert.Equal(10, splits.Train.ClassCount);
        // Record i has label i mod 10 in both files.
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)(i % 10)), splits.Train.Labels[..30].data<long>().ToArray());
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)(i % 10)), splits.Test.Labels[..30].data<long>().ToArray());
        Assert.True(splits.Train.Images.min().item<float>() >= -1f && splits.Train.Images.max().item<float>() <= 1f);
        Assert.Equal(-1f, splits.Test.Images.min().item<float>());
        // The pixels of a record are its bytes 1..3072, as 2b/255 − 1.
        var raw = File.ReadAllBytes(CifarBinary.Find(folder)!.TestBatch).AsSpan(4 * CifarBinary.RecordSize + 1, CifarBinary.PixelsPerImage).ToArray();
        using var expected = torch.tensor(raw.Select(b => 2f * b / 255f - 1f).ToArray());
        Assert.True(splits.Test.Images[4].allclose(expected, rtol: 0, atol: 1e-6));
        Assert.Contains("1 of the 5", splits.Note);
    }

    [Fact]
    public void AShortRecordIsNamedWithItsFile()
    {
        using var temp = new TempFolder();
        string folder = CifarTestFiles.WriteFolder(temp.Path, count: 3, 1);
        string batch = Path.Combine(folder, "data_batch_1.bin");
        File.WriteAllBytes(batch, CifarTestFiles.Batch(3, seed: 1).AsSpan(0, 2 * CifarBinary.RecordSize + 100).ToArray());
        var error = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load(temp.Path, new DatasetOptions(null, 0, AllowDownload: false)));
        Assert.Equal(batch, error.FilePath);
        Assert.Contains(batch, error.Message);
        Assert.Contains("record 2", error.Message);
        Assert.Contains("cut short after 100", error.Message);
    }

    [Fact]
    public void ALabelAboveNineIsNamedWithItsFileAndRecord()
    {
        using var temp = new TempFolder();
        string folder = CifarTestFiles.WriteFolder(temp.Path, count: 4, 1);
        string test = Path.Combine(folder, CifarBinary.TestBatchName);
        var bytes = CifarTestFiles.Batch(4, seed: 0);
        bytes[2 * CifarBinary.RecordSize] = 10;
        File.WriteAllBytes(test, bytes);
        var error = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load(temp.Path, new DatasetOptions(null, 0, AllowDownload: false)));
        Assert.Contains(test, error.Message);
        Assert.Contains("record 2", error.Message);
        Assert.Contains("label 10", error.Message);
    }

    [Fact]
    public void AnEmptyBatchAndAFolderWithoutTestBatchAreNamed()
    {
        using var temp = new TempFolder();
        string folder = CifarTestFiles.WriteFolder(temp.Path, count: 2, 1);
        string batch = Path.Combine(folder, "data_batch_1.bin");
        File.WriteAllBytes(batch, []);
        var error = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load(temp.Path, new DatasetOptions(null, 0, AllowDownload: false)));
        Assert.Contains(batch, error.Message);
        Assert.Contains("empty", error.Message);

        File.Delete(Path.Combine(folder, CifarBinary.TestBatchName));
        string problem = DatasetCatalog.FolderProblem(temp.Path)!;
        Assert.Contains(CifarBinary.TestBatchName, problem);
        Assert.Contains(Path.GetFullPath(temp.Path), problem);
    }

    [Fact]
    public void TheArchiveIsDownloadedCheckedUnpackedAndRead()
    {
        using var temp = new TempFolder();
        var archive = CifarTestFiles.Archive(count: 5);
        using var server = new LoopbackFileServer(new Dictionary<string, byte[]> { ["cifar-10-binary.tar.gz"] = archive });
        var source = new ArchiveSource(new Uri(server.BaseUri, "cifar-10-binary.tar.gz"), Convert.ToHexStringLower(MD5.HashData(archive)));
        var log = new List<string>();
        using (var splits = DatasetCatalog.Load(DatasetCatalog.Cifar10, new DatasetOptions(temp.Path, 0, CifarSource: source) { Log = log.Add }))
        {
            Assert.Equal(25, splits.Train.Count);
            Assert.Equal(5, splits.Test.Count);
            Assert.Null(splits.Note);
        }
        Assert.Contains(log, line => line.Contains(source.Address.ToString()));
        string folder = Path.Combine(temp.Path, DatasetCatalog.Cifar10, CifarBinary.BatchFolderName);
        Assert.Equal(CifarBinary.FileNames.Order(), Directory.GetFiles(folder).Select(Path.GetFileName).Order());
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(temp.Path, DatasetCatalog.Cifar10), "*.partial"));

        // Local now: no download is needed.
        using var again = DatasetCatalog.Load(DatasetCatalog.Cifar10, new DatasetOptions(temp.Path, 0, AllowDownload: false));
        Assert.Equal(25, again.Train.Count);
    }

    [Fact]
    public void AWrongChecksumIsRejectedAndLeavesNothing()
    {
        using var temp = new TempFolder();
        var archive = CifarTestFiles.Archive(count: 2);
        using var server = new LoopbackFileServer(new Dictionary<string, byte[]> { ["cifar-10-binary.tar.gz"] = archive });
        var source = new ArchiveSource(new Uri(server.BaseUri, "cifar-10-binary.tar.gz"), "00000000000000000000000000000000");
        var error = Assert.Throws<DatasetUnavailableException>(() => DatasetCatalog.Load(DatasetCatalog.Cifar10, new DatasetOptions(temp.Path, 0, CifarSource: source)));
        Assert.Contains("checksum mismatch", error.Message);
        string root = Path.Combine(temp.Path, DatasetCatalog.Cifar10);
        Assert.Empty(Directory.GetFileSystemEntries(root));
    }

    [Fact]
    public void OfflineTheErrorNamesTheFilesTheFolderAndTheUrl()
    {
        using var temp = new TempFolder();
        var error = Assert.Throws<DatasetUnavailableException>(() => DatasetCatalog.Load(DatasetCatalog.Cifar10, new DatasetOptions(temp.Path, 0, AllowDownload: false)));
        foreach (string name in CifarBinary.FileNames) Assert.Contains(name, error.Message);
        Assert.Contains(Path.Combine(temp.Path, DatasetCatalog.Cifar10, CifarBinary.BatchFolderName), error.Message);
        Assert.Contains("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", error.Message);
        Assert.Contains("c32a1d4ab5d03f1284b67883e8d87530", error.Message);
    }
}
