using Ddvi.FastPaths;
using Ddvi.IO;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Ddvi.Training;

/// <summary>The trainer's own state in a checkpoint: where it stopped and the loss history so far.</summary>
/// <param name="Partial">Where a run stopped inside an epoch (a graceful stop), or null at an epoch's end.</param>
public sealed record TrainerState(string Stage, int EpochsCompleted, double SecondsElapsed, IReadOnlyList<EpochRecord> History,
    PartialEpoch? Partial = null);

/// <summary>
/// An epoch a stop interrupted: its completed steps, its seconds so far, the running loss sums and counts, and the
/// state of the epoch's generator and of libtorch's global CPU generator after the last completed step, so that the
/// epoch continues exactly where it stopped.
/// </summary>
/// <param name="Threads">libtorch's CPU thread count in the epoch (a resumed epoch continues with it; 0 = not recorded).</param>
public sealed record PartialEpoch(int Steps, double Seconds, IReadOnlyDictionary<string, double> LossSums,
    IReadOnlyDictionary<string, int> LossCounts, byte[] GeneratorState, byte[] GlobalGeneratorState, int Threads = 0);

/// <summary>
/// A training checkpoint: model weights, each phase's optimiser state, the trainer's state and the
/// resolved run configuration, in one file written atomically. File layout (little-endian):
/// magic "DDVICKP2", trainer state (JSON), configuration (JSON), model state dict, then a count and
/// (phase name, optimiser state) pairs, each state length-prefixed, and last the SHA-256 of every byte before it.
/// Files of the first layout ("DDVICKP1", no checksum) are still read.
/// </summary>
public static class Checkpoint
{
    private const string Magic = "DDVICKP2";
    private const string MagicWithoutChecksum = "DDVICKP1";
    private const int ChecksumLength = 32;
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };
    private static readonly Regex NamePattern = new(@"^epoch-(\d+)(?:-step-(\d+))?\.ckpt$", RegexOptions.CultureInvariant);

    /// <summary>The file of a checkpoint after <paramref name="epochsCompleted"/> epochs and, inside the next one,
    /// <paramref name="steps"/> steps (a stop mid-epoch).</summary>
    public static string FileName(int epochsCompleted, int steps = 0) =>
        steps == 0 ? $"epoch-{epochsCompleted:D4}.ckpt" : $"epoch-{epochsCompleted:D4}-step-{steps:D6}.ckpt";

    /// <summary>The checkpoints in <paramref name="folder"/>, oldest first, ordered by epochs and steps as numbers
    /// (not as text: epoch-10000 comes after epoch-9999).</summary>
    public static IReadOnlyList<string> List(string folder)
    {
        if (!Directory.Exists(folder)) return [];
        return Directory.EnumerateFiles(folder, "epoch-*.ckpt")
            .Select(path => (Path: path, Match: NamePattern.Match(Path.GetFileName(path))))
            .Where(f => f.Match.Success)
            .Select(f => (f.Path, Epochs: long.Parse(f.Match.Groups[1].Value, CultureInfo.InvariantCulture),
                Steps: f.Match.Groups[2].Success ? long.Parse(f.Match.Groups[2].Value, CultureInfo.InvariantCulture) : 0))
            .OrderBy(f => f.Epochs).ThenBy(f => f.Steps).ThenBy(f => f.Path, StringComparer.Ordinal)
            .Select(f => f.Path).ToList();
    }

    public static void Save(string path, nn.Module model, IReadOnlyDictionary<string, optim.Optimizer> optimizers,
        TrainerState state, string configurationJson)
    {
        AtomicFile.Write(path, file =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using (var stream = new HashingStream(file, hash))
            {
                using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
                WriteBody(writer, model, optimizers, state, configurationJson);
            }
            file.Write(hash.GetHashAndReset());
        });
    }

    private static void WriteBody(BinaryWriter writer, nn.Module model, IReadOnlyDictionary<string, optim.Optimizer> optimizers,
        TrainerState state, string configurationJson)
    {
        writer.Write(Magic);
        writer.Write(JsonSerializer.Serialize(state, Json));
        writer.Write(configurationJson);
        WriteLengthPrefixed(writer, w => model.save(w));
        writer.Write(optimizers.Count);
        foreach (var (name, optimizer) in optimizers.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            writer.Write(name);
            WriteLengthPrefixed(writer, w => ((TorchSharp.Modules.OptimizerHelper)optimizer).save_state_dict(w));
        }
        writer.Flush();
    }

    /// <summary>
    /// Checks a checkpoint without loading its tensors: the header, every length, and (for the current layout) the
    /// checksum over the whole file. Returns null when it is intact, else what is wrong with it.
    /// </summary>
    public static string? Problem(string path)
    {
        try
        {
            using var reader = Open(path);
            bool checksummed = VerifyChecksum(reader, path);
            ReadHeader(reader, path);
            long end = reader.BaseStream.Length - (checksummed ? ChecksumLength : 0);
            SkipLengthPrefixed(reader, path, end);
            int count = reader.ReadInt32();
            if (count < 0) throw new InvalidDataException($"{path}: corrupt checkpoint (negative optimiser count {count}).");
            for (int i = 0; i < count; i++)
            {
                reader.ReadString();
                SkipLengthPrefixed(reader, path, end);
            }
            if (reader.BaseStream.Position != end)
                throw new InvalidDataException($"{path}: corrupt checkpoint ({end - reader.BaseStream.Position} unexpected bytes at the end).");
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException or UnauthorizedAccessException
                                      or FormatException or OverflowException or ArgumentException)
        {
            return e is InvalidDataException or FileNotFoundException ? e.Message : $"{path}: unreadable checkpoint ({e.GetType().Name}: {e.Message})";
        }
    }

    /// <summary>
    /// The newest intact checkpoint in <paramref name="folder"/>, or null when there is none. Each newer damaged one
    /// is named through <paramref name="warn"/> and renamed to <c>NAME.damaged</c> beside it, so that it is neither
    /// used nor counted again and its bytes stay for inspection.
    /// </summary>
    public static string? LatestIntact(string folder, Action<string> warn)
    {
        foreach (var path in List(folder).Reverse())
        {
            if (Problem(path) is not { } problem) return path;
            string aside = path + ".damaged";
            try
            {
                File.Move(path, aside, overwrite: true);
                warn($"warning: {problem} It was moved aside to {Path.GetFileName(aside)}; using the previous checkpoint instead.");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                warn($"warning: {problem} (it could not be moved aside: {e.Message}); using the previous checkpoint instead.");
            }
        }
        return null;
    }

    /// <summary>Reads only the trainer state and configuration (cheap: no tensors are loaded).</summary>
    public static (TrainerState State, string ConfigurationJson) ReadHeader(string path)
    {
        using var reader = Open(path);
        return ReadHeader(reader, path);
    }

    /// <summary>Loads weights into <paramref name="model"/> and, when given, optimiser states by phase name.</summary>
    /// <remarks>The checksum is verified first; any damage is an <see cref="InvalidDataException"/> naming the file.</remarks>
    public static TrainerState Load(string path, nn.Module model, IReadOnlyDictionary<string, optim.Optimizer>? optimizers = null)
    {
        using var reader = Open(path);
        VerifyChecksum(reader, path);
        try
        {
            return LoadBody(reader, path, model, optimizers);
        }
        catch (Exception e) when (e is not InvalidDataException && e is not OutOfMemoryException)
        {
            // Files of the first layout have no checksum: their damage shows up here, as whatever libtorch or the reader threw.
            throw new InvalidDataException($"{path}: corrupt checkpoint ({e.GetType().Name}: {e.Message}).", e);
        }
    }

    private static TrainerState LoadBody(BinaryReader reader, string path, nn.Module model, IReadOnlyDictionary<string, optim.Optimizer>? optimizers)
    {
        var (state, _) = ReadHeader(reader, path);
        var modelBytes = ReadLengthPrefixed(reader, path);
        try
        {
            using var modelReader = new BinaryReader(new MemoryStream(modelBytes));
            LoadWeightsInPlace(model, modelReader);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: the checkpoint's weights do not fit this model ({e.Message}). Was it written by a run with another --model or network size?", e);
        }
        int count = reader.ReadInt32();
        for (int i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            var bytes = ReadLengthPrefixed(reader, path);
            if (optimizers is null) continue;
            if (!optimizers.TryGetValue(name, out var optimizer))
                throw new InvalidDataException($"{path}: checkpoint has optimiser state for phase '{name}', which this model does not have.");
            // Checkpoints written before FusedAdam hold the plain Adam's state under its own type name.
            if (optimizer is FusedAdam) bytes = FusedAdam.AdoptPlainAdamState(bytes);
            using var optimizerReader = new BinaryReader(new MemoryStream(bytes));
            ((TorchSharp.Modules.OptimizerHelper)optimizer).load_state_dict(optimizerReader);
        }
        return state;
    }

    /// <summary>
    /// Reads a state dict written by <c>Module.save</c> into the module's own parameters and buffers, in place.
    /// </summary>
    /// <remarks>
    /// TorchSharp's <c>Module.load</c> moves a GPU module to the CPU and back, which replaces every parameter object:
    /// the optimisers and training phases built before the load would then hold disposed tensors. Copying into the
    /// existing tensors keeps them valid on every device. The checks are <c>load</c>'s strict ones.
    /// </remarks>
    internal static void LoadWeightsInPlace(nn.Module model, BinaryReader reader)
    {
        var targets = model.state_dict();
        long entries = ReadLeb128(reader);
        if (entries != targets.Count)
            throw new ArgumentException($"the checkpoint holds {entries} weight tensors, the model has {targets.Count}");
        using var noGrad = no_grad();
        for (long i = 0; i < entries; i++)
        {
            string name = reader.ReadString();
            if (!targets.TryGetValue(name, out var target))
                throw new ArgumentException($"the checkpoint holds weights '{name}', which the model does not have");
            using var host = Tensor.Load(reader);
            if (host.dtype != target.dtype || !host.shape.SequenceEqual(target.shape))
                throw new ArgumentException($"weights '{name}' are {host.dtype} [{string.Join(", ", host.shape)}] in the checkpoint, " +
                                            $"{target.dtype} [{string.Join(", ", target.shape)}] in the model");
            target.copy_(host);
        }
    }

    // The entry count of Module.save: an unsigned LEB128 number (7 bits a byte, low bits first).
    private static long ReadLeb128(BinaryReader reader)
    {
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte next = reader.ReadByte();
            value |= (long)(next & 0x7F) << shift;
            if ((next & 0x80) == 0) return value;
        }
        throw new ArgumentException("the entry count of the weights is not a valid LEB128 number");
    }

    /// <summary>The checkpoint with the most completed epochs (and steps) in <paramref name="folder"/>, intact or not, or null.</summary>
    public static string? Latest(string folder) => List(folder).LastOrDefault();

    // For the current layout: hashes everything before the last 32 bytes, compares, and rewinds to just after the magic.
    // Returns whether the file has a checksum (false for the first layout).
    private static bool VerifyChecksum(BinaryReader reader, string path)
    {
        var stream = reader.BaseStream;
        long afterMagic = stream.Position;
        stream.Position = 0;
        string magic = reader.ReadString();
        if (magic == MagicWithoutChecksum)
        {
            stream.Position = afterMagic;
            return false;
        }
        long body = stream.Length - ChecksumLength;
        if (body < afterMagic) throw new InvalidDataException($"{path}: truncated checkpoint ({stream.Length} bytes, no room for its checksum).");
        stream.Position = 0;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        for (long left = body; left > 0;)
        {
            int read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (read == 0) throw new InvalidDataException($"{path}: truncated checkpoint.");
            hash.AppendData(buffer, 0, read);
            left -= read;
        }
        var expected = new byte[ChecksumLength];
        stream.ReadExactly(expected);
        if (!hash.GetHashAndReset().AsSpan().SequenceEqual(expected))
            throw new InvalidDataException($"{path}: damaged checkpoint (its SHA-256 checksum does not match its contents: truncated, overwritten or corrupted on disk).");
        stream.Position = afterMagic;
        return true;
    }

    private static BinaryReader Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint not found: {path}", path);
        var reader = new BinaryReader(File.OpenRead(path), System.Text.Encoding.UTF8);
        try
        {
            string magic = reader.ReadString();
            if (magic != Magic && magic != MagicWithoutChecksum) throw new InvalidDataException($"{path}: not a Ddvi checkpoint (expected header {Magic}).");
            return reader;
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException or ArgumentException)
        {
            reader.Dispose();
            throw new InvalidDataException($"{path}: not a Ddvi checkpoint (file too short or no valid header).");
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    private static (TrainerState, string) ReadHeader(BinaryReader reader, string path)
    {
        try
        {
            var state = JsonSerializer.Deserialize<TrainerState>(reader.ReadString(), Json)
                        ?? throw new InvalidDataException($"{path}: empty trainer state.");
            return (state, reader.ReadString());
        }
        catch (Exception e) when (e is JsonException or EndOfStreamException or FormatException or ArgumentException or NotSupportedException)
        {
            throw new InvalidDataException($"{path}: corrupt checkpoint header ({e.Message}).", e);
        }
    }

    private static void WriteLengthPrefixed(BinaryWriter writer, Action<BinaryWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var inner = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true)) write(inner);
        writer.Write(buffer.Length);
        writer.Flush();
        buffer.Position = 0;
        buffer.CopyTo(writer.BaseStream);
    }

    private static void SkipLengthPrefixed(BinaryReader reader, string path, long end)
    {
        long length = reader.ReadInt64();
        long left = end - reader.BaseStream.Position;
        if (length < 0 || length > left)
            throw new InvalidDataException($"{path}: truncated or corrupt checkpoint (a section claims {length} bytes, {left} remain).");
        reader.BaseStream.Position += length;
    }

    private static byte[] ReadLengthPrefixed(BinaryReader reader, string path)
    {
        long length = reader.ReadInt64();
        long left = reader.BaseStream.Length - reader.BaseStream.Position;
        if (length < 0 || length > left || length > int.MaxValue)
            throw new InvalidDataException($"{path}: truncated or corrupt checkpoint (a section claims {length} bytes, {left} remain).");
        var bytes = reader.ReadBytes((int)length);
        if (bytes.Length != length) throw new InvalidDataException($"{path}: truncated checkpoint (expected {length} bytes, found {bytes.Length}).");
        return bytes;
    }
}

/// <summary>A write-only stream that feeds every byte written through it to a hash as well.</summary>
internal sealed class HashingStream(Stream inner, IncrementalHash hash) : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        hash.AppendData(buffer);
        inner.Write(buffer);
    }
}
