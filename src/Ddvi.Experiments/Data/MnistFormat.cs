using System.Text.RegularExpressions;

namespace Ddvi.Data;

/// <summary>
/// The four files of an MNIST-format dataset (MNIST, Fashion-MNIST), each an IDX file, gzipped (<c>.gz</c>) or raw.
/// </summary>
public static class MnistFormat
{
    public const string TrainImages = "train-images-idx3-ubyte";
    public const string TrainLabels = "train-labels-idx1-ubyte";
    public const string TestImages = "t10k-images-idx3-ubyte";
    public const string TestLabels = "t10k-labels-idx1-ubyte";

    /// <summary>The four base names, without <c>.gz</c>, in the order train images, train labels, test images, test labels.</summary>
    public static IReadOnlyList<string> FileNames { get; } = [TrainImages, TrainLabels, TestImages, TestLabels];

    /// <summary>The names the mirrors serve: the base names with <c>.gz</c>.</summary>
    public static IReadOnlyList<string> GzipFileNames { get; } = FileNames.Select(name => name + ".gz").ToArray();

    /// <summary>
    /// The path of <paramref name="baseName"/> in <paramref name="directory"/>: the raw file when present, else the
    /// <c>.gz</c> file when present, else null.
    /// </summary>
    public static string? Find(string directory, string baseName)
    {
        string raw = Path.Combine(directory, baseName);
        if (File.Exists(raw)) return raw;
        string gzip = raw + ".gz";
        return File.Exists(gzip) ? gzip : null;
    }

    /// <summary>True when all four files are in <paramref name="directory"/>.</summary>
    public static bool IsComplete(string directory) => FileNames.All(name => Find(directory, name) is not null);

    /// <summary>The four files under their standard names in <paramref name="directory"/>, or null when one is missing.</summary>
    public static MnistFiles? Standard(string directory) =>
        IsComplete(directory)
            ? new MnistFiles(Find(directory, TrainImages)!, Find(directory, TrainLabels)!, Find(directory, TestImages)!, Find(directory, TestLabels)!)
            : null;

    // How other MNIST-format sets name the same files: a prefix ("emnist-letters-", "kmnist-"), "test" for "t10k",
    // and '.' or '_' for '-' ("train-images.idx3-ubyte" in some copies).
    static readonly IReadOnlyDictionary<string, Regex> NamePatterns = new Dictionary<string, Regex>
    {
        [TrainImages] = Pattern("train", "images", 3),
        [TrainLabels] = Pattern("train", "labels", 1),
        [TestImages] = Pattern("(t10k|test)", "images", 3),
        [TestLabels] = Pattern("(t10k|test)", "labels", 1),
    };

    static Regex Pattern(string split, string content, int rank) =>
        new($@"^(.*[-_.])?{split}[-_.]{content}[-_.]idx{rank}[-_.]ubyte(\.gz)?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    /// <summary>
    /// The four files of a folder dataset: under their standard names, or else under names like them
    /// (<c>emnist-letters-test-images-idx3-ubyte.gz</c>, <c>train-images.idx3-ubyte</c>), each role matched by exactly one
    /// file (a raw file and its <c>.gz</c> count as one, the raw file read). Otherwise null and what is wrong: the roles
    /// no file matches, or those several files match.
    /// </summary>
    public static (MnistFiles? Files, string? Problem) Match(string directory)
    {
        if (Standard(directory) is { } standard) return (standard, null);
        var names = Directory.EnumerateFiles(directory).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();
        var found = new Dictionary<string, string>();
        var missing = new List<string>();
        var ambiguous = new List<string>();
        foreach (var role in FileNames)
        {
            // Group a raw file with its .gz copy; the raw one is read, as Find does.
            var candidates = names.Where(name => NamePatterns[role].IsMatch(name))
                .GroupBy(name => name.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? name[..^3] : name)
                .Select(group => group.OrderBy(name => name.Length).First())
                .ToList();
            if (candidates.Count == 1) found[role] = Path.Combine(directory, candidates[0]);
            else if (candidates.Count == 0) missing.Add(role);
            else ambiguous.Add($"{role}: {string.Join(", ", candidates)}");
        }
        if (missing.Count > 0)
            return (null, $"lacks {string.Join(", ", missing)} (each raw or .gz, also with a prefix such as 'emnist-letters-' or 'test' for 't10k')");
        if (ambiguous.Count > 0)
            return (null, $"has several files for {string.Join("; ", ambiguous)}; keep one dataset per folder");
        bool transposed = IsEmnist(found[TrainImages]) && IsEmnist(found[TestImages]);
        return (new MnistFiles(found[TrainImages], found[TrainLabels], found[TestImages], found[TestLabels], transposed), null);
    }

    // EMNIST's files (emnist-letters-train-images-idx3-ubyte.gz, …) hold every image transposed, column by column.
    static bool IsEmnist(string path) => Path.GetFileName(path).StartsWith("emnist-", StringComparison.OrdinalIgnoreCase);
}

/// <summary>The paths of one MNIST-format dataset's four files.</summary>
/// <param name="StoredTransposed">The images are stored column by column, as EMNIST stores them: each file's H×W
/// arrays are the W×H images transposed.</param>
public sealed record MnistFiles(string TrainImages, string TrainLabels, string TestImages, string TestLabels, bool StoredTransposed = false);

/// <summary>
/// A mirror of an MNIST-format dataset: the base address the <c>.gz</c> files are served under and the MD5
/// checksum (lower-case hex) each downloaded file must have.
/// </summary>
public sealed record DownloadSource(Uri BaseUri, IReadOnlyDictionary<string, string> Md5ByFileName)
{
    static readonly IReadOnlyDictionary<string, string> MnistMd5 = new Dictionary<string, string>
    {
        ["train-images-idx3-ubyte.gz"] = "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        ["train-labels-idx1-ubyte.gz"] = "d53e105ee54ea40749a09fcbcd1e9432",
        ["t10k-images-idx3-ubyte.gz"] = "9fb629c4189551a2d022fa330f9573f3",
        ["t10k-labels-idx1-ubyte.gz"] = "ec29112dd5afa0611ce80d1b7f02629c",
    };

    static readonly IReadOnlyDictionary<string, string> FashionMnistMd5 = new Dictionary<string, string>
    {
        ["train-images-idx3-ubyte.gz"] = "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        ["train-labels-idx1-ubyte.gz"] = "25c81989df183df01b3e8a0aad5dffbe",
        ["t10k-images-idx3-ubyte.gz"] = "bef4ecab320f06d8554ea6380940ec79",
        ["t10k-labels-idx1-ubyte.gz"] = "bb300cfdad3c16e7a12a480ee83cd310",
    };

    /// <summary>MNIST's standard mirrors, tried in order.</summary>
    public static IReadOnlyList<DownloadSource> MnistMirrors { get; } =
    [
        new(new Uri("https://ossci-datasets.s3.amazonaws.com/mnist/"), MnistMd5),
        new(new Uri("https://storage.googleapis.com/cvdf-datasets/mnist/"), MnistMd5),
    ];

    /// <summary>Zalando's Fashion-MNIST mirror.</summary>
    public static IReadOnlyList<DownloadSource> FashionMnistMirrors { get; } =
    [
        new(new Uri("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"), FashionMnistMd5),
    ];

    /// <summary>The address of <paramref name="fileName"/> on this mirror.</summary>
    public Uri AddressOf(string fileName) => new(BaseUri.AbsoluteUri.EndsWith('/') ? BaseUri : new Uri(BaseUri.AbsoluteUri + "/"), fileName);
}

/// <summary>
/// A named dataset that is neither on disk nor downloadable now; the message says which files are needed, where
/// to put them, where to get them and how to point Ddvi at another folder.
/// </summary>
public sealed class DatasetUnavailableException : Exception
{
    public DatasetUnavailableException(string datasetName, string message, Exception? inner = null)
        : base(message, inner)
    {
        DatasetName = datasetName;
    }

    public string DatasetName { get; }
}
