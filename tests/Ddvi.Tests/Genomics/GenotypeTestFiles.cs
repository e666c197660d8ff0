using System.IO.Compression;
using System.Text;
using Ddvi.Experiments.Genomics;

namespace Ddvi.Tests.Genomics;

/// <summary>Genotype files made by the tests, and the project's shared real genotype data.</summary>
internal static class GenotypeTestFiles
{
    /// <summary>A VCF text: the fileformat line, a <c>#CHROM</c> line with <paramref name="samples"/>, then the records.</summary>
    public static string Vcf(string[] samples, params string[] records) =>
        "##fileformat=VCFv4.2\n##source=Ddvi.Tests\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + string.Join('\t', samples) + "\n" +
        string.Concat(records.Select(r => r + "\n"));

    /// <summary>A record from space-separated fields (easier to read in a test), written tab-separated.</summary>
    public static string Record(string fields) => fields.Replace(' ', '\t');

    /// <summary>Writes <paramref name="text"/> plain, gzip-compressed as one member, or as BGZF: <paramref name="members"/>
    /// gzip members with the <c>BC</c> extra field, split at arbitrary byte positions, then the empty end-of-file block.</summary>
    public static string Write(string path, string text, bool gzip = false, int members = 1)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        if (!gzip)
        {
            File.WriteAllBytes(path, bytes);
            return path;
        }
        using var output = File.Create(path);
        if (members == 1)
        {
            using var single = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true);
            single.Write(bytes);
            return path;
        }
        int size = (bytes.Length + members - 1) / members;
        for (int start = 0; start < bytes.Length; start += size) output.Write(BgzfBlock(bytes.AsSpan(start, Math.Min(size, bytes.Length - start))));
        output.Write(BgzfBlock([]));
        return path;
    }

    /// <summary>One BGZF member: gzip header with extra subfield BC = block size − 1, raw deflate data, CRC-32, size.</summary>
    public static byte[] BgzfBlock(ReadOnlySpan<byte> content)
    {
        using var deflated = new MemoryStream();
        using (var deflate = new DeflateStream(deflated, CompressionLevel.Fastest, leaveOpen: true)) deflate.Write(content);
        // An empty stream still needs its final (empty) deflate block, 03 00, as in BGZF's end-of-file block.
        var data = content.IsEmpty ? [3, 0] : deflated.ToArray();
        var block = new byte[18 + data.Length + 8];
        byte[] header = [0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, (byte)'B', (byte)'C', 2, 0];
        header.CopyTo(block, 0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(block.AsSpan(16), (ushort)(block.Length - 1));
        data.CopyTo(block, 18);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(18 + data.Length), Crc32(content));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(22 + data.Length), (uint)content.Length);
        return block;
    }

    /// <summary>CRC-32 as gzip uses it (reflected polynomial 0xEDB88320), bit by bit.</summary>
    static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>A PLINK fileset written by <see cref="PlinkWriter"/> from a dense [sites][samples] matrix.</summary>
    public static string WritePlink(string prefix, string[] samples, float[][] dosages, string chrom = "1")
    {
        var sites = dosages.Select((_, j) => new GenotypeSite(chrom, 100 * (j + 1), $"rs{j + 1}", "A", "G")).ToArray();
        var block = new GenotypeBlock(samples.Length, dosages.Length, dosages.SelectMany(d => d).ToArray(), sites);
        PlinkWriter.Write(prefix, samples, [block]);
        return prefix;
    }

    /// <summary>Every block of a source joined: [columns][samples] and the sites.</summary>
    public static (float[][] Columns, List<GenotypeSite> Sites) ReadAll(IGenotypeSource source, int maxColumns = 4096)
    {
        var columns = new List<float[]>();
        var sites = new List<GenotypeSite>();
        foreach (var block in source.ReadBlocks(maxColumns))
        {
            Assert.True(block.Columns <= maxColumns);
            for (int j = 0; j < block.Columns; j++) columns.Add(block.Column(j).ToArray());
            sites.AddRange(block.Sites);
        }
        return ([.. columns], sites);
    }

    /// <summary>
    /// The shared real genotype data (fixtures/, hapmap-sim-chr10/, hgdp-microsatellites/; README in each):
    /// $DDVI_GENOTYPES_DATA, else <c>../shared/datasets</c> beside the repository, else /work/shared/datasets.
    /// </summary>
    public static string Shared(string relative) => Path.Combine(FindShared(out var candidates)
        ?? throw new InvalidOperationException("the shared genotype data are not in any of: " + string.Join(", ", candidates) +
                                               "; set DDVI_GENOTYPES_DATA to the datasets folder"), relative);

    /// <summary>The shared datasets folder, or null; <paramref name="candidates"/> lists where it was looked for.</summary>
    public static string? FindShared(out List<string> candidates)
    {
        candidates = [];
        if (Environment.GetEnvironmentVariable("DDVI_GENOTYPES_DATA") is { Length: > 0 } fromEnvironment) candidates.Add(fromEnvironment);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ddvi.slnx")))
            {
                candidates.Add(Path.Combine(dir.FullName, "..", "shared", "datasets"));
                break;
            }
        candidates.Add("/work/shared/datasets");
        return candidates.FirstOrDefault(c => File.Exists(Path.Combine(c, "fixtures", "sample.bed")));
    }
}

/// <summary>
/// A fact that reads the shared real genotype data: skipped, with the places looked at as the reason, on a machine that
/// does not have the project's shared datasets (the generated-file tests run everywhere). `.ci/run` finds the folder
/// and sets DDVI_GENOTYPES_DATA.
/// </summary>
public sealed class SharedGenotypesFactAttribute : FactAttribute
{
    public SharedGenotypesFactAttribute()
    {
        if (GenotypeTestFiles.FindShared(out var candidates) is null)
            Skip = "the shared genotype data are not on this machine (looked in " + string.Join(", ", candidates) + "; set DDVI_GENOTYPES_DATA)";
    }
}
