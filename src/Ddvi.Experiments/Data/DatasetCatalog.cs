using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Data;

/// <summary>
/// How <see cref="DatasetCatalog.Load"/> finds or makes a dataset.
/// </summary>
/// <param name="DataDirectory">Folder holding one sub-folder per dataset (<c>mnist/</c>, <c>fashion-mnist/</c>);
/// null uses <see cref="DatasetCatalog.DefaultDataDirectory"/>.</param>
/// <param name="Seed">Seed of the synthetic dataset (train and test come from different streams of it).</param>
/// <param name="AllowDownload">Whether missing MNIST-format files may be fetched from the mirrors.</param>
/// <param name="SyntheticTrainCount">Training images of the synthetic dataset.</param>
/// <param name="SyntheticTestCount">Test images of the synthetic dataset.</param>
/// <param name="DownloadSources">Mirrors to fetch from, in order; null uses the dataset's standard mirrors
/// (<see cref="DownloadSource.MnistMirrors"/>, <see cref="DownloadSource.FashionMnistMirrors"/>).</param>
/// <param name="CifarSource">Where to fetch CIFAR-10's binary archive; null uses <see cref="ArchiveSource.OfficialCifar10"/>.</param>
public sealed record DatasetOptions(
    string? DataDirectory,
    long Seed,
    bool AllowDownload = true,
    int SyntheticTrainCount = 10000,
    int SyntheticTestCount = 2000,
    IReadOnlyList<DownloadSource>? DownloadSources = null,
    ArchiveSource? CifarSource = null)
{
    /// <summary>Longest time one file's download may take.</summary>
    public TimeSpan DownloadTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Receives one line per download attempt (for a CLI to print); null prints nothing.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>One row of <see cref="DatasetCatalog.Describe"/>: a dataset, whether it can be loaded without a
/// download, where it is (or would be put) and what it holds.</summary>
public sealed record DatasetDescription(string Name, bool Available, string Location, string Description);

/// <summary>
/// The datasets Ddvi knows by name: <c>synthetic</c> (built in, see <see cref="SyntheticShapes"/>), <c>mnist</c> and
/// <c>fashion-mnist</c> (IDX files on disk, downloaded when missing and allowed), <c>cifar10</c> (the official binary
/// batches, downloaded likewise); any other value is a folder holding the four MNIST-format files of another dataset,
/// CIFAR-10's binary batches (any of the five training batches, see <see cref="CifarBinary"/>), or image files in class
/// sub-folders (<see cref="ImageFolder"/>), tried in that order. MNIST and Fashion-MNIST are checked to be 28×28 with
/// labels 0–9; an MNIST-format folder's images may have any size (the same in both splits) and its labels any byte
/// values, the class count being the largest label plus one. MNIST-format pixels are in [0, 1]; CIFAR-10's and an image
/// folder's in [−1, 1] (<see cref="PixelRange"/>).
/// </summary>
public static class DatasetCatalog
{
    public const string Synthetic = "synthetic";
    public const string Mnist = "mnist";
    public const string FashionMnist = "fashion-mnist";
    public const string Cifar10 = "cifar10";
    const int StandardClassCount = 10;

    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the files.</summary>
    public const string DebianFashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    public static IReadOnlyList<string> Names { get; } = [Synthetic, Mnist, FashionMnist, Cifar10];

    /// <summary>A known name as it is, a folder as its full path (so a run resumed from elsewhere finds it).</summary>
    public static string Canonical(string dataset)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataset);
        return IsFolder(dataset) ? Path.GetFullPath(dataset) : dataset;
    }

    /// <summary>Whether <paramref name="dataset"/> names a folder rather than a known dataset.</summary>
    public static bool IsFolder(string dataset) => !Names.Contains(dataset);

    /// <summary>
    /// A short name for <paramref name="dataset"/>, for run folders, titles and tables: the name itself, or a folder's
    /// own name with anything but letters, digits, '.', '_' and '-' replaced by '_'.
    /// </summary>
    public static string ShortName(string dataset)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (!IsFolder(dataset)) return dataset;
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataset)));
        var cleaned = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_').ToArray());
        return cleaned.Length == 0 ? "dataset" : cleaned;
    }

    /// <summary>
    /// Why <paramref name="dataset"/> cannot be loaded without a download, or null when it can (or is a known name,
    /// which <see cref="Load"/> may still download): a folder must exist and hold one of the three layouts.
    /// </summary>
    public static string? FolderProblem(string dataset) => IsFolder(dataset) ? MatchFolder(dataset).Problem : null;

    /// <summary>The layout of a dataset folder that <see cref="MatchFolder"/> recognised.</summary>
    enum FolderLayout { MnistFormat, CifarBinary, ImageFolders }

    /// <summary>A folder's layout (and MNIST-format files), or what keeps it from being a dataset, worded for --dataset.</summary>
    static (FolderLayout Layout, MnistFiles? Files, string? Problem) MatchFolder(string folder)
    {
        if (!Directory.Exists(folder))
            return (default, null, $"--dataset '{folder}' is neither a known dataset ({string.Join(", ", Names)}) nor an existing folder " +
                                   "(of MNIST-format files, CIFAR-10 binary batches, or train/CLASS and test/CLASS image folders).");
        var (files, problem) = MnistFormat.Match(folder);
        if (problem is null) return (FolderLayout.MnistFormat, files, null);
        if (CifarBinary.Find(folder) is not null) return (FolderLayout.CifarBinary, null, null);
        if (ImageFolder.Matches(folder))
        {
            string? imageProblem = ImageFolder.Problem(folder);
            return (FolderLayout.ImageFolders, null, imageProblem is null ? null : $"--dataset folder {Path.GetFullPath(folder)} {imageProblem}.");
        }
        string full = Path.GetFullPath(folder);
        if (CifarBinary.LooksLikeCifar(folder))
            return (default, null, $"--dataset folder {full} holds part of CIFAR-10's binary layout but not {CifarBinary.TestBatchName} together with " +
                                   $"at least one of {string.Join(", ", CifarBinary.TrainBatchNames)} (in it or in its {CifarBinary.BatchFolderName} sub-folder).");
        return (default, null, $"--dataset folder {full} {problem}; an MNIST-format dataset needs all four: {string.Join(", ", MnistFormat.FileNames)}. " +
                               $"It is not a CIFAR-10 binary folder either ({CifarBinary.TestBatchName} and data_batch_N.bin files), nor an image " +
                               $"dataset ({ImageFolder.TrainFolder}/CLASS/*.png|jpg and {ImageFolder.TestFolder}/CLASS/*).");
    }

    /// <summary><c>$XDG_CACHE_HOME/ddvi/datasets</c>, or <c>~/.cache/ddvi/datasets</c> when XDG_CACHE_HOME is unset.</summary>
    public static string DefaultDataDirectory()
    {
        string? cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrWhiteSpace(cache) || !Path.IsPathRooted(cache))
            cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "ddvi", "datasets");
    }

    /// <summary>
    /// The train and test splits of <paramref name="name"/>. Local files are preferred; MNIST-format files that are
    /// missing are downloaded when <see cref="DatasetOptions.AllowDownload"/> is set, else (or when every mirror
    /// fails) a <see cref="DatasetUnavailableException"/> says what to fetch and where to put it.
    /// </summary>
    public static DatasetSplits Load(string name, DatasetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return name switch
        {
            Synthetic => LoadSynthetic(options),
            Mnist => LoadMnistFormat(Mnist, options, DownloadSource.MnistMirrors),
            FashionMnist => LoadMnistFormat(FashionMnist, options, DownloadSource.FashionMnistMirrors),
            Cifar10 => LoadCifar10(options),
            _ => LoadFolder(name),
        };
    }

    /// <summary>Every dataset with whether it is on disk (or built in) and where.</summary>
    public static IReadOnlyList<DatasetDescription> Describe(string? dataDirectory)
    {
        string root = dataDirectory ?? DefaultDataDirectory();
        var rows = new List<DatasetDescription>
        {
            new(Synthetic, true, "built in",
                "10 line-drawing classes (ring, bars, plus, cross, L, triangle, square, T, crossed ring) with random pose and stroke width; generated from the seed."),
        };
        foreach (var (name, description) in new[]
        {
            (Mnist, "handwritten digits 0-9, 60,000 train / 10,000 test (LeCun et al.)."),
            (FashionMnist, "Zalando clothing images in 10 classes, 60,000 train / 10,000 test."),
        })
        {
            string? found = SearchDirectories(name, root).FirstOrDefault(MnistFormat.IsComplete);
            rows.Add(found is not null
                ? new DatasetDescription(name, true, found, description)
                : new DatasetDescription(name, false, Path.Combine(root, name), description + " Not found; downloaded here on first use."));
        }
        const string cifarDescription = "colour photographs (32×32 RGB) in 10 classes, 50,000 train / 10,000 test (Krizhevsky 2009), official binary batches.";
        string cifarFolder = Path.Combine(root, Cifar10);
        rows.Add(CifarBinary.Find(cifarFolder) is { } cifar
            ? new DatasetDescription(Cifar10, true, cifar.Folder, cifarDescription +
                (cifar.TrainBatches.Count < CifarBinary.StandardTrainBatches ? $" Only {cifar.TrainBatches.Count} of the 5 training batches present." : ""))
            : new DatasetDescription(Cifar10, false, Path.Combine(cifarFolder, CifarBinary.BatchFolderName), cifarDescription + " Not found; downloaded here on first use."));
        return rows;
    }

    static DatasetSplits LoadSynthetic(DatasetOptions options)
    {
        if (options.SyntheticTrainCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.SyntheticTrainCount, "SyntheticTrainCount must be positive.");
        if (options.SyntheticTestCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.SyntheticTestCount, "SyntheticTestCount must be positive.");
        using var trainGenerator = new Generator(StreamSeed(options.Seed, 0));
        using var testGenerator = new Generator(StreamSeed(options.Seed, 1));
        var train = SyntheticShapes.Generate($"{Synthetic}/train", options.SyntheticTrainCount, trainGenerator);
        var test = SyntheticShapes.Generate($"{Synthetic}/test", options.SyntheticTestCount, testGenerator);
        return new DatasetSplits(train, test);
    }

    /// <summary>SplitMix64 of (seed, stream): independent-looking generator seeds for the splits of one seed.</summary>
    static ulong StreamSeed(long seed, int stream)
    {
        ulong z = unchecked((ulong)seed + 0x9E3779B97F4A7C15UL * (ulong)(stream + 1));
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }

    static IEnumerable<string> SearchDirectories(string name, string root)
    {
        yield return Path.Combine(root, name);
        if (name == FashionMnist) yield return DebianFashionMnistDirectory;
    }

    static DatasetSplits LoadMnistFormat(string name, DatasetOptions options, IReadOnlyList<DownloadSource> standardSources)
    {
        string root = options.DataDirectory ?? DefaultDataDirectory();
        string target = Path.Combine(root, name);
        string? directory = SearchDirectories(name, root).FirstOrDefault(MnistFormat.IsComplete);
        if (directory is null)
        {
            var sources = options.DownloadSources ?? standardSources;
            if (!options.AllowDownload)
                throw Unavailable(name, target, sources, "downloading is turned off.");
            string? failure = MnistDownloader.DownloadMissing(target, sources, options.DownloadTimeout, options.Log);
            if (failure is not null) throw Unavailable(name, target, sources, failure);
            directory = target;
        }

        return ReadMnistFormat(name, MnistFormat.Standard(directory)!, ImageShape.Mnist, StandardClassCount);
    }

    static DatasetSplits LoadCifar10(DatasetOptions options)
    {
        string target = Path.Combine(options.DataDirectory ?? DefaultDataDirectory(), Cifar10);
        var files = CifarBinary.Find(target);
        if (files is null || files.TrainBatches.Count < CifarBinary.StandardTrainBatches)
        {
            var source = options.CifarSource ?? ArchiveSource.OfficialCifar10;
            if (!options.AllowDownload)
                throw CifarUnavailable(target, source, "downloading is turned off.");
            string? failure = CifarDownloader.Download(target, source, options.DownloadTimeout, options.Log);
            if (failure is not null) throw CifarUnavailable(target, source, failure);
            files = CifarBinary.Find(target)!;
        }
        return CifarBinary.Read(Cifar10, files);
    }

    static DatasetUnavailableException CifarUnavailable(string directory, ArchiveSource source, string reason)
    {
        string newLine = Environment.NewLine;
        string folder = Path.Combine(directory, CifarBinary.BatchFolderName);
        return new DatasetUnavailableException(Cifar10,
            $"Dataset '{Cifar10}' is not available. It needs the files of CIFAR-10's binary version: {string.Join(", ", CifarBinary.FileNames)}.{newLine}" +
            $"They are not all in {folder}, and they could not be downloaded: {reason}{newLine}" +
            $"Download {source.Address} (MD5 {source.Md5}) and unpack it in {directory}, so that the files are in {folder},{newLine}" +
            $"or pass --data-dir pointing at a folder that holds a '{Cifar10}' folder with them, or --dataset with the folder that holds them.");
    }

    static DatasetSplits LoadFolder(string folder)
    {
        var (layout, files, problem) = MatchFolder(folder);
        if (problem is not null)
            throw Directory.Exists(folder) ? new DatasetUnavailableException(folder, problem) : new ArgumentException(problem, "name");
        if (layout == FolderLayout.CifarBinary) return CifarBinary.Read(ShortName(folder), CifarBinary.Find(folder)!);
        if (layout == FolderLayout.ImageFolders) return ImageFolder.Read(ShortName(folder), folder);
        if (files is null) throw new InvalidOperationException($"{folder}: matched as MNIST format without its files.");
        // The training images set the size both splits must have; the labels of both set the class count.
        var shape = IdxReader.ReadImageShape(files.TrainImages);
        return ReadMnistFormat(ShortName(folder), files, shape, classCount: null);
    }

    /// <param name="storedShape">The image size the files' headers must give (for transposed files, the stored one).</param>
    /// <param name="classCount">Labels must lie below it; null: any byte, and the class count is the largest label plus one.</param>
    static DatasetSplits ReadMnistFormat(string name, MnistFiles files, ImageShape storedShape, int? classCount)
    {
        var (trainImages, trainLabels) = IdxReader.ReadPair(files.TrainImages, files.TrainLabels, storedShape, classCount);
        Tensor? testImages = null, testLabels = null;
        try
        {
            RequireExamples(trainImages, files.TrainImages);
            (testImages, testLabels) = IdxReader.ReadPair(files.TestImages, files.TestLabels, storedShape, classCount);
            RequireExamples(testImages, files.TestImages);
            int classes = classCount ?? (int)Math.Max(trainLabels.max().item<long>(), testLabels.max().item<long>()) + 1;
            var shape = storedShape;
            string? note = null;
            if (files.StoredTransposed)
            {
                shape = new ImageShape(storedShape.Channels, storedShape.Width, storedShape.Height);
                trainImages = Transposed(trainImages, storedShape);
                testImages = Transposed(testImages, storedShape);
                note = $"{Path.GetFileName(files.TrainImages)} and {Path.GetFileName(files.TestImages)} store each image transposed, as EMNIST does; transposed back on load to {shape}";
            }
            return new DatasetSplits(
                new ImageDataset($"{name}/train", trainImages, trainLabels, shape, classes),
                new ImageDataset($"{name}/test", testImages, testLabels, shape, classes),
                note);
        }
        catch
        {
            foreach (var tensor in new[] { trainImages, trainLabels, testImages, testLabels }) tensor?.Dispose();
            throw;
        }
    }

    /// <summary>[N, H·W] images stored as <paramref name="stored"/> (H×W) → [N, W·H], each transposed; frees the input.</summary>
    static Tensor Transposed(Tensor images, ImageShape stored)
    {
        using var scope = NewDisposeScope();
        using (images)
            return images.view(images.shape[0], stored.Channels, stored.Height, stored.Width).transpose(2, 3)
                .reshape(images.shape[0], -1).MoveToOuterDisposeScope();
    }

    static void RequireExamples(Tensor images, string path)
    {
        if (images.shape[0] == 0) throw new DataFormatException(path, "the file holds no images; each split needs at least one example.");
    }

    static DatasetUnavailableException Unavailable(string name, string directory, IReadOnlyList<DownloadSource> sources, string reason)
    {
        string newLine = Environment.NewLine;
        string files = string.Join(", ", MnistFormat.GzipFileNames);
        string debian = name == FashionMnist
            ? $"{newLine}On Debian/Ubuntu, `apt-get install dataset-fashion-mnist` installs them in {DebianFashionMnistDirectory}."
            : "";
        string message =
            $"Dataset '{name}' is not available. It needs four files, gzipped or not: {files}.{newLine}" +
            $"They are not all in {directory}, and they could not be downloaded: {reason}{newLine}" +
            $"Put the four files in {directory}, or download them from:" +
            string.Concat(sources.Select(s => $"{newLine}    {s.BaseUri}")) + newLine +
            $"or pass --data-dir pointing at a folder that holds a '{name}' folder with them." + debian;
        return new DatasetUnavailableException(name, message);
    }
}
