using System.Security.Cryptography;

namespace Ddvi.Data;

/// <summary>
/// Fetches the missing <c>.gz</c> files of an MNIST-format dataset from its mirrors, checks each against its MD5 and
/// writes it atomically (a temporary file in the same folder, renamed into place), so that a failed or rejected
/// download never leaves a partial file behind.
/// </summary>
internal static class MnistDownloader
{
    /// <summary>
    /// Downloads every one of the four files that <paramref name="directory"/> lacks (raw or gzipped). Returns the
    /// reason of the first file that no source could deliver, or null when all are present now.
    /// </summary>
    public static string? DownloadMissing(string directory, IReadOnlyList<DownloadSource> sources, TimeSpan timeout, Action<string>? log)
    {
        var missing = MnistFormat.FileNames.Where(name => MnistFormat.Find(directory, name) is null).Select(name => name + ".gz").ToList();
        if (missing.Count == 0) return null;
        if (sources.Count == 0) return "no download source is configured.";

        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot create {directory}: {e.Message}";
        }

        using var client = new HttpClient { Timeout = timeout };
        foreach (string fileName in missing)
        {
            var failures = new List<string>();
            bool done = false;
            foreach (var source in sources)
            {
                var address = source.AddressOf(fileName);
                log?.Invoke($"downloading {address}");
                string? failure = TryDownload(client, address, source, fileName, Path.Combine(directory, fileName));
                if (failure is null)
                {
                    done = true;
                    break;
                }
                failures.Add($"{address}: {failure}");
            }
            if (!done) return $"no source could deliver {fileName}:" + string.Concat(failures.Select(f => Environment.NewLine + "    " + f));
        }
        return null;
    }

    static string? TryDownload(HttpClient client, Uri address, DownloadSource source, string fileName, string destination)
    {
        if (!source.Md5ByFileName.TryGetValue(fileName, out string? expectedMd5))
            return $"the source lists no MD5 checksum for {fileName}.";

        byte[] content;
        try
        {
            // The default completion option buffers the whole body, so the client's timeout bounds the full transfer.
            using var request = new HttpRequestMessage(HttpMethod.Get, address);
            using var response = client.Send(request);
            if (!response.IsSuccessStatusCode) return $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
            using var body = response.Content.ReadAsStream();
            using var buffer = new MemoryStream();
            body.CopyTo(buffer);
            content = buffer.ToArray();
        }
        catch (TaskCanceledException)
        {
            return $"timed out after {client.Timeout.TotalSeconds:0} s";
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return e.InnerException is { } inner && !e.Message.Contains(inner.Message) ? $"{e.Message} ({inner.Message})" : e.Message;
        }

        string actualMd5 = Convert.ToHexStringLower(MD5.HashData(content));
        if (!string.Equals(actualMd5, expectedMd5, StringComparison.OrdinalIgnoreCase))
            return $"checksum mismatch: MD5 {actualMd5}, expected {expectedMd5.ToLowerInvariant()}; the file was discarded.";

        string temporary = $"{destination}.{Guid.NewGuid():N}.partial";
        try
        {
            File.WriteAllBytes(temporary, content);
            File.Move(temporary, destination, overwrite: true);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot write {destination}: {e.Message}";
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }
}
