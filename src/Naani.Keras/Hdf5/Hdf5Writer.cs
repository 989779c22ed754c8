using System.Buffers.Binary;
using System.Text;

namespace Naani.Serialization.Hdf5;

/// Writes a small HDF5 file of groups and float32 datasets, the subset Keras 3's weight files use (groups of
/// groups, contiguous little-endian float32 datasets, no attributes). The file is the "latest format" HDF5 1.10
/// and h5py write with libver='latest': a version 2 superblock, version 2 object headers (with Jenkins lookup3
/// checksums), groups holding their links in the header (compact link storage: Link Info, Group Info and one Link
/// message per member) and datasets with a Dataspace, Datatype, Fill Value and contiguous Layout message.
/// Objects are written children first, so every address is known when its parent's header is written; the
/// superblock, at offset 0, is written last.
internal sealed class Hdf5Writer
{
    /// A group: named members, each a group or a dataset, kept in insertion order.
    public sealed class Group
    {
        internal readonly List<(string Name, object Member)> Members = [];

        /// The member group of that name, made if absent.
        public Group GetOrAddGroup(string name)
        {
            CheckName(name);
            foreach (var (n, m) in Members)
                if (n == name) return m as Group ?? throw new InvalidOperationException($"HDF5 member '{name}' is a dataset, not a group.");
            var group = new Group();
            Members.Add((name, group));
            return group;
        }

        /// A float32 dataset of the given shape holding values (copied when written).
        public void AddDataset(string name, int[] shape, ReadOnlyMemory<float> values)
        {
            CheckName(name);
            long count = shape.Aggregate(1L, (a, d) => a * d);
            if (shape.Any(d => d < 0) || count != values.Length)
                throw new ArgumentException($"HDF5 dataset '{name}': shape ({string.Join(", ", shape)}) does not hold {values.Length} values.");
            if (Members.Any(m => m.Name == name)) throw new InvalidOperationException($"HDF5 group already has a member '{name}'.");
            Members.Add((name, new Dataset(shape, values)));
        }

        static void CheckName(string name)
        {
            if (string.IsNullOrEmpty(name) || name.Contains('/') || name == "." || Encoding.UTF8.GetByteCount(name) > 255)
                throw new ArgumentException($"'{name}' is not a valid HDF5 link name here (1-255 bytes, no '/').");
        }
    }

    sealed record Dataset(int[] Shape, ReadOnlyMemory<float> Values);

    public Group Root { get; } = new();

    const ulong Undefined = ulong.MaxValue;

    /// HDF5's format signature, the first 8 bytes of the superblock.
    internal static ReadOnlySpan<byte> Signature => [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0D, 0x0A, 0x1A, 0x0A];
    const int SuperblockSize = 48;

    /// The whole file.
    public byte[] ToArray()
    {
        using var stream = new MemoryStream();
        Write(stream);
        return stream.ToArray();
    }

    /// Writes the whole file to a stream positioned at its start.
    public void Write(Stream stream)
    {
        var file = new MemoryStream();
        file.Write(new byte[SuperblockSize]);
        ulong root = WriteGroup(file, Root);
        ulong end = (ulong)file.Length;
        var superblock = new byte[SuperblockSize];
        Signature.CopyTo(superblock);
        superblock[8] = 2;   // superblock version
        superblock[9] = 8;   // size of offsets
        superblock[10] = 8;  // size of lengths
        superblock[11] = 0;  // file consistency flags
        BinaryPrimitives.WriteUInt64LittleEndian(superblock.AsSpan(12), 0);          // base address
        BinaryPrimitives.WriteUInt64LittleEndian(superblock.AsSpan(20), Undefined);  // superblock extension
        BinaryPrimitives.WriteUInt64LittleEndian(superblock.AsSpan(28), end);        // end of file
        BinaryPrimitives.WriteUInt64LittleEndian(superblock.AsSpan(36), root);       // root group object header
        BinaryPrimitives.WriteUInt32LittleEndian(superblock.AsSpan(44), Lookup3.Hash(superblock.AsSpan(0, 44)));
        file.Position = 0;
        file.Write(superblock);
        file.Position = 0;
        file.CopyTo(stream);
    }

    // Members first, then the group's header; returns its address.
    static ulong WriteGroup(MemoryStream file, Group group)
    {
        var addresses = new List<(string Name, ulong Address)>();
        foreach (var (name, member) in group.Members)
            addresses.Add((name, member is Group g ? WriteGroup(file, g) : WriteDataset(file, (Dataset)member)));
        var messages = new List<(byte Type, byte[] Body)>
        {
            // Link Info: version 0, no creation order; no fractal heap, no name index (links are in the header).
            (0x02, [0, 0, .. U64(Undefined), .. U64(Undefined)]),
            // Group Info: version 0, no flags (default link phase change and size estimates).
            (0x0A, [0, 0]),
        };
        foreach (var (name, address) in addresses)
        {
            var bytes = Encoding.UTF8.GetBytes(name);
            // Link: version 1; flags 0x10 (UTF-8 character set field present) with a 1-byte name length; a hard link.
            messages.Add((0x06, [1, 0x10, 1, (byte)bytes.Length, .. bytes, .. U64(address)]));
        }
        return WriteObjectHeader(file, messages);
    }

    static ulong WriteDataset(MemoryStream file, Dataset dataset)
    {
        Align(file, 8);
        ulong dataAddress = (ulong)file.Position;
        var span = dataset.Values.Span;
        var buffer = new byte[span.Length * 4];
        for (int i = 0; i < span.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(i * 4), span[i]);
        file.Write(buffer);
        var dims = dataset.Shape.SelectMany(d => U64((ulong)d)).ToArray();
        var messages = new List<(byte Type, byte[] Body)>
        {
            // Dataspace: version 2, rank, no maximum dimensions, simple (scalar when rank 0).
            (0x01, [2, (byte)dataset.Shape.Length, 0, (byte)(dataset.Shape.Length == 0 ? 0 : 1), .. dims]),
            // Datatype: version 1, floating point; little-endian, implied leading mantissa bit, sign at bit 31;
            // 4 bytes; offset 0, precision 32, exponent at 23 of 8 bits, mantissa at 0 of 23 bits, bias 127.
            (0x03, [0x11, 0x20, 0x1F, 0x00, .. U32(4), .. U16(0), .. U16(32), 23, 8, 0, 23, .. U32(127)]),
            // Fill Value: version 3; allocation time late, write time "if set", no value defined.
            (0x05, [3, 0x0A]),
            // Layout: version 3, contiguous, at dataAddress, its size in bytes.
            (0x08, [3, 1, .. U64(dataAddress), .. U64((ulong)buffer.Length)]),
        };
        return WriteObjectHeader(file, messages);
    }

    // Version 2 object header: "OHDR", version 2, flags 0x02 (chunk 0's size in 4 bytes), the size, the messages
    // (type, size, flags), the checksum.
    static ulong WriteObjectHeader(MemoryStream file, List<(byte Type, byte[] Body)> messages)
    {
        Align(file, 8);
        ulong address = (ulong)file.Position;
        var body = new List<byte>();
        foreach (var (type, data) in messages)
        {
            body.Add(type);
            body.AddRange(U16((ushort)data.Length));
            body.Add(0);   // message flags
            body.AddRange(data);
        }
        var header = new List<byte>();
        header.AddRange("OHDR"u8.ToArray());
        header.Add(2);
        header.Add(0x02);
        header.AddRange(U32((uint)body.Count));
        header.AddRange(body);
        var bytes = header.ToArray();
        file.Write(bytes);
        file.Write(U32(Lookup3.Hash(bytes)));
        return address;
    }

    static void Align(MemoryStream file, int to)
    {
        while (file.Position % to != 0) file.WriteByte(0);
    }

    static byte[] U16(ushort v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); return b; }
    static byte[] U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }
    static byte[] U64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return b; }
}
