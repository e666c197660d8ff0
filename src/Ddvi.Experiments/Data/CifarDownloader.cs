using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace Ddvi.Data;

/// <summary>Where the CIFAR-10 binary archive can be fetched from, and the MD5 it must have.</summary>
/// <param name="Address">The archive's URL.</param>
/// <param name="Md5">Its MD5, hexadecimal.</param>
public sealed record ArchiveSource(Uri Address, string Md5)
{
    /// <summary>
    /// The official archive on the dataset author's page (https://www.cs.toronto.edu/~kriz/cifar.html: "CIFAR-10 binary
    /// version (suitable for C programs)", 162 MB, with this MD5).
    /// </summary>
    public static ArchiveSource OfficialCifar10 { get; } =
        new(new Uri("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"), "c32a1d4ab5d03f1284b67883e8d87530");
}

/// <summary>
/// Fetches CIFAR-10's binary archive (<c>cifar-10-binary.tar.gz</c>), checks its MD5 while it streams to a temporary
/// file, and unpacks the six files of <c>cifar-10-batches-bin/</c> into a temporary folder that is renamed into place, so
/// that a failed, rejected or interrupted download never leaves a partial dataset behind. Only regular files with the
/// layout's own names are taken from the archive.
/// </summary>
internal static class CifarDownloader
{
    /// <summary>
    /// Downloads and unpacks the archive into <paramref name="directory"/>/cifar-10-batches-bin. Returns why it failed, or
    /// null on success.
    /// </summary>
    public static string? Download(string directory, ArchiveSource source, TimeSpan timeout, Action<string>? log)
    {
        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot create {directory}: {e.Message}";
        }

        string archive = Path.Combine(directory, $"cifar-10-binary.{Guid.NewGuid():N}.partial");
        string unpacked = Path.Combine(directory, $"{CifarBinary.BatchFolderName}.{Guid.NewGuid():N}.partial");
        try
        {
            log?.Invoke($"downloading {source.Address}");
            string? failure = Fetch(source, archive, timeout);
            if (failure is not null) return $"{source.Address}: {failure}";
            failure = Unpack(archive, unpacked);
            if (failure is not null) return $"{source.Address}: {failure}";
            string target = Path.Combine(directory, CifarBinary.BatchFolderName);
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
            Directory.Move(unpacked, target);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot write into {directory}: {e.Message}";
        }
        finally
        {
            if (File.Exists(archive)) File.Delete(archive);
            if (Directory.Exists(unpacked)) Directory.Delete(unpacked, recursive: true);
        }
    }

    static string? Fetch(ArchiveSource source, string destination, TimeSpan timeout)
    {
        using var client = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, source.Address);
            using var response = client.Send(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            if (!response.IsSuccessStatusCode) return $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
            using var body = response.Content.ReadAsStream(cancel.Token);
            using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
            using (var file = File.Create(destination))
            {
                var buffer = new byte[1 << 20];
                int read;
                while ((read = body.ReadAsync(buffer, cancel.Token).AsTask().GetAwaiter().GetResult()) > 0)
                {
                    md5.AppendData(buffer, 0, read);
                    file.Write(buffer, 0, read);
                }
            }
            string actual = Convert.ToHexStringLower(md5.GetHashAndReset());
            if (!string.Equals(actual, source.Md5, StringComparison.OrdinalIgnoreCase))
                return $"checksum mismatch: MD5 {actual}, expected {source.Md5.ToLowerInvariant()}; the file was discarded.";
            return null;
        }
        catch (OperationCanceledException)
        {
            return $"timed out after {timeout.TotalSeconds:0} s";
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return e.InnerException is { } inner && !e.Message.Contains(inner.Message) ? $"{e.Message} ({inner.Message})" : e.Message;
        }
    }

    /// <summary>Takes the layout's files out of the gzipped tar into <paramref name="folder"/>; null when all six came out.</summary>
    static string? Unpack(string archive, string folder)
    {
        Directory.CreateDirectory(folder);
        var wanted = new HashSet<string>(CifarBinary.FileNames, StringComparer.Ordinal);
        var found = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            using var file = File.OpenRead(archive);
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            using var reader = new TarReader(gzip);
            while (reader.GetNextEntry() is { } entry)
            {
                string[] parts = entry.Name.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries);
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || parts.Length != 2
                    || parts[0] != CifarBinary.BatchFolderName || !wanted.Contains(parts[1]))
                    continue;
                entry.ExtractToFile(Path.Combine(folder, parts[1]), overwrite: true);
                found.Add(parts[1]);
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException)
        {
            return $"the archive passed its checksum but could not be unpacked: {e.Message}";
        }
        var missing = CifarBinary.FileNames.Where(name => !found.Contains(name)).ToList();
        return missing.Count == 0 ? null
            : $"the archive lacks {string.Join(", ", missing.Select(m => $"{CifarBinary.BatchFolderName}/{m}"))}";
    }
}
