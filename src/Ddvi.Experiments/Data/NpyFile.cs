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
}
