namespace Ddvi.Data;

/// <summary>
/// A data file that cannot be read as the format it should have: the message names the file and says what was
/// found and what was expected.
/// </summary>
public sealed class DataFormatException : Exception
{
    public DataFormatException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        FilePath = path;
    }

    /// <summary>The file that could not be read.</summary>
    public string FilePath { get; }
}
