using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Text;

namespace Naani.Serialization.Hdf5;

/// Version 1 B-trees ("TREE"): the nodes of a group's symbol table (type 0) and of a dataset's chunks (type 1),
/// walked with an explicit stack. A child's level must be one less than its parent's, and no node is visited twice,
/// so a node pointing back at itself or at an ancestor is refused instead of looping.
internal static class BTreeV1
{
    /// Calls leaf(key, child) for each entry of the leaf nodes; key is the key before the child.
    public static void Walk(Hdf5File file, ulong root, int nodeType, int keySize, string what, Action<Hdf5Cursor, ulong> leaf)
    {
        var visited = new HashSet<ulong>();
        var stack = new Stack<(ulong Address, int Level, ulong Parent)>();
        stack.Push((root, -1, Hdf5File.Undefined));
        while (stack.Count > 0)
        {
            var (address, expectedLevel, parent) = stack.Pop();
            if (address == parent) throw file.Corrupt($"the B-tree node at 0x{address:X} of {what} has itself as a child");
            if (!visited.Add(address)) throw file.Corrupt($"the B-tree node at 0x{address:X} of {what} is reached a second time (from 0x{parent:X})");
            var head = new Hdf5Cursor(file, file.ReadMetadata(address, 24, $"a B-tree node of {what}"), address, $"the B-tree node of {what}");
            head.Signature("TREE");
            int type = head.U8(), level = head.U8(), entries = head.U16();
            if (type != nodeType) throw file.Corrupt($"the B-tree node at 0x{address:X} of {what} has type {type}, expected {nodeType}");
            if (expectedLevel >= 0 && level != expectedLevel)
                throw file.Corrupt($"the B-tree node at 0x{address:X} of {what} has level {level} but its parent at 0x{parent:X} expects {expectedLevel}");
            long size = 24 + (long)entries * (keySize + 8) + keySize;
            var node = new Hdf5Cursor(file, file.ReadMetadata(address, size, $"a B-tree node of {what}"), address, $"the B-tree node of {what}");
            node.Skip(24);
            for (int i = 0; i < entries; i++)
            {
                var key = node.Sub(keySize);
                ulong child = node.U64();
                if (level == 0) leaf(key, child);
                else stack.Push((child, level - 1, address));
            }
        }
    }
}

/// A group in the old format: a B-tree of symbol table nodes ("SNOD") whose entries name their links by offset into
/// the group's local heap ("HEAP").
internal static class SymbolTable
{
    public static void ReadLinks(Hdf5File file, ulong btree, ulong heapAddress, List<(string, ulong)> links)
    {
        var heap = new Hdf5Cursor(file, file.ReadMetadata(heapAddress, 32, "a local heap"), heapAddress, "the local heap");
        heap.Signature("HEAP");
        if (heap.U8() != 0) throw file.Unsupported($"local heap version {heap.Data[4]} at 0x{heapAddress:X}");
        heap.Skip(3);
        long size = heap.Length("the data segment's size");
        heap.Skip(8);   // the free list
        byte[] names = file.ReadMetadata(heap.U64(), size, $"the data segment of the local heap at 0x{heapAddress:X}");

        var visited = new HashSet<ulong>();
        BTreeV1.Walk(file, btree, 0, 8, $"the group whose local heap is at 0x{heapAddress:X}", (_, nodeAddress) =>
        {
            if (!visited.Add(nodeAddress)) throw file.Corrupt($"the symbol table node at 0x{nodeAddress:X} is in its group's B-tree twice");
            var head = new Hdf5Cursor(file, file.ReadMetadata(nodeAddress, 8, "a symbol table node"), nodeAddress, "the symbol table node");
            head.Signature("SNOD");
            if (head.U8() != 1) throw file.Unsupported($"symbol table node version {head.Data[4]} at 0x{nodeAddress:X}");
            head.Skip(1);
            int count = head.U16();
            var node = new Hdf5Cursor(file, file.ReadMetadata(nodeAddress, 8 + 40L * count, "a symbol table node"), nodeAddress, "the symbol table node");
            node.Skip(8);
            for (int i = 0; i < count; i++)
            {
                ulong nameOffset = node.U64(), header = node.U64();
                node.Skip(24);   // the cache type and the scratch pad: a copy of what the object header says
                if (nameOffset >= (ulong)names.Length) throw file.Corrupt($"entry {i} of the symbol table node at 0x{nodeAddress:X} names its link at offset {nameOffset:N0} of a local heap of {names.Length:N0} bytes");
                var name = names.AsSpan((int)nameOffset);
                int nul = name.IndexOf((byte)0);
                if (nul < 0) throw file.Corrupt($"the link name at offset {nameOffset:N0} of the local heap at 0x{heapAddress:X} has no terminating NUL");
                file.Charge(nul, "a link name");
                links.Add((Encoding.UTF8.GetString(name[..nul]), header));
            }
        });
    }
}

/// Dense storage of links and attributes: the objects of a fractal heap ("FRHP"), found through the records of its
/// version 2 B-tree name index ("BTHD"), which hold the objects' heap IDs.
internal static class DenseStorage
{
    /// The bytes of each object the index lists, with the address of the block they are in (for messages).
    public static List<(byte[] Bytes, ulong Address)> Objects(Hdf5File file, ulong heapAddress, ulong indexAddress, int recordType, string what)
    {
        var heap = new FractalHeap(file, heapAddress, what);
        var objects = new List<(byte[], ulong)>();
        int idAt = recordType == 5 ? 4 : 0;   // link name records: hash, heap ID; attribute name records: heap ID first
        BTreeV2.Walk(file, indexAddress, recordType, what, record =>
        {
            if (record.Length < idAt + heap.IdLength) throw file.Corrupt($"the records of the name index at 0x{indexAddress:X} of {what} are too short for a heap ID");
            objects.Add(heap.Get(record.Slice(idAt, heap.IdLength)));
        });
        return objects;
    }
}

/// A fractal heap: a doubling table of direct blocks ("FHDB") under indirect blocks ("FHIB"). The block tree is walked
/// once, iteratively, checking each block's offset in the heap and visiting none twice; an object is then looked up
/// among the direct blocks by its offset.
internal sealed class FractalHeap
{
    readonly Hdf5File file;
    readonly ulong address;
    readonly string what;
    readonly int offsetSize, lengthSize, width;
    readonly bool checksummedBlocks;
    readonly long startSize;
    readonly List<(ulong Offset, long Size, ulong Address)> directBlocks = [];
    readonly Dictionary<ulong, byte[]> blocks = [];

    public int IdLength { get; }

    public FractalHeap(Hdf5File file, ulong address, string what)
    {
        (this.file, this.address, this.what) = (file, address, what);
        var h = new Hdf5Cursor(file, file.ReadMetadata(address, 146, $"the fractal heap of {what}"), address, "the fractal heap header");
        h.Signature("FRHP");
        if (h.U8() != 0) throw file.Unsupported($"fractal heap version {h.Data[4]} at 0x{address:X}");
        IdLength = h.U16();
        if (h.U16() != 0) throw file.Unsupported($"a fractal heap with I/O filters (at 0x{address:X})");
        checksummedBlocks = (h.U8() & 0x02) != 0;
        uint maxObject = h.U32();
        h.Skip(8 * 12);   // huge-object and free-space bookkeeping, counts and sizes
        width = h.U16();
        startSize = (long)Math.Min(h.U64(), 1UL << 40);
        long maxDirect = (long)Math.Min(h.U64(), 1UL << 40);
        int heapBits = h.U16();
        h.Skip(2);   // the starting number of rows
        ulong root = h.U64();
        int rows = h.U16();
        if (h.U32() != Lookup3.Hash(h.Data.AsSpan(0, 142))) throw file.Corrupt($"the fractal heap header at 0x{address:X}'s checksum does not match its bytes");
        if (IdLength is < 2 or > 64 || width is < 1 or > 1024 || !BitOperations.IsPow2(width) || startSize < 64 || !BitOperations.IsPow2(startSize)
            || maxDirect < startSize || maxDirect > (1L << 32) || !BitOperations.IsPow2(maxDirect) || heapBits is < 8 or > 64 || rows > 64)
            throw file.Corrupt($"the fractal heap header at 0x{address:X} has an impossible doubling table (width {width}, blocks of {startSize:N0} to {maxDirect:N0} bytes, {heapBits}-bit offsets, {rows} rows)");
        offsetSize = (heapBits + 7) / 8;
        lengthSize = Math.Min((BitOperations.Log2((ulong)maxDirect) + 7) / 8, BitOperations.Log2(maxObject) / 8 + 1);
        int directRows = BitOperations.Log2((ulong)maxDirect) - BitOperations.Log2((ulong)startSize) + 2;
        if (root == Hdf5File.Undefined) return;   // an empty heap
        if (rows == 0) directBlocks.Add((0, startSize, root));
        else ReadIndirectBlocks(root, rows, directRows);
    }

    long RowSize(int row) => row == 0 ? startSize : startSize << (row - 1);
    ulong RowOffset(int row) => row == 0 ? 0 : (ulong)(width * startSize) << (row - 1);

    void ReadIndirectBlocks(ulong root, int rootRows, int directRows)
    {
        var visited = new HashSet<ulong>();
        var stack = new Stack<(ulong Address, int Rows, ulong Offset)>();
        stack.Push((root, rootRows, 0));
        while (stack.Count > 0)
        {
            var (at, rows, offset) = stack.Pop();
            if (!visited.Add(at)) throw file.Corrupt($"the indirect block at 0x{at:X} of the fractal heap at 0x{address:X} is reached a second time");
            long size = 13 + offsetSize + (long)rows * width * 8 + 4;
            var b = new Hdf5Cursor(file, file.ReadMetadata(at, size, $"an indirect block of the fractal heap of {what}"), at, "the fractal heap indirect block");
            b.Signature("FHIB");
            b.Skip(1 + 8);   // version, the heap header's address
            if (b.Unsigned(offsetSize) != offset) throw file.Corrupt($"the indirect block at 0x{at:X} of the fractal heap at 0x{address:X} says it starts at another heap offset than its parent says");
            for (int r = 0; r < rows; r++)
                for (int col = 0; col < width; col++)
                {
                    ulong child = b.U64();
                    if (child == Hdf5File.Undefined) continue;
                    ulong childOffset = offset + RowOffset(r) + (ulong)(col * RowSize(r));
                    if (r < directRows) directBlocks.Add((childOffset, RowSize(r), child));
                    else
                    {
                        int childRows = r - BitOperations.Log2((uint)width);
                        if (childRows is < 1 or > 64) throw file.Corrupt($"the indirect block at 0x{at:X} of the fractal heap at 0x{address:X} has a child indirect block in row {r}, which cannot hold one");
                        stack.Push((child, childRows, childOffset));
                    }
                }
            if (b.U32() != Lookup3.Hash(b.Data.AsSpan(0, (int)size - 4))) throw file.Corrupt($"the fractal heap indirect block at 0x{at:X}'s checksum does not match its bytes");
        }
    }

    /// The object of a heap ID: managed (in a direct block) or tiny (in the ID itself).
    public (byte[] Bytes, ulong Address) Get(ReadOnlySpan<byte> id)
    {
        int kind = (id[0] >> 4) & 3;
        if (id[0] >> 6 != 0) throw file.Corrupt($"a heap ID of the fractal heap at 0x{address:X} has version {id[0] >> 6}");
        if (kind == 2)
        {
            bool extended = IdLength > 18;
            int length = (extended ? (id[0] & 0x0F) << 8 | id[1] : id[0] & 0x0F) + 1;
            int start = extended ? 2 : 1;
            if (start + length > id.Length) throw file.Corrupt($"a tiny object of the fractal heap at 0x{address:X} is longer than its heap ID");
            return (id.Slice(start, length).ToArray(), address);
        }
        if (kind != 0) throw file.Unsupported($"a huge object in the fractal heap at 0x{address:X} ({what})");
        if (1 + offsetSize + lengthSize > id.Length) throw file.Corrupt($"the heap IDs of the fractal heap at 0x{address:X} are too short");
        var c = new Hdf5Cursor(file, id.ToArray(), address, "a heap ID");
        c.Skip(1);
        ulong offset = c.Unsigned(offsetSize), objectLength = c.Unsigned(lengthSize);
        foreach (var (blockOffset, size, at) in directBlocks)
        {
            if (offset < blockOffset || offset - blockOffset >= (ulong)size) continue;
            if (objectLength > (ulong)size - (offset - blockOffset))
                throw file.Corrupt($"an object at heap offset {offset:N0} of the fractal heap at 0x{address:X} runs past its direct block");
            file.Charge((long)objectLength, $"an object of the fractal heap of {what}");
            var block = DirectBlock(at, size, blockOffset);
            return (block.AsSpan((int)(offset - blockOffset), (int)objectLength).ToArray(), at);
        }
        throw file.Corrupt($"a heap ID refers to offset {offset:N0} of the fractal heap at 0x{address:X}, which no direct block holds");
    }

    byte[] DirectBlock(ulong at, long size, ulong offset)
    {
        if (blocks.TryGetValue(at, out var known)) return known;
        var block = file.ReadMetadata(at, size, $"a direct block of the fractal heap of {what}");
        var c = new Hdf5Cursor(file, block, at, "the fractal heap direct block");
        c.Signature("FHDB");
        c.Skip(1 + 8);
        if (c.Unsigned(offsetSize) != offset) throw file.Corrupt($"the direct block at 0x{at:X} of the fractal heap at 0x{address:X} says it starts at another heap offset than its parent says");
        if (checksummedBlocks)
        {
            int checksumAt = c.Position;
            uint stored = c.U32();
            BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(checksumAt), 0);
            if (stored != Lookup3.Hash(block)) throw file.Corrupt($"the fractal heap direct block at 0x{at:X}'s checksum does not match its bytes");
        }
        blocks[at] = block;
        return block;
    }
}

/// Version 2 B-trees ("BTHD" header, "BTIN" internal and "BTLF" leaf nodes): every record, internal nodes' included.
/// The sizes of the child pointers' record counts follow from the node size, as HDF5 computes them (H5B2__hdr_init).
internal static class BTreeV2
{
    const int Prefix = 4 + 1 + 1 + 4;   // signature, version, type, checksum

    static int EncodedSize(ulong n) => BitOperations.Log2(n) / 8 + 1;

    public static void Walk(Hdf5File file, ulong headerAddress, int recordType, string what, Action<ReadOnlySpan<byte>> record)
    {
        var h = new Hdf5Cursor(file, file.ReadMetadata(headerAddress, 38, $"the name index of {what}"), headerAddress, "the v2 B-tree header");
        h.Signature("BTHD");
        if (h.U8() != 0) throw file.Unsupported($"v2 B-tree version {h.Data[4]} at 0x{headerAddress:X}");
        int type = h.U8();
        uint nodeSize = h.U32();
        int recordSize = h.U16(), depth = h.U16();
        h.Skip(2);
        ulong root = h.U64();
        int rootRecords = h.U16();
        h.Skip(8);
        if (h.U32() != Lookup3.Hash(h.Data.AsSpan(0, 34))) throw file.Corrupt($"the v2 B-tree header at 0x{headerAddress:X}'s checksum does not match its bytes");
        if (type != recordType) throw file.Corrupt($"the v2 B-tree at 0x{headerAddress:X} holds records of type {type}, expected {recordType}");
        if (recordSize == 0 || nodeSize < Prefix + recordSize || nodeSize > file.Length || depth > 8)
            throw file.Corrupt($"the v2 B-tree header at 0x{headerAddress:X} has nodes of {nodeSize:N0} bytes, records of {recordSize} and depth {depth}");

        var maxRecords = new ulong[depth + 1];
        var totalSize = new int[depth + 1];
        maxRecords[0] = (nodeSize - Prefix) / (uint)recordSize;
        ulong cumulative = maxRecords[0];
        int countSize = EncodedSize(maxRecords[0]);
        for (int d = 1; d <= depth; d++)
        {
            int pointer = 8 + countSize + (d > 1 ? totalSize[d - 1] : 0);
            if (nodeSize < Prefix + pointer + recordSize + pointer) throw file.Corrupt($"the v2 B-tree at 0x{headerAddress:X} has nodes too small for depth {depth}");
            maxRecords[d] = (nodeSize - (uint)(Prefix + pointer)) / (uint)(recordSize + pointer);
            cumulative = (maxRecords[d] + 1) * cumulative + maxRecords[d];
            if (cumulative > 1UL << 56) throw file.Corrupt($"the v2 B-tree at 0x{headerAddress:X} is deeper than any file could need");
            totalSize[d] = EncodedSize(cumulative);
        }

        if (root == Hdf5File.Undefined || rootRecords == 0) return;
        var visited = new HashSet<ulong>();
        var stack = new Stack<(ulong Address, int Records, int Depth)>();
        stack.Push((root, rootRecords, depth));
        while (stack.Count > 0)
        {
            var (at, records, d) = stack.Pop();
            if (!visited.Add(at)) throw file.Corrupt($"the v2 B-tree node at 0x{at:X} of {what} is reached a second time");
            if ((ulong)records > maxRecords[d]) throw file.Corrupt($"the v2 B-tree node at 0x{at:X} of {what} says it has {records} records; it can hold {maxRecords[d]}");
            int pointer = d == 0 ? 0 : 8 + countSize + (d > 1 ? totalSize[d - 1] : 0);
            long size = 6 + (long)records * recordSize + (d == 0 ? 0 : (records + 1L) * pointer) + 4;
            var node = new Hdf5Cursor(file, file.ReadMetadata(at, size, $"a v2 B-tree node of {what}"), at, "the v2 B-tree node");
            node.Signature(d == 0 ? "BTLF" : "BTIN");
            node.Skip(1);
            if (node.U8() != type) throw file.Corrupt($"the v2 B-tree node at 0x{at:X} of {what} has another record type than its header");
            for (int i = 0; i < records; i++) record(node.Bytes(recordSize));
            for (int i = 0; d > 0 && i <= records; i++)
            {
                ulong child = node.U64();
                int childRecords = (int)Math.Min(node.Unsigned(countSize), int.MaxValue);
                if (d > 1) node.Skip(totalSize[d - 1]);
                stack.Push((child, childRecords, d - 1));
            }
            if (node.U32() != Lookup3.Hash(node.Data.AsSpan(0, (int)size - 4))) throw file.Corrupt($"the v2 B-tree node at 0x{at:X}'s checksum does not match its bytes");
        }
    }
}

/// A dataset's values as the bytes of its elements in row-major order: from the layout message (compact), one
/// block (contiguous), or chunks, each unfiltered (shuffle, deflate) and placed where its offsets say.
internal static class DatasetReader
{
    public static byte[] Read(Hdf5File file, string name, ObjectHeader header, Hdf5Space space, Hdf5Type type)
    {
        var layout = header.Layout!;
        if (space.Count > Array.MaxLength / type.Size)
            throw new InvalidDataException($"'{file.Path}': dataset '{name}' has {space.Count:N0} values of {type.Size} bytes, more than one read can hold.");
        long bytes = space.Count * type.Size;
        switch (layout.Class)
        {
            case 0:
                if (layout.CompactLength < bytes) throw file.Corrupt($"dataset '{name}' keeps {layout.CompactLength:N0} bytes in its header for {bytes:N0} bytes of values");
                return layout.Message.AsSpan(layout.CompactStart, (int)bytes).ToArray();
            case 1:
                if (layout.Address == Hdf5File.Undefined) throw new InvalidDataException($"'{file.Path}': dataset '{name}' has no values: its data was never written.");
                if (layout.Size < bytes) throw file.Corrupt($"dataset '{name}' stores {layout.Size:N0} bytes for {bytes:N0} bytes of values");
                return file.ReadBytes(layout.Address, bytes, $"the values of dataset '{name}'");
            default:
                return ReadChunks(file, name, header, space, type, layout, bytes);
        }
    }

    static byte[] ReadChunks(Hdf5File file, string name, ObjectHeader header, Hdf5Space space, Hdf5Type type, DataLayout layout, long bytes)
    {
        var shape = space.Shape;
        var chunk = layout.ChunkDims;
        if (chunk.Length != shape.Length) throw file.Corrupt($"dataset '{name}' has rank {shape.Length} but chunks of rank {chunk.Length}");
        long chunkBytes = type.Size;
        foreach (var d in chunk)
        {
            chunkBytes *= d;
            if (chunkBytes > bytes + (64L << 20) || chunkBytes > Array.MaxLength)
                throw file.Unsupported($"dataset '{name}' has chunks ({string.Join(" x ", chunk)}) far larger than its {bytes:N0} bytes of values");
        }
        foreach (var (id, _, _) in header.Filters)
            if (id is not (1 or 2)) throw file.Unsupported($"dataset '{name}' uses filter {id}{id switch { 3 => " (Fletcher-32)", 4 => " (SZIP)", 5 => " (N-bit)", 6 => " (scale-offset)", 32001 => " (Blosc)", 32004 => " (LZ4)", 32015 => " (Zstandard)", 307 => " (bzip2)", _ => "" }}; only deflate (gzip) and shuffle are read");

        var output = new byte[bytes];
        var seen = new HashSet<string>();
        void Chunk(ulong at, long size, uint mask, long[] offset)
        {
            for (int i = 0; i < shape.Length; i++)
                if (offset[i] < 0 || offset[i] >= shape[i] || offset[i] % chunk[i] != 0)
                    throw file.Corrupt($"a chunk of dataset '{name}' (at 0x{at:X}) has offset ({string.Join(", ", offset)}), outside its shape ({string.Join(", ", shape)}) or off the chunk grid");
            if (!seen.Add(string.Join(",", offset))) throw file.Corrupt($"dataset '{name}' has two chunks at offset ({string.Join(", ", offset)})");
            var data = Unfilter(file, name, file.ReadBytes(at, size, $"a chunk of dataset '{name}'"), header.Filters, mask, chunkBytes, type.Size, at);
            Place(data, offset, shape, chunk, type.Size, output);
        }

        if (layout.ChunkIndex == 1)
        {
            long size = layout.Size >= 0 ? layout.Size : chunkBytes;
            if (layout.Address != Hdf5File.Undefined) Chunk(layout.Address, size, layout.SingleChunkFilterMask, new long[shape.Length]);
            return output;
        }
        int rank = shape.Length;
        BTreeV1.Walk(file, layout.Address, 1, 4 + 4 + 8 * (rank + 1), $"dataset '{name}'", (key, child) =>
        {
            long size = key.U32();
            uint mask = key.U32();
            var offset = new long[rank];
            for (int i = 0; i < rank; i++) offset[i] = (long)Math.Min(key.U64(), long.MaxValue);
            Chunk(child, size, mask, offset);
        });
        return output;
    }

    /// Undoes the filters in reverse order, skipping those the chunk's mask says were not applied.
    static byte[] Unfilter(Hdf5File file, string name, byte[] data, List<(int Id, int Flags, uint[] ClientData)> filters, uint mask, long chunkBytes, int elementSize, ulong at)
    {
        for (int i = filters.Count - 1; i >= 0; i--)
        {
            if ((mask & (1u << i)) != 0) continue;
            if (filters[i].Id == 1)
            {
                var inflated = new byte[chunkBytes];
                int n = 0;
                try
                {
                    using var z = new ZLibStream(new MemoryStream(data), CompressionMode.Decompress);
                    n = z.ReadAtLeast(inflated, inflated.Length, throwOnEndOfStream: false);
                    if (n == inflated.Length && z.ReadByte() >= 0) n = -1;
                }
                catch (InvalidDataException e)
                {
                    throw file.Corrupt($"the deflated chunk at 0x{at:X} of dataset '{name}' is not a valid zlib stream ({e.Message})");
                }
                if (n != inflated.Length) throw file.Corrupt($"the deflated chunk at 0x{at:X} of dataset '{name}' does not inflate to the {chunkBytes:N0} bytes of a chunk");
                data = inflated;
            }
            else
            {
                int size = filters[i].ClientData.Length > 0 ? (int)Math.Min(filters[i].ClientData[0], int.MaxValue) : elementSize;
                if (size > 1) data = Unshuffle(data, size);
            }
        }
        if (data.Length != chunkBytes) throw file.Corrupt($"the chunk at 0x{at:X} of dataset '{name}' has {data.Length:N0} bytes; its chunks have {chunkBytes:N0}");
        return data;
    }

    /// The shuffle filter stores byte j of every element together: x[i*size + j] was at y[j*n + i].
    static byte[] Unshuffle(byte[] y, int size)
    {
        int n = y.Length / size;
        var x = new byte[y.Length];
        for (int j = 0; j < size; j++)
            for (int i = 0; i < n; i++)
                x[i * size + j] = y[j * n + i];
        y.AsSpan(n * size).CopyTo(x.AsSpan(n * size));
        return x;
    }

    /// Copies the part of a chunk inside the dataset, one run along the last dimension at a time.
    static void Place(byte[] data, long[] offset, long[] shape, long[] chunk, int elementSize, byte[] output)
    {
        int rank = shape.Length;
        if (rank == 0)
        {
            data.AsSpan(0, output.Length).CopyTo(output);
            return;
        }
        var index = new long[rank];   // the position within the chunk; the last dimension is copied as a run
        long run = Math.Min(chunk[^1], shape[^1] - offset[^1]) * elementSize;
        while (true)
        {
            bool inside = true;
            long source = 0, target = 0;
            for (int i = 0; i < rank; i++)
            {
                if (offset[i] + index[i] >= shape[i]) inside = false;
                source = source * chunk[i] + index[i];
                target = target * shape[i] + offset[i] + index[i];
            }
            if (inside) data.AsSpan((int)(source * elementSize), (int)run).CopyTo(output.AsSpan((int)(target * elementSize)));
            int d = rank - 2;
            while (d >= 0 && ++index[d] == chunk[d]) index[d--] = 0;
            if (d < 0) return;
        }
    }
}
