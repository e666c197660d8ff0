namespace Ddvi.Plotting;

/// <summary>Checks plot output paths before any drawing work is done.</summary>
internal static class PngPath
{
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
