using System.Formats.Tar;
using System.IO.Compression;
using Ddvi.Data;

namespace Ddvi.Tests.Data;

/// <summary>CIFAR-10 binary batches made by the tests, and the shared real subset.</summary>
internal static class CifarTestFiles
{
    /// <summary><paramref name="count"/> records: record i has label (i + seed) mod 10 and pixel j = (7i + 3j + seed) mod 256.</summary>
    public static byte[] Batch(int count, int seed)
    {
        var bytes = new byte[count * CifarBinary.RecordSize];
        for (int i = 0; i < count; i++)
        {
            int offset = i * CifarBinary.RecordSize;
            bytes[offset] = (byte)((i + seed) % 10);
            for (int j = 0; j < CifarBinary.PixelsPerImage; j++) bytes[offset + 1 + j] = (byte)((7 * i + 3 * j + seed) % 256);
        }
        return bytes;
    }

    /// <summary>Writes <c>cifar-10-batches-bin/</c> under <paramref name="root"/> with the given training batches (1-based
    /// numbers) of <paramref name="count"/> records each, a test batch and the meta file; returns the batch folder.</summary>
    public static string WriteFolder(string root, int count, params int[] trainBatches)
    {
        string folder = Path.Combine(root, CifarBinary.BatchFolderName);
        Directory.CreateDirectory(folder);
        foreach (int n in trainBatches) File.WriteAllBytes(Path.Combine(folder, $"data_batch_{n}.bin"), Batch(count, seed: n));
        File.WriteAllBytes(Path.Combine(folder, CifarBinary.TestBatchName), Batch(count, seed: 0));
        File.WriteAllText(Path.Combine(folder, CifarBinary.MetaName), "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n");
        return folder;
    }

    /// <summary>The official archive's layout as a .tar.gz of generated batches of <paramref name="count"/> records.</summary>
    public static byte[] Archive(int count)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            void Add(string name, byte[] content)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, $"{CifarBinary.BatchFolderName}/{name}") { DataStream = new MemoryStream(content) };
                tar.WriteEntry(entry);
            }
            for (int n = 1; n <= 5; n++) Add($"data_batch_{n}.bin", Batch(count, seed: n));
            Add(CifarBinary.TestBatchName, Batch(count, seed: 0));
            Add(CifarBinary.MetaName, "airplane\n"u8.ToArray());
            Add("readme.html", "<p>not taken</p>"u8.ToArray());
        }
        return output.ToArray();
    }

    /// <summary>
    /// The real 10,000 + 10,000 image subset in the official layout (the project's shared datasets, README there):
    /// $DDVI_CIFAR10_SUBSET, else <c>../shared/datasets/cifar-10-subset</c> beside the repository, else
    /// /work/shared/datasets/cifar-10-subset. Missing, the test fails naming these places.
    /// </summary>
    public static string SharedSubset() => FindSharedSubset(out var candidates)
        ?? throw new InvalidOperationException("the shared CIFAR-10 subset is not in any of: " + string.Join(", ", candidates) +
                                               "; set DDVI_CIFAR10_SUBSET to its folder");

    /// <summary>The shared subset's folder, or null; <paramref name="candidates"/> lists where it was looked for.</summary>
    public static string? FindSharedSubset(out List<string> candidates)
    {
        candidates = [];
        if (Environment.GetEnvironmentVariable("DDVI_CIFAR10_SUBSET") is { Length: > 0 } fromEnvironment) candidates.Add(fromEnvironment);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ddvi.slnx")))
            {
                candidates.Add(Path.Combine(dir.FullName, "..", "shared", "datasets", "cifar-10-subset"));
                break;
            }
        candidates.Add("/work/shared/datasets/cifar-10-subset");
        return candidates.FirstOrDefault(c => CifarBinary.Find(c) is not null);
    }

    /// <summary>A CIFAR folder under <paramref name="root"/> holding the first <paramref name="train"/> training and
    /// <paramref name="test"/> test records of the shared subset (real images, few of them, for short runs).</summary>
    public static string SharedSubsetSlice(string root, int train, int test)
    {
        var files = CifarBinary.Find(SharedSubset())!;
        string folder = Path.Combine(root, CifarBinary.BatchFolderName);
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "data_batch_1.bin"), File.ReadAllBytes(files.TrainBatches[0]).AsSpan(0, train * CifarBinary.RecordSize).ToArray());
        File.WriteAllBytes(Path.Combine(folder, CifarBinary.TestBatchName), File.ReadAllBytes(files.TestBatch).AsSpan(0, test * CifarBinary.RecordSize).ToArray());
        return root;
    }
}

/// <summary>
/// A fact that reads the shared real CIFAR-10 subset: skipped, with the places looked at as the reason, on a machine
/// that does not have the project's shared datasets (the generated-file tests run everywhere). `.ci/run` finds the
/// subset and sets DDVI_CIFAR10_SUBSET.
/// </summary>
public sealed class SharedCifarFactAttribute : FactAttribute
{
    public SharedCifarFactAttribute()
    {
        if (CifarTestFiles.FindSharedSubset(out var candidates) is null)
            Skip = "the shared CIFAR-10 subset is not on this machine (looked in " + string.Join(", ", candidates) + "; set DDVI_CIFAR10_SUBSET)";
    }
}

/// <summary>The theory form of <see cref="SharedCifarFactAttribute"/>.</summary>
public sealed class SharedCifarTheoryAttribute : TheoryAttribute
{
    public SharedCifarTheoryAttribute()
    {
        if (CifarTestFiles.FindSharedSubset(out var candidates) is null)
            Skip = "the shared CIFAR-10 subset is not on this machine (looked in " + string.Join(", ", candidates) + "; set DDVI_CIFAR10_SUBSET)";
    }
}
