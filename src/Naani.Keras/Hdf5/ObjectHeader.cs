namespace Naani.Serialization.Hdf5;

/// The messages of one object header that the reader uses, gathered from its first block and its continuation blocks.
///
/// The blocks are followed iteratively: a continuation message queues its block, a block already read (a loop, as in
/// the file fuzzing found that overflowed PureHDF's stack) is refused, and so is a header of more than MaxBlocks
/// blocks or more bytes of blocks than the file has.
internal sealed class ObjectHeader
{
    const int MaxBlocks = 4096;

    public Hdf5Space? Space;
    public Hdf5Type? Type;
    public DataLayout? Layout;
    public List<(int Id, int Flags, uint[] ClientData)> Filters = [];
    public (ulong BTree, ulong Heap)? SymbolTable;
    public (ulong Heap, ulong NameIndex)? LinkInfo;
    public bool HasGroupInfo;
    public readonly List<(string Name, ulong Address)> Links = [];
    public readonly List<Hdf5Attribute> Attributes = [];
    public (ulong Heap, ulong NameIndex)? AttributeInfo;

    public bool IsGroup => SymbolTable is not null || LinkInfo is not null || HasGroupInfo || Links.Count > 0;

    public static ObjectHeader Read(Hdf5File file, ulong address)
    {
        var header = new ObjectHeader();
        string what = $"the object header at 0x{address:X}";
        var head = file.ReadMetadata(address, Math.Min(34, file.Available(address, "the object header")), "the object header");
        var blocks = new Queue<(ulong Address, long Length)>();
        var visited = new HashSet<ulong> { address };
        long total = 0;
        bool v2;
        int headerFlags = 0;
        byte[] block;
        int start, end;
        if (head.Length >= 16 && head[0] == 1)
        {
            // Version 1: version, reserved, message count, reference count, header size, padding to 8 bytes.
            v2 = false;
            var c = new Hdf5Cursor(file, head, address, what);
            c.Skip(8);
            long size = c.U32();
            total = 16 + size;
            block = file.ReadMetadata(address, 16 + size, "the object header");
            (start, end) = (16, block.Length);
        }
        else if (head.Length >= 6 && head.AsSpan(0, 4).SequenceEqual("OHDR"u8))
        {
            v2 = true;
            var c = new Hdf5Cursor(file, head, address, what);
            c.Skip(4);
            if (c.U8() != 2) throw file.Unsupported($"object header version {head[4]} at 0x{address:X}");
            headerFlags = c.U8();
            if ((headerFlags & 0x20) != 0) c.Skip(16);   // access, modification, change and birth times
            if ((headerFlags & 0x10) != 0) c.Skip(4);    // attribute storage phase change values
            ulong declared = c.Unsigned(1 << (headerFlags & 3));
            if (declared > (ulong)file.Length) throw file.Corrupt($"{what} says its messages take {declared:N0} bytes, more than the file's {file.Length:N0}");
            long size = (long)declared;
            start = c.Position;
            total = start + size + 4;
            block = file.ReadMetadata(address, total, "the object header");
            end = (int)(start + size);
            VerifyChecksum(file, block, address, what);
        }
        else throw file.Corrupt($"{what} is neither a version 1 nor a version 2 ('OHDR') object header");

        int blockCount = 1;
        ulong blockAddress = address;
        while (true)
        {
            header.ReadMessages(file, block, blockAddress, start, end, v2, headerFlags, address, blocks, visited);
            if (blocks.Count == 0) break;
            var (next, length) = blocks.Dequeue();
            if (++blockCount > MaxBlocks) throw file.Corrupt($"{what} has more than {MaxBlocks} continuation blocks");
            total += length;
            if (total > file.Length) throw file.Corrupt($"{what}'s continuation blocks add up to more bytes than the file has");
            block = file.ReadMetadata(next, length, $"a continuation block of {what}");
            blockAddress = next;
            if (v2)
            {
                if (length < 8 || !block.AsSpan(0, 4).SequenceEqual("OCHK"u8))
                    throw file.Corrupt($"the continuation block at 0x{next:X} of {what} does not start with 'OCHK'");
                VerifyChecksum(file, block, next, $"the continuation block at 0x{next:X} of {what}");
                (start, end) = (4, block.Length - 4);
            }
            else (start, end) = (0, block.Length);
        }
        return header;
    }

    static void VerifyChecksum(Hdf5File file, byte[] block, ulong address, string what)
    {
        uint stored = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(block.Length - 4));
        if (stored != Lookup3.Hash(block.AsSpan(0, block.Length - 4)))
            throw file.Corrupt($"{what}'s checksum does not match its bytes (at 0x{address:X})");
    }

    void ReadMessages(Hdf5File file, byte[] block, ulong blockAddress, int start, int end, bool v2, int headerFlags, ulong header,
        Queue<(ulong, long)> blocks, HashSet<ulong> visited)
    {
        var c = new Hdf5Cursor(file, block, blockAddress, $"the object header at 0x{header:X}", start, end);
        int prefix = v2 ? 4 + ((headerFlags & 0x04) != 0 ? 2 : 0) : 8;
        while (c.Remaining >= prefix)
        {
            int type = v2 ? c.U8() : c.U16();
            int size = c.U16();
            int flags = c.U8();
            c.Skip(prefix - (v2 ? 4 : 5));   // v1: 3 reserved bytes; v2: the creation order if tracked
            int at = c.Position;
            if (size > c.Remaining)
                throw file.Corrupt($"a message of type 0x{type:X2} in the object header at 0x{header:X} is {size:N0} bytes long but its block has {c.Remaining:N0} left (at 0x{blockAddress + (ulong)at:X})");
            c.Skip(size);
            var m = new Hdf5Cursor(file, block, blockAddress + (ulong)at, $"a message of type 0x{type:X2} in the object header at 0x{header:X}", at, at + size);
            ReadMessage(file, type, flags, m, header, blocks, visited);
        }
    }

    void ReadMessage(Hdf5File file, int type, int flags, Hdf5Cursor m, ulong header, Queue<(ulong, long)> blocks, HashSet<ulong> visited)
    {
        bool shared = (flags & 0x02) != 0;
        if (shared && type is 0x01 or 0x03 or 0x08 or 0x0B or 0x0C)
            throw file.Unsupported($"a shared header message (type 0x{type:X2}, in the object header at 0x{header:X}): shared and committed datatypes are not read");
        switch (type)
        {
            case 0x01:
                Space = Hdf5Space.Read(file, m);
                break;
            case 0x02:
                LinkInfo = ReadInfo(file, m, creationOrderBytes: 8, "link info");
                break;
            case 0x03:
                Type = Hdf5Type.Read(file, m, 0);
                break;
            case 0x06:
                ReadLink(file, m, Links);
                break;
            case 0x07:
                throw file.Unsupported($"a dataset whose data is in external files (object header at 0x{header:X})");
            case 0x08:
                Layout = DataLayout.Read(file, m);
                break;
            case 0x0A:
                HasGroupInfo = true;
                break;
            case 0x0B:
                Filters = ReadFilters(file, m);
                break;
            case 0x0C:
                Attributes.Add(Hdf5Attribute.Read(file, m));
                break;
            case 0x10:
                ulong next = m.U64();
                long length = m.Length("a continuation block's length");
                if (next == header) throw file.Corrupt($"the object header at 0x{header:X} continues into itself");
                if (!visited.Add(next)) throw file.Corrupt($"the object header at 0x{header:X} continues at 0x{next:X} a second time (its continuation blocks loop)");
                blocks.Enqueue((next, length));
                break;
            case 0x11:
                SymbolTable = (m.U64(), m.U64());
                break;
            case 0x15:
                AttributeInfo = ReadInfo(file, m, creationOrderBytes: 2, "attribute info");
                break;
            case <= 0x17:
                break;   // NIL, fill values, comments, times, B-tree K values, reference counts...: nothing a read needs
            default:
                if ((flags & 0x80) != 0)
                    throw file.Corrupt($"the object header at 0x{header:X} has a message of unknown type 0x{type:X2} that it marks as one a reader must understand");
                break;
        }
    }

    /// The link info and attribute info messages: the fractal heap and the v2 B-tree name index of dense storage.
    static (ulong Heap, ulong NameIndex)? ReadInfo(Hdf5File file, Hdf5Cursor m, int creationOrderBytes, string what)
    {
        int version = m.U8();
        if (version != 0) throw file.Unsupported($"{what} message version {version} (at 0x{m.Address:X})");
        int flags = m.U8();
        if ((flags & 1) != 0) m.Skip(creationOrderBytes);
        ulong heap = m.U64(), nameIndex = m.U64();
        return heap == Hdf5File.Undefined ? null : (heap, nameIndex);
    }

    /// A link message: a hard link's name and object address. Soft and external links are skipped: Keras never writes
    /// them, and following one could lead out of the file.
    internal static void ReadLink(Hdf5File file, Hdf5Cursor m, List<(string Name, ulong Address)> links)
    {
        int version = m.U8();
        if (version != 1) throw file.Unsupported($"link message version {version} (at 0x{m.Address:X})");
        int flags = m.U8();
        int linkType = (flags & 0x08) != 0 ? m.U8() : 0;
        if ((flags & 0x04) != 0) m.Skip(8);   // creation order
        if ((flags & 0x10) != 0) m.Skip(1);   // character set
        ulong nameLength = m.Unsigned(1 << (flags & 3));
        if (nameLength == 0 || nameLength > (ulong)m.Remaining) throw file.Corrupt($"the link at 0x{m.Address:X} has a name of {nameLength:N0} bytes, which its message cannot hold");
        file.Charge((long)nameLength, "a link name");
        string name = System.Text.Encoding.UTF8.GetString(m.Bytes((int)nameLength));
        if (linkType == 0) links.Add((name, m.U64()));
    }

    static List<(int, int, uint[])> ReadFilters(Hdf5File file, Hdf5Cursor m)
    {
        int version = m.U8();
        if (version is not (1 or 2)) throw file.Unsupported($"filter pipeline message version {version} (at 0x{m.Address:X})");
        int count = m.U8();
        if (version == 1) m.Skip(6);
        var filters = new List<(int, int, uint[])>();
        for (int i = 0; i < count; i++)
        {
            int id = m.U16();
            int nameLength = version == 1 || id >= 256 ? m.U16() : 0;
            int flags = m.U16();
            int values = m.U16();
            m.Skip(version == 1 ? (nameLength + 7) & ~7 : nameLength);
            if (values * 4 > m.Remaining) throw file.Corrupt($"filter {id} at 0x{m.Address:X} has more client values than its message holds");
            var data = new uint[values];
            for (int j = 0; j < values; j++) data[j] = m.U32();
            if (version == 1 && values % 2 == 1) m.Skip(4);
            filters.Add((id, flags, data));
        }
        return filters;
    }
}

/// The data layout message (versions 3 and 4): where a dataset's values are.
internal sealed class DataLayout
{
    public int Class;                 // 0 compact, 1 contiguous, 2 chunked
    public int CompactStart, CompactLength;
    public byte[] Message = [];
    public ulong Address;             // contiguous data, the chunk B-tree, or the single chunk
    public long Size;                 // contiguous: the data's size; single chunk: its filtered size
    public long[] ChunkDims = [];     // chunked: the chunk's shape, without the element size
    public int ChunkIndex;            // 0: B-tree v1 (layout 3); 1: single chunk (layout 4)
    public uint SingleChunkFilterMask;

    static readonly string[] IndexNames = ["", "single chunk", "implicit", "fixed array", "extensible array", "version 2 B-tree"];

    public static DataLayout Read(Hdf5File file, Hdf5Cursor m)
    {
        int version = m.U8();
        if (version is not (3 or 4)) throw file.Unsupported($"data layout message version {version} (at 0x{m.Address:X}); versions 3 and 4 are read");
        var layout = new DataLayout { Class = m.U8(), Message = m.Data };
        switch (layout.Class)
        {
            case 0:
                layout.CompactLength = m.U16();
                layout.CompactStart = m.Position;
                m.Skip(layout.CompactLength);
                break;
            case 1:
                layout.Address = m.U64();
                layout.Size = (long)Math.Min(m.U64(), long.MaxValue);
                break;
            case 2 when version == 3:
                int rank = m.U8() - 1;
                layout.Address = m.U64();
                layout.ChunkDims = ReadChunkDims(file, m, rank, 4);
                m.U32();   // the element size
                break;
            case 2:
                int flags = m.U8();
                rank = m.U8() - 1;
                int encoded = m.U8();
                if (encoded is < 1 or > 8) throw file.Corrupt($"the data layout message at 0x{m.Address:X} encodes chunk dimensions in {encoded} bytes");
                layout.ChunkDims = ReadChunkDims(file, m, rank, encoded);
                m.Unsigned(encoded);   // the element size
                layout.ChunkIndex = m.U8();
                if (layout.ChunkIndex != 1)
                    throw file.Unsupported($"chunked dataset with a {(layout.ChunkIndex < IndexNames.Length ? IndexNames[layout.ChunkIndex] : $"type {layout.ChunkIndex}")} chunk index (data layout message at 0x{m.Address:X}); " +
                        "this reader reads chunks indexed by a version 1 B-tree (HDF5's default format) or a single chunk");
                if ((flags & 0x02) != 0)
                {
                    layout.Size = m.Length("the filtered chunk's size");
                    layout.SingleChunkFilterMask = m.U32();
                }
                else layout.Size = -1;
                layout.Address = m.U64();
                break;
            case 3:
                throw file.Unsupported($"a virtual dataset (data layout message at 0x{m.Address:X})");
            default:
                throw file.Corrupt($"the data layout message at 0x{m.Address:X} has layout class {layout.Class}");
        }
        return layout;
    }

    static long[] ReadChunkDims(Hdf5File file, Hdf5Cursor m, int rank, int bytes)
    {
        if (rank is < 1 or > 32) throw file.Corrupt($"the data layout message at 0x{m.Address:X} has chunks of rank {rank}");
        var dims = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            ulong d = m.Unsigned(bytes);
            if (d is 0 or > int.MaxValue) throw file.Corrupt($"the data layout message at 0x{m.Address:X} has a chunk dimension of {d}");
            dims[i] = (long)d;
        }
        return dims;
    }
}
