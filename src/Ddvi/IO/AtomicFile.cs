using System.Text;

namespace Ddvi.IO;

/// <summary>
/// Writes files so that a reader (or a crash) never sees half a file: the content goes to a temporary
/// file in the same folder, which then replaces the target with a rename.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(folder);
        string temporary = Path.Combine(folder, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    /// <summary>
    /// Deletes the temporary files that interrupted writes left under <paramref name="folder"/> (and its subfolders):
    /// those of processes that are no longer running. Returns how many files and bytes were removed.
    /// </summary>
    public static (int Files, long Bytes) RemoveOrphans(string folder)
    {
        if (!Directory.Exists(folder)) return (0, 0);
        int files = 0;
        long bytes = 0;
        foreach (var path in Directory.EnumerateFiles(folder, ".*.tmp", SearchOption.AllDirectories))
        {
            // .NAME.PID.GUID.tmp: the writer's process id is the second field from the end.
            var parts = Path.GetFileName(path).Split('.');
            if (parts.Length < 5 || !int.TryParse(parts[^3], out int pid) || IsRunning(pid)) continue;
            try
            {
                long length = new FileInfo(path).Length;
                File.Delete(path);
                files++;
                bytes += length;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Left for the next start; never a reason to stop a run.
            }
        }
        return (files, bytes);
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, stream => stream.Write(bytes));

    public static void WriteAllText(string path, string text) =>
        Write(path, stream =>
        {
            var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
            stream.Write(bytes);
        });
}
