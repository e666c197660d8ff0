using System.Security.Cryptography;
using Ddvi.Data;
using TorchSharp;

namespace Ddvi.Tests.Data;

public class MnistDownloadTests
{
    const int TrainCount = 20, TestCount = 10;
    static readonly Dictionary<string, byte[]> Served = IdxTestFiles.MnistFormatGzipFiles(TrainCount, TestCount, seed: 42);

    static Dictionary<string, string> Checksums(IReadOnlyDictionary<string, byte[]> files) =>
        files.ToDictionary(f => f.Key, f => Convert.ToHexStringLower(MD5.HashData(f.Value)));

    static DatasetOptions Options(string dataDirectory, params DownloadSource[] sources) =>
        new(dataDirectory, Seed: 0, DownloadSources: sources) { DownloadTimeout = TimeSpan.FromSeconds(20) };

    static string[] FilesIn(string directory) =>
        Directory.Exists(directory) ? Directory.GetFiles(directory).Select(path => Path.GetFileName(path)).Order().ToArray() : [];

    [Fact]
    public void MissingFilesAreDownloadedCheckedAndLoaded()
    {
        using var files = new IdxTestFiles();
        using var server = new LoopbackFileServer(Served);

        using (var splits = DatasetCatalog.Load(DatasetCatalog.Mnist, Options(files.Root, new DownloadSource(server.BaseUri, Checksums(Served)))))
        {
            Assert.Equal(TrainCount, splits.Train.Count);
            Assert.Equal(TestCount, splits.Test.Count);
            Assert.Equal("mnist/train", splits.Train.Name);
            var (pixels, labels) = IdxTestFiles.RandomExamples(TrainCount, seed: 42);
            Assert.Equal(pixels.Select(p => p / 255f).ToArray(), splits.Train.Images.data<float>().ToArray());
            Assert.Equal(labels.Select(l => (long)l).ToArray(), splits.Train.Labels.data<long>().ToArray());
        }
        string folder = Path.Combine(files.Root, "mnist");
        Assert.Equal(MnistFormat.GzipFileNames.Order().ToArray(), FilesIn(folder));
        Assert.All(MnistFormat.GzipFileNames, name => Assert.Equal(Served[name], File.ReadAllBytes(Path.Combine(folder, name))));

        // Now local: a second load needs no source at all.
        using var again = DatasetCatalog.Load(DatasetCatalog.Mnist, Options(files.Root, new DownloadSource(new Uri("http://127.0.0.1:1/"), Checksums(Served))));
        Assert.Equal(TrainCount, again.Train.Count);
        Assert.Equal(4, server.Requests.Count);
    }

    [Fact]
    public void AFailingMirrorFallsBackToTheNext()
    {
        using var files = new IdxTestFiles();
        using var empty = new LoopbackFileServer(new Dictionary<string, byte[]>());
        using var full = new LoopbackFileServer(Served);
        var checksums = Checksums(Served);

        using var splits = DatasetCatalog.Load(DatasetCatalog.Mnist,
            Options(files.Root, new DownloadSource(empty.BaseUri, checksums), new DownloadSource(full.BaseUri, checksums)));

        Assert.Equal(TestCount, splits.Test.Count);
        Assert.Equal(MnistFormat.GzipFileNames, empty.Requests.ToArray());
        Assert.Equal(MnistFormat.GzipFileNames, full.Requests.ToArray());
    }

    [Fact]
    public void WrongChecksumIsRejectedAndLeavesNoFile()
    {
        using var files = new IdxTestFiles();
        using var server = new LoopbackFileServer(Served);
        var checksums = Checksums(Served);
        checksums[MnistFormat.TrainImages + ".gz"] = "00000000000000000000000000000000";

        var error = Assert.Throws<DatasetUnavailableException>(() =>
            DatasetCatalog.Load(DatasetCatalog.Mnist, Options(files.Root, new DownloadSource(server.BaseUri, checksums))));

        Assert.Equal("mnist", error.DatasetName);
        Assert.Contains($"checksum mismatch: MD5 {Checksums(Served)[MnistFormat.TrainImages + ".gz"]}, expected 00000000000000000000000000000000", error.Message);
        Assert.Contains("no source could deliver " + MnistFormat.TrainImages + ".gz", error.Message);
        Assert.DoesNotContain(FilesIn(Path.Combine(files.Root, "mnist")), name => name.StartsWith(MnistFormat.TrainImages));
        Assert.DoesNotContain(FilesIn(Path.Combine(files.Root, "mnist")), name => name.EndsWith(".partial"));
    }

    [Fact]
    public void UnreachableSourceSaysWhatToFetchWhereToPutItAndHow()
    {
        using var files = new IdxTestFiles();
        var unreachable = new DownloadSource(new Uri("http://127.0.0.1:1/mnist/"), Checksums(Served));

        var error = Assert.Throws<DatasetUnavailableException>(() =>
            DatasetCatalog.Load(DatasetCatalog.Mnist, Options(files.Root, unreachable)));

        Assert.All(MnistFormat.GzipFileNames, name => Assert.Contains(name, error.Message));
        Assert.Contains(Path.Combine(files.Root, "mnist"), error.Message);
        Assert.Contains("http://127.0.0.1:1/mnist/", error.Message);
        Assert.Contains("--data-dir", error.Message);
        Assert.Empty(FilesIn(Path.Combine(files.Root, "mnist")));
    }

    [Fact]
    public void StandardMirrorsAreNamedWhenDownloadIsOff()
    {
        using var files = new IdxTestFiles();

        var error = Assert.Throws<DatasetUnavailableException>(() =>
            DatasetCatalog.Load(DatasetCatalog.Mnist, new DatasetOptions(files.Root, 0, AllowDownload: false)));

        Assert.Contains("downloading is turned off", error.Message);
        Assert.Contains("https://ossci-datasets.s3.amazonaws.com/mnist/", error.Message);
        Assert.Contains("https://storage.googleapis.com/cvdf-datasets/mnist/", error.Message);
        Assert.All(MnistFormat.GzipFileNames, name => Assert.Contains(name, error.Message));
        Assert.False(Directory.Exists(Path.Combine(files.Root, "mnist")));
    }

    [Fact]
    public void NoDownloadIsAttemptedWhenItIsOff()
    {
        using var files = new IdxTestFiles();
        using var server = new LoopbackFileServer(Served);

        Assert.Throws<DatasetUnavailableException>(() => DatasetCatalog.Load(DatasetCatalog.Mnist,
            Options(files.Root, new DownloadSource(server.BaseUri, Checksums(Served))) with { AllowDownload = false }));

        Assert.Empty(server.Requests);
    }

    [Fact]
    public void LocalFilesArePreferredRawOrGzipped()
    {
        using var files = new IdxTestFiles();
        using var server = new LoopbackFileServer(Served);
        var (pixels, labels) = IdxTestFiles.RandomExamples(6, seed: 5);
        files.Write("mnist/" + MnistFormat.TrainImages, IdxTestFiles.Idx(IdxReader.ImageMagic, [6, 28, 28], pixels));
        files.Write("mnist/" + MnistFormat.TrainLabels + ".gz", IdxTestFiles.Idx(IdxReader.LabelMagic, [6], labels), gzip: true);
        files.Write("mnist/" + MnistFormat.TestImages + ".gz", IdxTestFiles.Idx(IdxReader.ImageMagic, [6, 28, 28], pixels), gzip: true);
        files.Write("mnist/" + MnistFormat.TestLabels, IdxTestFiles.Idx(IdxReader.LabelMagic, [6], labels));

        using var splits = DatasetCatalog.Load(DatasetCatalog.Mnist, Options(files.Root, new DownloadSource(server.BaseUri, Checksums(Served))));

        Assert.Equal(6, splits.Train.Count);
        Assert.Equal(6, splits.Test.Count);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public void OnlyTheMissingFilesAreDownloaded()
    {
        using var files = new IdxTestFiles();
        using var server = new LoopbackFileServer(Served);
        files.Write("mnist/" + MnistFormat.TrainImages + ".gz", Served[MnistFormat.TrainImages + ".gz"]);
        files.Write("mnist/" + MnistFormat.TrainLabels + ".gz", Served[MnistFormat.TrainLabels + ".gz"]);

        using var splits = DatasetCatalog.Load(DatasetCatalog.Mnist, Options(files.Root, new DownloadSource(server.BaseUri, Checksums(Served))));

        Assert.Equal(TestCount, splits.Test.Count);
        Assert.Equal([MnistFormat.TestImages + ".gz", MnistFormat.TestLabels + ".gz"], server.Requests.ToArray());
    }

    [Fact]
    public void StandardMirrorAddressesAndChecksums()
    {
        Assert.Equal(
            ["https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz", "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz"],
            DownloadSource.MnistMirrors.Select(m => m.AddressOf("train-images-idx3-ubyte.gz").AbsoluteUri));
        Assert.Equal("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz",
            DownloadSource.FashionMnistMirrors.Single().AddressOf("t10k-labels-idx1-ubyte.gz").AbsoluteUri);
        Assert.All(DownloadSource.MnistMirrors.Concat(DownloadSource.FashionMnistMirrors),
            mirror => Assert.Equal(MnistFormat.GzipFileNames.Order(), mirror.Md5ByFileName.Keys.Order()));
        Assert.Equal("f68b3c2dcbeaaa9fbdd348bbdeb94873", DownloadSource.MnistMirrors[0].Md5ByFileName["train-images-idx3-ubyte.gz"]);
        Assert.Equal("bb300cfdad3c16e7a12a480ee83cd310", DownloadSource.FashionMnistMirrors[0].Md5ByFileName["t10k-labels-idx1-ubyte.gz"]);
        // A base address given without its trailing slash still names the file under it.
        Assert.Equal("http://host/a/b/x.gz", new DownloadSource(new Uri("http://host/a/b"), new Dictionary<string, string>()).AddressOf("x.gz").AbsoluteUri);
    }
}
