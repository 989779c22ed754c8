using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Naani.Serialization.Hdf5;

/// A read-only HDF5 file, as far as Keras weight files and the common writers (h5py, HDF5 1.8 to 1.14) need: the
/// HDF5 File Format Specification 3.0, superblocks 0 to 3 with 8-byte offsets and lengths, groups in symbol tables,
/// link messages or dense link storage, datasets with compact, contiguous or chunked layout (deflate, shuffle), and
/// attributes of numbers or strings (fixed-length, or variable-length in the global heap).
///
/// The file is not trusted. Every address and length is checked against the file's length before anything is read or
/// allocated; every structure that can chain or nest (object-header continuation blocks, B-tree nodes, heap blocks) is
/// followed iteratively with a visited set and a bound; and all the metadata read, decoded names and strings
/// included, is charged to a budget of a few times the file's length, so structures that overlap or refer to each
/// other many times cannot make the reader do more than a small multiple of the file's size. A malformed file is an
/// InvalidDataException naming the file and what is wrong, with the address at fault.
internal sealed class Hdf5File : IDisposable
{
    static ReadOnlySpan<byte> Signature => [0x89, (byte)'H', (byte)'D', (byte)'F', (byte)'\r', (byte)'\n', 0x1A, (byte)'\n'];

    /// The undefined address of the format: all bits set.
    internal const ulong Undefined = ulong.MaxValue;

    readonly SafeFileHandle handle;
    readonly Dictionary<ulong, Hdf5Object> objects = [];
    readonly Dictionary<ulong, byte[]> globalHeaps = [];
    long budget;
    ulong baseAddress;

    public string Path { get; }
    public long Length { get; }
    public int SuperblockVersion { get; private set; }
    public Hdf5Group Root { get; private set; } = null!;

    Hdf5File(string path, SafeFileHandle handle)
    {
        Path = path;
        this.handle = handle;
        Length = RandomAccess.GetLength(handle);
        budget = 8 * Length + (1 << 20);
    }

    public static Hdf5File Open(string path)
    {
        var file = new Hdf5File(path, File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read));
        try
        {
            file.ReadSuperblock();
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose() => handle.Dispose();

    internal InvalidDataException Corrupt(string what) => new($"'{Path}' is a corrupt HDF5 file: {what}");

    internal InvalidDataException Unsupported(string what) => new($"'{Path}' uses an HDF5 feature this reader does not support: {what}");

    /// The superblock sits at 0, 512, 1024, 2048... (after a user block); the addresses in the file are relative to
    /// its base address.
    void ReadSuperblock()
    {
        long at = 0;
        Span<byte> signature = stackalloc byte[8];
        while (true)
        {
            if (at + 8 > Length) throw Corrupt("no HDF5 signature at offset 0, 512, 1024, 2048, ... (it is not an HDF5 file)");
            ReadExactly(signature, at);
            if (signature.SequenceEqual(Signature)) break;
            at = at == 0 ? 512 : at * 2;
        }
        var head = ReadMetadata((ulong)at, Math.Min(Length - at, 100), "superblock", relative: false);
        var c = new Hdf5Cursor(this, head, (ulong)at, "superblock");
        c.Skip(8);
        SuperblockVersion = c.U8();
        ulong rootHeader, endOfFile;
        if (SuperblockVersion is 0 or 1)
        {
            c.Skip(4);   // free-space, root group symbol table entry and shared header message versions; reserved
            CheckSizes(c.U8(), c.U8());
            c.Skip(1 + 2 + 2 + 4 + (SuperblockVersion == 1 ? 4 : 0));   // reserved, B-tree K values, flags
            c.Skip(8 + 8);   // the base address (see below), free-space info
            endOfFile = c.U64();
            c.Skip(8 + 8);   // driver info; the root entry's link name offset
            rootHeader = c.U64();
        }
        else if (SuperblockVersion is 2 or 3)
        {
            CheckSizes(c.U8(), c.U8());
            c.Skip(1 + 8 + 8);   // consistency flags, the base address (see below), the superblock extension
            endOfFile = c.U64();
            rootHeader = c.U64();
            int covered = c.Position;
            if (c.U32() != Lookup3.Hash(head.AsSpan(0, covered)))
                throw Corrupt($"the superblock at 0x{at:X}'s checksum does not match its bytes");
        }
        else throw Unsupported($"superblock version {SuperblockVersion} (at 0x{at:X}); versions 0 to 3 are read");

        // Addresses are relative to the superblock, as the HDF5 library reads them: it takes the superblock's position
        // as the base address, whatever the field says (h5py writes 0 after a user block), and the end-of-file address
        // as a position in the file.
        baseAddress = (ulong)at;
        if (endOfFile != Undefined && endOfFile > (ulong)Length)
            throw Corrupt($"it is truncated: the superblock says it ends at 0x{endOfFile:X} but the file has {Length:N0} bytes");
        Root = (Hdf5Group?)(GetObject(rootHeader, "/") as Hdf5Group) ?? throw Corrupt($"the root object at 0x{rootHeader:X} is not a group");
    }

    void CheckSizes(int offsets, int lengths)
    {
        if (offsets != 8 || lengths != 8)
            throw Unsupported($"{offsets}-byte addresses and {lengths}-byte lengths; only 8-byte ones (what every current writer uses) are read");
    }

    /// The object whose header is at address (relative to the base), read once and kept.
    internal Hdf5Object GetObject(ulong address, string name)
    {
        if (objects.TryGetValue(address, out var known)) return known;
        var header = ObjectHeader.Read(this, address);
        Hdf5Object obj = header.Layout is not null ? new Hdf5Dataset(this, address, name, header)
            : header.IsGroup ? new Hdf5Group(this, address, name, header)
            : throw Unsupported($"the object '{name}' at 0x{address:X} is neither a group nor a dataset (a committed datatype?)");
        objects[address] = obj;
        return obj;
    }

    /// Metadata at address (relative to the base address unless told otherwise): checked against the file's length
    /// before it is allocated, and charged to the budget.
    internal byte[] ReadMetadata(ulong address, long length, string what, bool relative = true)
    {
        Absolute(address, length, what, relative);
        Charge(length, what);
        return ReadBytes(address, length, what, relative);
    }

    /// Dataset values: checked against the file, not charged (their size is the caller's, checked before).
    internal byte[] ReadBytes(ulong address, long length, string what, bool relative = true)
    {
        long at = Absolute(address, length, what, relative);
        if (length > Array.MaxLength) throw Unsupported($"{what} at 0x{address:X} is {length:N0} bytes, more than one read can hold");
        var bytes = new byte[length];
        ReadExactly(bytes, at);
        return bytes;
    }

    internal long Absolute(ulong address, long length, string what, bool relative = true)
    {
        if (address == Undefined) throw Corrupt($"{what} has an undefined address");
        ulong start = relative ? baseAddress + address : address;
        if (length < 0 || start < address || start > (ulong)Length || (ulong)length > (ulong)Length - start)
            throw Corrupt($"{what} at 0x{address:X} ({length:N0} bytes) is past the end of the file ({Length:N0} bytes)");
        return (long)start;
    }

    /// The bytes from address to the end of the file (at least 1: an address at or past the end is refused).
    internal long Available(ulong address, string what)
    {
        ulong start = baseAddress + address;
        if (address == Undefined || start < address || start >= (ulong)Length)
            throw Corrupt($"{what} at 0x{address:X} is past the end of the file ({Length:N0} bytes)");
        return Length - (long)start;
    }

    /// Counts work against the budget: the metadata read and the names and strings decoded from it.
    internal void Charge(long bytes, string what)
    {
        budget -= bytes;
        if (budget < 0)
            throw Corrupt($"its structures overlap or refer to each other over and over: reading {what} goes past {8 * Length + (1 << 20):N0} bytes of metadata for a file of {Length:N0} bytes");
    }

    void ReadExactly(Span<byte> destination, long at)
    {
        while (destination.Length > 0)
        {
            int n = RandomAccess.Read(handle, destination, at);
            if (n == 0) throw Corrupt($"the file ended at {at:N0} bytes while reading (it changed while open?)");
            destination = destination[n..];
            at += n;
        }
    }

    /// The bytes of one object of a global heap collection (a variable-length string's characters).
    internal ReadOnlySpan<byte> GlobalHeapObject(ulong collection, uint index, string what)
    {
        if (!globalHeaps.TryGetValue(collection, out var heap))
        {
            var head = ReadMetadata(collection, 16, $"the global heap collection of {what}");
            var c = new Hdf5Cursor(this, head, collection, "global heap collection");
            c.Signature("GCOL");
            if (c.U8() != 1) throw Unsupported($"global heap collection version {head[4]} at 0x{collection:X}");
            c.Skip(3);
            long size = c.Length("the collection's size");
            if (size < 16) throw Corrupt($"the global heap collection at 0x{collection:X} has size {size}");
            heap = ReadMetadata(collection, size, $"the global heap collection of {what}");
            globalHeaps[collection] = heap;
        }
        var o = new Hdf5Cursor(this, heap, collection, "global heap collection");
        o.Skip(16);
        // Objects follow one another, each padded to 8 bytes; index 0 starts the free space at the end.
        while (o.Remaining >= 16)
        {
            int id = o.U16();
            o.Skip(6);
            long size = o.Length("a global heap object's size");
            if (id == 0) break;
            if (size > o.Remaining) throw Corrupt($"object {id} of the global heap collection at 0x{collection:X} ends past the collection");
            if (id == index) return heap.AsSpan(o.Position, (int)size);
            o.Skip((int)Math.Min((size + 7) & ~7L, o.Remaining));
        }
        throw Corrupt($"{what} refers to object {index} of the global heap collection at 0x{collection:X}, which has none of that index");
    }
}

/// Reads little-endian fields from a block of metadata; every read is checked against the block, so a corrupt count
/// or size ends in InvalidDataException naming the structure and its address, never in IndexOutOfRange.
internal sealed class Hdf5Cursor(Hdf5File file, byte[] data, ulong address, string what, int start = 0, int end = -1)
{
    readonly int end = end < 0 ? data.Length : end;

    public int Position { get; private set; } = start;
    public int Remaining => end - Position;
    public byte[] Data => data;
    public ulong Address => address;

    Exception Overrun(int n) =>
        file.Corrupt($"{what} at 0x{address:X} ends before its fields do (needs {n:N0} more byte(s) at offset {Position:N0}, has {Remaining:N0})");

    public ReadOnlySpan<byte> Bytes(int n)
    {
        if (n < 0 || n > Remaining) throw Overrun(n);
        var span = data.AsSpan(Position, n);
        Position += n;
        return span;
    }

    public void Skip(int n) => Bytes(n);

    /// The next n bytes as a cursor of their own (a datatype or a dataspace inside an attribute message).
    public Hdf5Cursor Sub(int n)
    {
        int at = Position;
        Skip(n);
        return new Hdf5Cursor(file, data, address, what, at, at + n);
    }

    public void SkipTo(int position)
    {
        if (position < Position || position > end) throw Overrun(position - Position);
        Position = position;
    }

    public byte U8() => Bytes(1)[0];
    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2));
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4));
    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8));

    /// An unsigned integer of n bytes (the variable-size fields of the fractal heap and the v2 B-tree).
    public ulong Unsigned(int n)
    {
        var bytes = Bytes(n);
        ulong value = 0;
        for (int i = n - 1; i >= 0; i--) value = (value << 8) | bytes[i];
        return value;
    }

    /// A length field, which must fit in the file to mean anything.
    public long Length(string field)
    {
        ulong value = U64();
        if (value > (ulong)file.Length) throw file.Corrupt($"{field} in {what} at 0x{address:X} is {value:N0}, more than the file's {file.Length:N0} bytes");
        return (long)value;
    }

    public void Signature(string signature)
    {
        var bytes = Bytes(4);
        for (int i = 0; i < 4; i++)
            if (bytes[i] != signature[i])
                throw file.Corrupt($"{what} at 0x{address:X} does not start with its signature '{signature}'");
    }
}

/// Bob Jenkins' lookup3 hashlittle, with which HDF5 checksums its metadata (H5_checksum_lookup3, initial value 0).
internal static class Lookup3
{
    public static uint Hash(ReadOnlySpan<byte> k, uint initial = 0)
    {
        uint a, b, c;
        a = b = c = 0xDEADBEEF + (uint)k.Length + initial;
        while (k.Length > 12)
        {
            a += BinaryPrimitives.ReadUInt32LittleEndian(k);
            b += BinaryPrimitives.ReadUInt32LittleEndian(k[4..]);
            c += BinaryPrimitives.ReadUInt32LittleEndian(k[8..]);
            a -= c; a ^= uint.RotateLeft(c, 4); c += b;
            b -= a; b ^= uint.RotateLeft(a, 6); a += c;
            c -= b; c ^= uint.RotateLeft(b, 8); b += a;
            a -= c; a ^= uint.RotateLeft(c, 16); c += b;
            b -= a; b ^= uint.RotateLeft(a, 19); a += c;
            c -= b; c ^= uint.RotateLeft(b, 4); b += a;
            k = k[12..];
        }
        if (k.Length == 0) return c;
        Span<byte> tail = stackalloc byte[12];
        tail.Clear();
        k.CopyTo(tail);
        a += BinaryPrimitives.ReadUInt32LittleEndian(tail);
        b += BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]);
        c += BinaryPrimitives.ReadUInt32LittleEndian(tail[8..]);
        c ^= b; c -= uint.RotateLeft(b, 14);
        a ^= c; a -= uint.RotateLeft(c, 11);
        b ^= a; b -= uint.RotateLeft(a, 25);
        c ^= b; c -= uint.RotateLeft(b, 16);
        a ^= c; a -= uint.RotateLeft(c, 4);
        b ^= a; b -= uint.RotateLeft(a, 14);
        c ^= b; c -= uint.RotateLeft(b, 24);
        return c;
    }
}
