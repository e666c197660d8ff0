using Ddvi.FastPaths;
using Ddvi.IO;
using System.Text.Json;
using static TorchSharp.torch;

namespace Ddvi.Training;

/// <summary>The trainer's own state in a checkpoint: where it stopped and the loss history so far.</summary>
public sealed record TrainerState(string Stage, int EpochsCompleted, double SecondsElapsed, IReadOnlyList<EpochRecord> History);

/// <summary>
/// A training checkpoint: model weights, each phase's optimiser state, the trainer's state and the
/// resolved run configuration, in one file written atomically. File layout (little-endian):
/// magic "DDVICKP1", trainer state (JSON), configuration (JSON), model state dict, then a count and
/// (phase name, optimiser state) pairs, each state length-prefixed.
/// </summary>
public static class Checkpoint
{
    private const string Magic = "DDVICKP1";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    public static string FileName(int epochsCompleted) => $"epoch-{epochsCompleted:D4}.ckpt";

    public static void Save(string path, nn.Module model, IReadOnlyDictionary<string, optim.Optimizer> optimizers,
        TrainerState state, string configurationJson)
    {
        AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
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
        });
    }

    /// <summary>Reads only the trainer state and configuration (cheap: no tensors are loaded).</summary>
    public static (TrainerState State, string ConfigurationJson) ReadHeader(string path)
    {
        using var reader = Open(path);
        return ReadHeader(reader, path);
    }

    /// <summary>Loads weights into <paramref name="model"/> and, when given, optimiser states by phase name.</summary>
    public static TrainerState Load(string path, nn.Module model, IReadOnlyDictionary<string, optim.Optimizer>? optimizers = null)
    {
        using var reader = Open(path);
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

    /// <summary>The checkpoint with the most completed epochs in <paramref name="folder"/>, or null.</summary>
    public static string? Latest(string folder) =>
        Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "epoch-*.ckpt").OrderBy(Path.GetFileName, StringComparer.Ordinal).LastOrDefault()
            : null;

    private static BinaryReader Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint not found: {path}", path);
        var reader = new BinaryReader(File.OpenRead(path), System.Text.Encoding.UTF8);
        try
        {
            string magic = reader.ReadString();
            if (magic != Magic) throw new InvalidDataException($"{path}: not a Ddvi checkpoint (expected header {Magic}).");
            return reader;
        }
        catch (EndOfStreamException)
        {
            reader.Dispose();
            throw new InvalidDataException($"{path}: not a Ddvi checkpoint (file too short).");
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
        catch (Exception e) when (e is JsonException or EndOfStreamException)
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

    private static byte[] ReadLengthPrefixed(BinaryReader reader, string path)
    {
        long length = reader.ReadInt64();
        var bytes = reader.ReadBytes(checked((int)length));
        if (bytes.Length != length) throw new InvalidDataException($"{path}: truncated checkpoint (expected {length} bytes, found {bytes.Length}).");
        return bytes;
    }
}
