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
}

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
