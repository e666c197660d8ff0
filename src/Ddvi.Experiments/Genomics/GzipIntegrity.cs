using System.Buffers.Binary;
using System.IO.Compression;

namespace Ddvi.Experiments.Genomics;

/// <summary>
/// A <see cref="GZipStream"/> that checks, when the decompressed data end, that the compressed file really ended there:
/// .NET's decoder stops without an error on a gzip file cut short, so a truncated VCF would otherwise read as a shorter
/// one. The failure is an <see cref="InvalidDataException"/>, which the VCF reader reports with the file and line.
/// </summary>
/// <remarks>
/// BGZF (SAMv1 spec §4.1: gzip members whose extra field <c>BC</c> gives the member size): every member is walked by its
/// size from the start of the file, which must land exactly on the file's end, the sizes (ISIZE) of the members must add
/// up to the bytes decoded, and the last member must be the empty end-of-file block. Other gzip: the trailer's ISIZE
/// must equal the bytes decoded modulo 2³², which holds for a single member; a file of several plain gzip members (not
/// BGZF) is therefore reported too (recompress it with <c>bgzip</c>).
/// </remarks>
internal sealed class CheckedGzipStream(string path) : Stream
{
    readonly GZipStream inner = new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), CompressionMode.Decompress);
    long decoded;
    bool verified;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int read = inner.Read(buffer);
        decoded += read;
        if (read == 0 && buffer.Length > 0 && !verified)
        {
            verified = true;
            Verify(path, decoded);
        }
        return read;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> when <paramref name="path"/> does not end where
    /// <paramref name="decodedBytes"/> of decompressed data say it should.</summary>
    public static void Verify(string path, long decodedBytes)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
        long length = file.Length;
        Span<byte> header = stackalloc byte[18];
        if (IsBgzfHeader(file, 0, header, out _))
        {
            long offset = 0, total = 0, lastSize = -1;
            Span<byte> word = stackalloc byte[4];
            while (offset < length)
            {
                if (!IsBgzfHeader(file, offset, header, out int blockSize))
                    throw new InvalidDataException($"BGZF block at byte offset {offset:N0} has no BGZF header; the file is cut or damaged");
                if (offset + blockSize > length)
                    throw new InvalidDataException($"truncated: the BGZF block at byte offset {offset:N0} needs {blockSize:N0} bytes, the file ends {length - offset:N0} bytes after its start");
                file.Position = offset + blockSize - 4;
                file.ReadExactly(word);
                lastSize = BinaryPrimitives.ReadUInt32LittleEndian(word);
                total += lastSize;
                offset += blockSize;
            }
            if (total != decodedBytes)
                throw new InvalidDataException($"the BGZF blocks hold {total:N0} bytes, {decodedBytes:N0} were decoded; the file is damaged");
            if (lastSize != 0)
                throw new InvalidDataException("truncated: no BGZF end-of-file block (the file was cut at a block boundary)");
            return;
        }
        if (length < 18) throw new InvalidDataException($"truncated: {length} bytes cannot hold a gzip header and trailer");
        Span<byte> trailer = stackalloc byte[4];
        file.Position = length - 4;
        file.ReadExactly(trailer);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
        if (size != (uint)decodedBytes)
            throw new InvalidDataException($"truncated: the gzip trailer gives {size:N0} bytes (mod 2^32), {decodedBytes:N0} were decoded (a file of several plain gzip members is read but not checkable: recompress it with bgzip)");
    }

    /// <summary>True when a gzip member with a BGZF <c>BC</c> extra subfield starts at <paramref name="offset"/>; its size
    /// (BSIZE + 1) in <paramref name="blockSize"/>.</summary>
    static bool IsBgzfHeader(FileStream file, long offset, Span<byte> header, out int blockSize)
    {
        blockSize = 0;
        file.Position = offset;
        if (file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length) return false;
        // ID1 ID2 CM FLG(FEXTRA) MTIME(4) XFL OS XLEN(2) = 6, then SI1 'B' SI2 'C' SLEN 2 BSIZE(2).
        if (header[0] != 0x1f || header[1] != 0x8b || header[2] != 8 || (header[3] & 4) == 0) return false;
        if (header[12] != (byte)'B' || header[13] != (byte)'C' || BinaryPrimitives.ReadUInt16LittleEndian(header[14..]) != 2) return false;
        blockSize = BinaryPrimitives.ReadUInt16LittleEndian(header[16..]) + 1;
        return true;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => decoded; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
