namespace Ddvi.Plotting;

/// <summary>
/// Writes a file so readers see either the old file or the complete new one: the bytes go to a temporary
/// file in the same folder (same file system, so the move is a rename), which then replaces the target.
/// </summary>
internal static class AtomicFile
{
    public static void WriteAllBytes(string path, byte[] bytes)
    {
        string fullPath = ValidatedFullPath(path);
        string folder = Path.GetDirectoryName(fullPath)!;
        Directory.CreateDirectory(folder);
        string temporary = Path.Combine(folder, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, fullPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    /// <summary>The absolute path of a PNG output; throws on an empty path, a folder, or another extension.</summary>
    public static string ValidatedFullPath(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new ArgumentException("Plot output path is empty.", nameof(path));
        string fullPath = Path.GetFullPath(path);
        if (!string.Equals(Path.GetExtension(fullPath), ".png", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"Plot output '{path}' must be a .png file.", nameof(path));
        if (Directory.Exists(fullPath))
            throw new ArgumentException($"Plot output '{path}' is a folder, expected a .png file path.", nameof(path));
        return fullPath;
    }
}
