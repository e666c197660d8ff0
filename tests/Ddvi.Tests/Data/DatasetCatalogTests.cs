using Ddvi.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Data;

public class DatasetCatalogTests
{
    [Fact]
    public void NamesAreTheFourDatasets()
    {
        Assert.Equal(["synthetic", "mnist", "fashion-mnist", "cifar10"], DatasetCatalog.Names);
    }

    [Fact]
    public void UnknownNameListsTheValidOnes()
    {
        var error = Assert.Throws<ArgumentException>(() => DatasetCatalog.Load("cifar", new DatasetOptions(null, 0)));

        Assert.Contains("'cifar'", error.Message);
        Assert.Contains("synthetic, mnist, fashion-mnist", error.Message);
    }

    [Fact]
    public void AFolderOfMnistFormatFilesLoadsUnderItsOwnName()
    {
        using var files = new IdxTestFiles();
        foreach (var (name, content) in IdxTestFiles.MnistFormatGzipFiles(40, 12, seed: 4)) files.Write("my set (v2)/" + name, content);
        string folder = Path.Combine(files.Root, "my set (v2)");

        Assert.True(DatasetCatalog.IsFolder(folder));
        Assert.False(DatasetCatalog.IsFolder(DatasetCatalog.FashionMnist));
        Assert.Null(DatasetCatalog.FolderProblem(folder));
        Assert.Equal("my_set__v2_", DatasetCatalog.ShortName(folder));
        Assert.Equal("my_set__v2_", DatasetCatalog.ShortName(folder + "/"));
        Assert.Equal(DatasetCatalog.Mnist, DatasetCatalog.ShortName(DatasetCatalog.Mnist));
        using var splits = DatasetCatalog.Load(folder, new DatasetOptions(null, 0, AllowDownload: false));

        Assert.Equal(40, splits.Train.Count);
        Assert.Equal(12, splits.Test.Count);
        Assert.Equal("my_set__v2_/train", splits.Train.Name);
        Assert.Equal([40L, 784L], splits.Train.Images.shape);
        var (_, labels) = IdxTestFiles.RandomExamples(40, 4);
        Assert.Equal(labels.Select(b => (long)b), splits.Train.Labels.data<long>().ToArray());
    }

    [Fact]
    public void AFolderMayHoldAnyImageSizeAndAnyByteLabels()
    {
        // Shaped like EMNIST letters: labels 1–26, here on 12×16 images.
        using var files = new IdxTestFiles();
        foreach (var (name, content) in IdxTestFiles.MnistFormatGzipFiles(60, 30, seed: 5, height: 12, width: 16, classes: 26, firstLabel: 1))
            files.Write("letters/" + name, content);

        using var splits = DatasetCatalog.Load(Path.Combine(files.Root, "letters"), new DatasetOptions(null, 0, AllowDownload: false));

        Assert.Equal(new ImageShape(1, 12, 16), splits.Train.Shape);
        Assert.Equal(new ImageShape(1, 12, 16), splits.Test.Shape);
        Assert.Equal([60L, 192L], splits.Train.Images.shape);
        Assert.Equal([30L, 192L], splits.Test.Images.shape);
        Assert.Equal(27, splits.Train.ClassCount);
        Assert.Equal(27, splits.Test.ClassCount);
        Assert.Equal(26L, splits.Train.Labels.max().item<long>());
        Assert.Null(splits.Note);
    }

    [Fact]
    public void EmnistFilesAreTransposedBackOnLoad()
    {
        // EMNIST stores each image column by column: a file whose header says 12×16 holds 16×12 images.
        using var files = new IdxTestFiles();
        var standard = IdxTestFiles.MnistFormatGzipFiles(6, 4, seed: 9, height: 12, width: 16, classes: 26, firstLabel: 1);
        foreach (var (name, content) in standard) files.Write("emnist/emnist-letters-" + name.Replace("t10k", "test"), content);

        using var splits = DatasetCatalog.Load(Path.Combine(files.Root, "emnist"), new DatasetOptions(null, 0, AllowDownload: false));

        Assert.Equal(new ImageShape(1, 16, 12), splits.Train.Shape);
        Assert.Equal(new ImageShape(1, 16, 12), splits.Test.Shape);
        var (stored, _) = IdxTestFiles.RandomExamples(4, 10, height: 12, width: 16, classes: 26, firstLabel: 1);
        var loaded = splits.Test.Images.data<float>().ToArray();
        for (int image = 0; image < 4; image++)
            for (int row = 0; row < 16; row++)
                for (int column = 0; column < 12; column++)
                    Assert.Equal(stored[image * 192 + column * 16 + row] / 255f, loaded[image * 192 + row * 12 + column]);
        Assert.NotNull(splits.Note);
        Assert.Contains("emnist-letters-train-images-idx3-ubyte.gz", splits.Note);
        Assert.Contains("transposed back on load to 1×16×12", splits.Note);
    }

    [Theory]
    [InlineData("emnist-letters-{0}-{1}-idx{2}-ubyte.gz", "test")] // EMNIST's names
    [InlineData("{0}-{1}.idx{2}-ubyte", "t10k")] // some raw copies of MNIST
    [InlineData("KMNIST_{0}_{1}_idx{2}_ubyte.gz", "TEST")]
    public void AFolderMayNameItsFilesAsOtherSetsDo(string pattern, string testSplit)
    {
        using var files = new IdxTestFiles();
        var standard = IdxTestFiles.MnistFormatGzipFiles(30, 20, seed: 8);
        string Renamed(string split, string content, int rank) => string.Format(pattern, split, content, rank);
        var renamed = new Dictionary<string, string>
        {
            [MnistFormat.TrainImages + ".gz"] = Renamed("train", "images", 3),
            [MnistFormat.TrainLabels + ".gz"] = Renamed("train", "labels", 1),
            [MnistFormat.TestImages + ".gz"] = Renamed(testSplit, "images", 3),
            [MnistFormat.TestLabels + ".gz"] = Renamed(testSplit, "labels", 1),
        };
        // The content is gzip under either kind of name: the reader goes by the magic bytes.
        foreach (var (name, content) in standard) files.Write("renamed/" + renamed[name], content);
        string folder = Path.Combine(files.Root, "renamed");

        Assert.Null(DatasetCatalog.FolderProblem(folder));
        using var splits = DatasetCatalog.Load(folder, new DatasetOptions(null, 0, AllowDownload: false));

        Assert.Equal(30, splits.Train.Count);
        Assert.Equal(20, splits.Test.Count);
        Assert.Equal(Path.Combine(folder, renamed[MnistFormat.TestImages + ".gz"]), MnistFormat.Match(folder).Files!.TestImages);
    }

    [Fact]
    public void AFolderWithTwoDatasetsNamesTheClashingFiles()
    {
        using var files = new IdxTestFiles();
        foreach (var set in new[] { "emnist-letters", "emnist-digits" })
            foreach (var (name, content) in IdxTestFiles.MnistFormatGzipFiles(10, 10, seed: 2))
                files.Write($"emnist/{set}-{name.Replace("t10k", "test")}", content);
        string folder = Path.Combine(files.Root, "emnist");

        string? problem = DatasetCatalog.FolderProblem(folder);

        Assert.NotNull(problem);
        Assert.Contains($"{MnistFormat.TrainImages}: emnist-digits-{MnistFormat.TrainImages}.gz, emnist-letters-{MnistFormat.TrainImages}.gz", problem);
        Assert.Contains("keep one dataset per folder", problem);
        Assert.Throws<DatasetUnavailableException>(() => DatasetCatalog.Load(folder, new DatasetOptions(null, 0)));
    }

    [Fact]
    public void AFoldersTestImagesMustHaveTheTrainingImagesSize()
    {
        using var files = new IdxTestFiles();
        var set = IdxTestFiles.MnistFormatGzipFiles(10, 10, seed: 3, height: 12, width: 16);
        set[MnistFormat.TestImages + ".gz"] = IdxTestFiles.Gzip(IdxTestFiles.Idx(IdxReader.ImageMagic, [10, 16, 12], new byte[10 * 16 * 12]));
        foreach (var (name, content) in set) files.Write("mixed/" + name, content);

        var error = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load(Path.Combine(files.Root, "mixed"), new DatasetOptions(null, 0)));

        Assert.Contains(Path.Combine(files.Root, "mixed", MnistFormat.TestImages + ".gz"), error.Message);
        Assert.Contains("images are 16×12, expected 12×16", error.Message);
    }

    [Fact]
    public void AnEmptySplitIsNamed()
    {
        using var files = new IdxTestFiles();
        var set = IdxTestFiles.MnistFormatGzipFiles(10, 10, seed: 3);
        set[MnistFormat.TestImages + ".gz"] = IdxTestFiles.Gzip(IdxTestFiles.Idx(IdxReader.ImageMagic, [0, 28, 28], []));
        set[MnistFormat.TestLabels + ".gz"] = IdxTestFiles.Gzip(IdxTestFiles.Idx(IdxReader.LabelMagic, [0], []));
        foreach (var (name, content) in set) files.Write("empty-test/" + name, content);

        var error = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load(Path.Combine(files.Root, "empty-test"), new DatasetOptions(null, 0)));

        Assert.Contains(Path.Combine(files.Root, "empty-test", MnistFormat.TestImages + ".gz"), error.Message);
        Assert.Contains("holds no images", error.Message);
    }

    [Fact]
    public void MnistAndFashionMnistMustBe28By28()
    {
        using var files = new IdxTestFiles();
        foreach (var (name, content) in IdxTestFiles.MnistFormatGzipFiles(10, 10, seed: 3, height: 12, width: 16)) files.Write("mnist/" + name, content);

        var error = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load(DatasetCatalog.Mnist, new DatasetOptions(files.Root, 0, AllowDownload: false)));

        Assert.Contains(Path.Combine(files.Root, "mnist", MnistFormat.TrainImages + ".gz"), error.Message);
        Assert.Contains("images are 12×16, expected 28×28", error.Message);
    }

    [Fact]
    public void AFolderIsKeptAsItsFullPath()
    {
        string saved = Environment.CurrentDirectory;
        using var files = new IdxTestFiles();
        Directory.CreateDirectory(Path.Combine(files.Root, "kmnist"));
        try
        {
            Environment.CurrentDirectory = files.Root;
            Assert.Equal(Path.Combine(files.Root, "kmnist"), DatasetCatalog.Canonical("kmnist"));
            Assert.Equal(Path.Combine(files.Root, "kmnist"), DatasetCatalog.Canonical("./kmnist"));
            Assert.Equal(DatasetCatalog.Synthetic, DatasetCatalog.Canonical(DatasetCatalog.Synthetic));
        }
        finally
        {
            Environment.CurrentDirectory = saved;
        }
    }

    [Fact]
    public void AFolderWithoutAllFourFilesNamesTheMissingOnes()
    {
        using var files = new IdxTestFiles();
        var set = IdxTestFiles.MnistFormatGzipFiles(10, 10, seed: 2);
        files.Write("partial/" + MnistFormat.TrainImages + ".gz", set[MnistFormat.TrainImages + ".gz"]);
        files.Write("partial/" + MnistFormat.TrainLabels, IdxTestFiles.Idx(IdxReader.LabelMagic, [10], new byte[10]));
        string folder = Path.Combine(files.Root, "partial");

        var error = Assert.Throws<DatasetUnavailableException>(() => DatasetCatalog.Load(folder, new DatasetOptions(null, 0)));

        Assert.Contains(folder, error.Message);
        Assert.Contains($"lacks {MnistFormat.TestImages}, {MnistFormat.TestLabels}", error.Message);
        Assert.DoesNotContain($"lacks {MnistFormat.TrainLabels}", error.Message);
    }

    [Fact]
    public void DefaultDirectoryFollowsXdgCacheHome()
    {
        string? saved = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        try
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", "/srv/cache");
            Assert.Equal("/srv/cache/ddvi/datasets", DatasetCatalog.DefaultDataDirectory());
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", null);
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            Assert.Equal(Path.Combine(home, ".cache", "ddvi", "datasets"), DatasetCatalog.DefaultDataDirectory());
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", saved);
        }
    }

    [Fact]
    public void DescribeSaysWhatIsOnDiskAndWhere()
    {
        using var files = new IdxTestFiles();

        var before = DatasetCatalog.Describe(files.Root).ToDictionary(d => d.Name);
        foreach (var (name, content) in IdxTestFiles.MnistFormatGzipFiles(10, 10, seed: 1)) files.Write("mnist/" + name, content);
        var after = DatasetCatalog.Describe(files.Root).ToDictionary(d => d.Name);

        Assert.Equal(DatasetCatalog.Names, DatasetCatalog.Describe(files.Root).Select(d => d.Name));
        Assert.True(before["synthetic"].Available);
        Assert.Equal("built in", before["synthetic"].Location);
        Assert.False(before["mnist"].Available);
        Assert.Equal(Path.Combine(files.Root, "mnist"), before["mnist"].Location);
        Assert.True(after["mnist"].Available);
        Assert.Equal(Path.Combine(files.Root, "mnist"), after["mnist"].Location);
        Assert.All(after.Values, d => Assert.False(string.IsNullOrWhiteSpace(d.Description)));
    }

    [Fact]
    public void CorruptLocalFilesAreReportedNotDownloadedOver()
    {
        using var files = new IdxTestFiles();
        var set = IdxTestFiles.MnistFormatGzipFiles(10, 10, seed: 1);
        set[MnistFormat.TestLabels + ".gz"] = IdxTestFiles.Gzip(IdxTestFiles.Idx(IdxReader.LabelMagic, [9], new byte[9]));
        foreach (var (name, content) in set) files.Write("mnist/" + name, content);
        string images = Path.Combine(files.Root, "mnist", MnistFormat.TestImages + ".gz");
        string labels = Path.Combine(files.Root, "mnist", MnistFormat.TestLabels + ".gz");

        var error = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load(DatasetCatalog.Mnist, new DatasetOptions(files.Root, 0)));

        Assert.Contains($"10 images in {images}", error.Message);
        Assert.Contains($"9 labels in {labels}", error.Message);
    }

    [Fact]
    public void LabelsOutsideTenClassesAreRejected()
    {
        using var files = new IdxTestFiles();
        var set = IdxTestFiles.MnistFormatGzipFiles(10, 10, seed: 1);
        var labels = new byte[10];
        labels[3] = 10;
        set[MnistFormat.TrainLabels + ".gz"] = IdxTestFiles.Gzip(IdxTestFiles.Idx(IdxReader.LabelMagic, [10], labels));
        foreach (var (name, content) in set) files.Write("fashion-mnist/" + name, content);

        var error = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load(DatasetCatalog.FashionMnist, new DatasetOptions(files.Root, 0)));

        Assert.Contains(Path.Combine(files.Root, "fashion-mnist", MnistFormat.TrainLabels + ".gz"), error.Message);
        Assert.Contains("label 10 at index 3 is outside [0, 10)", error.Message);
    }

    [Fact]
    public void FashionMnistInTheDataDirectoryComesBeforeTheSystemCopy()
    {
        using var files = new IdxTestFiles();
        foreach (var (name, content) in IdxTestFiles.MnistFormatGzipFiles(30, 20, seed: 9)) files.Write("fashion-mnist/" + name, content);

        using var splits = DatasetCatalog.Load(DatasetCatalog.FashionMnist, new DatasetOptions(files.Root, 0, AllowDownload: false));

        Assert.Equal(30, splits.Train.Count);
        Assert.Equal(20, splits.Test.Count);
        Assert.Equal("fashion-mnist/test", splits.Test.Name);
    }

    /// <summary>The real Fashion-MNIST from Debian's package; CI installs it, so its absence is a failure, not a skip.</summary>
    [Fact]
    public void RealFashionMnistFromTheDebianPackage()
    {
        Assert.True(MnistFormat.IsComplete(DatasetCatalog.DebianFashionMnistDirectory),
            $"Fashion-MNIST is not installed in {DatasetCatalog.DebianFashionMnistDirectory}: run " +
            "`sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist` (CI does) and rerun the tests.");
        using var files = new IdxTestFiles();

        using var splits = DatasetCatalog.Load(DatasetCatalog.FashionMnist, new DatasetOptions(files.Root, 0, AllowDownload: false));
        var described = DatasetCatalog.Describe(files.Root).Single(d => d.Name == DatasetCatalog.FashionMnist);

        Assert.True(described.Available);
        Assert.Equal(DatasetCatalog.DebianFashionMnistDirectory, described.Location);
        foreach (var (split, count) in new[] { (splits.Train, 60000L), (splits.Test, 10000L) })
        {
            Assert.Equal(count, split.Count);
            Assert.Equal(784, split.Dimension);
            Assert.Equal(ImageShape.Mnist, split.Shape);
            Assert.Equal(Enumerable.Repeat(count / 10, 10).ToArray(), split.Labels.bincount(null, 10).data<long>().ToArray());
            Assert.Equal(0L, split.Labels.min().item<long>());
            Assert.Equal(9L, split.Labels.max().item<long>());
            Assert.Equal(0f, split.Images.min().item<float>());
            Assert.Equal(1f, split.Images.max().item<float>());
            Assert.Equal(ScalarType.Float32, split.Images.dtype);
        }
        // Fashion-MNIST's mean pixel is about 0.286 (72.9 / 255), a check that the bytes are read in order and scaled.
        Assert.InRange(splits.Train.Images.mean().item<float>(), 0.28f, 0.29f);
    }
}
