using System.Buffers.Binary;
using System.IO.Compression;

namespace Naani.Data;

/// The element type named by byte 2 of an IDX file's magic number.
public enum IdxType : byte
{
    UnsignedByte = 0x08,
    SignedByte = 0x09,
    Int16 = 0x0B,
    Int32 = 0x0C,
    Single = 0x0D,
    Double = 0x0E,
}

/// The contents of one IDX file: its dimensions, its element type, and its values converted to float
/// (row-major, last dimension fastest, exactly as stored).
public sealed class IdxData(int[] dims, IdxType type, float[] values)
{
    public int[] Dims { get; } = dims;
    public IdxType Type { get; } = type;
    public float[] Values { get; } = values;
}

/// Reads the IDX format of MNIST and its relatives (Fashion-MNIST, KMNIST, EMNIST), raw or gzip-compressed.
///
/// Layout (all integers big-endian):
///   bytes 0-1   zero
///   byte  2     element type (0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)
///   byte  3     number of dimensions, here 1..4
///   then        one int32 per dimension
///   then        the elements, row-major
/// Everything is checked before the values array is allocated: a corrupt or hostile header cannot make us
/// allocate gigabytes, and a truncated file is reported with the offset where it ends.
public static class IdxReader
{
    const int MaxRank = 4;

    // Data is read in chunks of this many bytes (a multiple of every element size, so no element is split).
    const int ChunkBytes = 1 << 24;

    /// Reads an IDX file, decompressing it first when it starts with the gzip magic 1f 8b (whatever its name).
    public static IdxData Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        Span<byte> magic = stackalloc byte[2];
        int got = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        file.Position = 0;
        if (got == 2 && magic[0] == 0x1F && magic[1] == 0x8B)
        {
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            return Read(gzip, path, knownLength: null, where: "of the decompressed data");
        }
        return Read(file, path, knownLength: file.Length, where: "");
    }

    /// Reads IDX data from an uncompressed stream; name is used in error messages.
    public static IdxData Read(Stream stream, string name)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Read(stream, name, stream.CanSeek ? stream.Length - stream.Position : null, "");
    }

    static IdxData Read(Stream stream, string name, long? knownLength, string where)
    {
        string At(long offset) => where.Length == 0 ? $"byte {offset}" : $"byte {offset} {where}";

        // A corrupt gzip stream throws from inside the decompressor; say which file and where.
        int ReadFully(Span<byte> buffer, long offset)
        {
            try
            {
                return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"{name}: the gzip stream is corrupt after {At(offset)}: {e.Message}", e);
            }
        }

        Span<byte> magic = stackalloc byte[4];
        int got = ReadFully(magic, 0);
        if (got < 4)
            throw new InvalidDataException($"{name}: the file ends after {got} bytes{Describe(where)}; an IDX file starts with a 4-byte magic number.");
        if (magic[0] != 0 || magic[1] != 0)
            throw new InvalidDataException(
                $"{name}: {At(0)}-1 of the magic number are 0x{magic[0]:X2} 0x{magic[1]:X2}; expected 0x00 0x00. This is not an IDX file.");
        var type = (IdxType)magic[2];
        int elementSize = ElementSize(type);
        if (elementSize == 0)
            throw new InvalidDataException(
                $"{name}: {At(2)} (data type) is 0x{magic[2]:X2}; expected 0x08 (ubyte), 0x09 (sbyte), 0x0B (int16), 0x0C (int32), 0x0D (float32) or 0x0E (float64).");
        int rank = magic[3];
        if (rank < 1 || rank > MaxRank)
            throw new InvalidDataException($"{name}: {At(3)} (number of dimensions) is {rank}; expected 1 to {MaxRank}.");

        Span<byte> dimBytes = stackalloc byte[4 * MaxRank];
        dimBytes = dimBytes[..(4 * rank)];
        got = ReadFully(dimBytes, 4);
        if (got < dimBytes.Length)
            throw new InvalidDataException(
                $"{name}: the file ends at {At(4 + got)}, inside the header; {rank} dimensions need {4 + 4 * rank} header bytes.");

        var dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(dimBytes[(4 * i)..]);
            if (dims[i] <= 0)
                throw new InvalidDataException($"{name}: dimension {i} (at {At(4 + 4 * i)}) is {dims[i]}; expected a positive size.");
            count *= dims[i]; // at most (2^31)^4 overflows long, so check as we go
            if (count > Array.MaxLength)
                throw new InvalidDataException(
                    $"{name}: dimensions ({string.Join(", ", dims[..(i + 1)])}{(i + 1 < rank ? ", ..." : "")}) hold more than {Array.MaxLength:N0} elements, " +
                    "the most one array can hold; the header is corrupt or this is not an IDX file.");
        }

        long headerBytes = 4 + 4L * rank;
        long dataBytes = count * elementSize;
        if (knownLength is long length && length - 4 - 4L * rank < dataBytes)
            throw new InvalidDataException(
                $"{name}: the header ({string.Join(" x ", dims)} {TypeName(type)}) needs {headerBytes + dataBytes:N0} bytes; the file has {length:N0}. It is truncated.");

        // Read into chunks first and allocate the float array only once every byte is there,
        // so that a truncated gzip stream with a large header fails without a large allocation.
        var chunks = new List<byte[]>();
        long remaining = dataBytes;
        while (remaining > 0)
        {
            var chunk = new byte[(int)Math.Min(remaining, ChunkBytes)];
            got = ReadFully(chunk, headerBytes + (dataBytes - remaining));
            if (got < chunk.Length)
            {
                long end = headerBytes + (dataBytes - remaining) + got;
                throw new InvalidDataException(
                    $"{name}: the data ends at {At(end)}; the header ({string.Join(" x ", dims)} {TypeName(type)}) needs {headerBytes + dataBytes:N0} bytes. It is truncated.");
            }
            chunks.Add(chunk);
            remaining -= chunk.Length;
        }

        Span<byte> probe = stackalloc byte[1];
        if (ReadFully(probe, headerBytes + dataBytes) != 0)
            throw new InvalidDataException(
                $"{name}: there is more data after {At(headerBytes + dataBytes)}, where the header ({string.Join(" x ", dims)} {TypeName(type)}) says the file ends.");

        var values = new float[count];
        int offset = 0;
        foreach (var chunk in chunks)
        {
            int n = chunk.Length / elementSize;
            Convert(chunk, type, values.AsSpan(offset, n));
            offset += n;
        }
        return new IdxData(dims, type, values);
    }

    static string Describe(string where) => where.Length == 0 ? "" : " " + where;

    static string TypeName(IdxType type) => type switch
    {
        IdxType.UnsignedByte => "ubyte",
        IdxType.SignedByte => "sbyte",
        IdxType.Int16 => "int16",
        IdxType.Int32 => "int32",
        IdxType.Single => "float32",
        _ => "float64",
    };

    static int ElementSize(IdxType type) => type switch
    {
        IdxType.UnsignedByte or IdxType.SignedByte => 1,
        IdxType.Int16 => 2,
        IdxType.Int32 or IdxType.Single => 4,
        IdxType.Double => 8,
        _ => 0,
    };

    static void Convert(ReadOnlySpan<byte> source, IdxType type, Span<float> destination)
    {
        switch (type)
        {
            case IdxType.UnsignedByte:
                for (int i = 0; i < destination.Length; i++) destination[i] = source[i];
                break;
            case IdxType.SignedByte:
                for (int i = 0; i < destination.Length; i++) destination[i] = (sbyte)source[i];
                break;
            case IdxType.Int16:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt16BigEndian(source[(2 * i)..]);
                break;
            case IdxType.Int32:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt32BigEndian(source[(4 * i)..]);
                break;
            case IdxType.Single:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleBigEndian(source[(4 * i)..]);
                break;
            case IdxType.Double:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleBigEndian(source[(8 * i)..]);
                break;
        }
    }
}
