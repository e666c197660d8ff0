using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Ddvi.IO;

namespace Ddvi.Data;

/// <summary>
/// Writes NumPy's .npy format, version 1.0 (numpy.org/doc/stable/reference/generated/numpy.lib.format.html): the magic
/// <c>\x93NUMPY</c>, version bytes 1 0, a little-endian uint16 header length, an ASCII header
/// <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (…), }</c> padded with spaces and ended by '\n' so that the data
/// starts at a multiple of 64 bytes, then the values in C order. Only little-endian float32 is written.
/// </summary>
public static class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0];

    /// <summary>Writes <paramref name="values"/> as an array of <paramref name="shape"/>, atomically.</summary>
    public static void WriteFloat32(string path, ReadOnlySpan<float> values, IReadOnlyList<long> shape)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (count != values.Length)
            throw new ArgumentException($"{path}: shape ({string.Join(", ", shape)}) holds {count} values, got {values.Length}.");
        string dims = shape.Count == 1 ? $"{shape[0]}," : string.Join(", ", shape.Select(s => s.ToString(CultureInfo.InvariantCulture)));
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        int unpadded = Magic.Length + 2 + header.Length + 1;
        header += new string(' ', (64 - unpadded % 64) % 64) + "\n";
        var bytes = new byte[Magic.Length + 2 + header.Length + values.Length * sizeof(float)];
        Magic.CopyTo(bytes, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(Magic.Length), (ushort)header.Length);
        Encoding.ASCII.GetBytes(header).CopyTo(bytes, Magic.Length + 2);
        var data = bytes.AsSpan(Magic.Length + 2 + header.Length);
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data[(i * sizeof(float))..], values[i]);
        AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>
    /// Reads a file <see cref="WriteFloat32"/> wrote (version 1.0, <c>'&lt;f4'</c>, C order): the values and the shape.
    /// Anything else is a <see cref="DataFormatException"/> naming what was found.
    /// </summary>
    public static (float[] Values, long[] Shape) ReadFloat32(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found.", path);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < Magic.Length + 2 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new DataFormatException(path, "not a version 1.0 .npy file: the first 8 bytes are not \\x93NUMPY 1 0.");
        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(Magic.Length));
        int dataStart = Magic.Length + 2 + headerLength;
        if (bytes.Length < dataStart) throw new DataFormatException(path, $"truncated: the header needs {dataStart} bytes, the file has {bytes.Length}.");
        string header = Encoding.ASCII.GetString(bytes, Magic.Length + 2, headerLength);
        if (!header.Contains("'descr': '<f4'") || !header.Contains("'fortran_order': False"))
            throw new DataFormatException(path, $"expected little-endian float32 in C order, the header is {header.Trim()}.");
        int open = header.IndexOf("'shape': (", StringComparison.Ordinal), close = open < 0 ? -1 : header.IndexOf(')', open);
        if (close < 0) throw new DataFormatException(path, $"no shape in the header {header.Trim()}.");
        var shape = header[(open + 10)..close].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(d => long.Parse(d, CultureInfo.InvariantCulture)).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (bytes.Length - dataStart != count * sizeof(float))
            throw new DataFormatException(path, $"shape ({string.Join(", ", shape)}) needs {count * sizeof(float)} bytes of data, found {bytes.Length - dataStart}.");
        var values = new float[count];
        for (long i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(dataStart + (int)(i * sizeof(float))));
        return (values, shape);
    }
}
