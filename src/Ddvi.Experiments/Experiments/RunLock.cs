using System.Diagnostics;
using System.Globalization;
using Ddvi.IO;

namespace Ddvi.Experiments;

/// <summary>A run folder (or comparison folder) is being used by another process; nothing was written.</summary>
public sealed class RunFolderInUseException(string message) : InvalidOperationException(message);

/// <summary>
/// Holds a folder for one process: an exclusive OS lock on <c>FOLDER/.lock</c> (an advisory <c>flock</c> on Linux and
/// macOS, a share-none open on Windows), which the OS releases when the process ends however it ends, so a killed run
/// never leaves a stale lock. Beside it <c>.lock.owner</c> names the holder (process id, host, command, start time) for
/// the error a second process gets.
/// </summary>
public sealed class RunLock : IDisposable
{
    private readonly FileStream _stream;
    private readonly string _ownerFile;

    private RunLock(FileStream stream, string ownerFile)
    {
        _stream = stream;
        _ownerFile = ownerFile;
    }

    /// <summary>The folder held.</summary>
    public required string Folder { get; init; }

    /// <summary>
    /// Creates <paramref name="folder"/> if needed and takes its lock, or throws <see cref="RunFolderInUseException"/>
    /// naming the process that holds it. <paramref name="option"/> names the option the folder came from in errors.
    /// </summary>
    public static RunLock Acquire(string folder, string option = "--out")
    {
        string root = Path.GetFullPath(folder);
        RunFolderPath.Create(root, option);
        string lockFile = Path.Combine(root, ".lock");
        string ownerFile = Path.Combine(root, ".lock.owner");
        FileStream stream;
        try
        {
            stream = new FileStream(lockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new RunFolderInUseException($"{root} is in use by another Ddvi process ({Holder(ownerFile)}): nothing was written. " +
                                              "Wait for it to finish or stop it, or choose another " + option + ".");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ArgumentException($"{option} {root}: cannot write in this folder ({e.Message}).", e);
        }
        try
        {
            string command = string.Join(' ', Environment.GetCommandLineArgs().Skip(1));
            AtomicFile.WriteAllText(ownerFile, string.Create(CultureInfo.InvariantCulture,
                $"process {Environment.ProcessId} on {Environment.MachineName}, started {DateTime.UtcNow:yyyy-MM-ddTHH:mm:ssZ}: {command}\n"));
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        return new RunLock(stream, ownerFile) { Folder = root };
    }

    /// <summary>What <c>.lock.owner</c> says of the holder, or that it does not say yet.</summary>
    private static string Holder(string ownerFile)
    {
        try
        {
            string text = File.ReadAllText(ownerFile).Trim();
            return text.Length > 0 ? text : "its process id is not recorded yet";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "its process id is not recorded yet";
        }
    }

    public void Dispose()
    {
        // The owner file goes first, while the lock is still held, so that it never names a process that let go.
        try
        {
            File.Delete(_ownerFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Debug.WriteLine($"could not delete {_ownerFile}: {e.Message}");
        }
        _stream.Dispose();
    }
}

/// <summary>Checks and creates the folder an option names (<c>--out</c>), with errors that say what it must be.</summary>
public static class RunFolderPath
{
    public static void Create(string folder, string option)
    {
        string root = Path.GetFullPath(folder);
        if (File.Exists(root))
            throw new ArgumentException($"{option} {root} is a file: {option} must name a folder (created if it does not exist).");
        try
        {
            Directory.CreateDirectory(root);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new ArgumentException($"{option} {root}: cannot create this folder ({e.Message}). {option} must name a folder you can write, " +
                                        "on a path whose parents are folders.", e);
        }
    }
}
