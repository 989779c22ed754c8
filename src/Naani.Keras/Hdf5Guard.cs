using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Naani.Serialization;

/// A walk over an HDF5 file's group structure before PureHDF parses it, refusing the chains PureHDF would follow
/// without end. PureHDF follows object-header continuation blocks and group B-tree nodes recursively and remembers
/// none it has read, so a crafted file whose continuation points back into its own block (found by fuzzing: a 1.7 KB
/// file) recursed until the stack overflowed, which ends a .NET process. This walk starts at the root group and
/// follows, with a set of the blocks it has read, every object header's continuation blocks (versions 1 and 2), every
/// symbol-table group's B-tree (version 1) and symbol nodes, and every hard link of a compact group, to each child
/// object's header. A block reached twice along a chain, or more blocks than the file could hold, is refused as
/// corrupt naming its address. It reads a few bytes at a time at addresses checked against the file's length and
/// allocates nothing a header asks for. What it cannot interpret (an unknown superblock version, a signature that is
/// not there, an address past the end) it leaves to PureHDF, which reports those as corrupt itself; what it does not
/// walk: groups in dense storage (fractal heaps) and chunked datasets' B-trees, which Keras's files do not use.
static class Hdf5Guard
{
    static readonly byte[] Signature = [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a];
    const int MaxChunksPerHeader = 4096;

    public static void Check(string path)
    {
        using var handle = File.OpenHandle(path);
        new Walk(handle, RandomAccess.GetLength(handle), path).Run();
    }

    sealed class Walk(SafeFileHandle handle, long length, string path)
    {
        readonly HashSet<long> headers = [], chunks = [], nodes = [];
        readonly Queue<long> pending = new();
        readonly byte[] buffer = new byte[64];
        long budget = Math.Max(1024, length / 4);   // messages and nodes of at least 4 bytes: no file holds more
        long baseAddress;

        public void Run()
        {
            long superblock = FindSuperblock();
            if (superblock < 0) return;
            int version = Byte(superblock + 8);
            long root;
            if (version is 0 or 1)
            {
                if (Byte(superblock + 13) != 8 || Byte(superblock + 14) != 8) return;
                int at = version == 0 ? 24 : 28;
                baseAddress = Long(superblock + at);
                root = Long(superblock + at + 32 + 8);
            }
            else if (version is 2 or 3)
            {
                if (Byte(superblock + 9) != 8 || Byte(superblock + 10) != 8) return;
                baseAddress = Long(superblock + 12);
                root = Long(superblock + 36);
            }
            else return;
            Enqueue(root);
            while (pending.Count > 0) Header(pending.Dequeue());
        }

        long FindSuperblock()
        {
            for (long at = 0; at + 48 <= length; at = at == 0 ? 512 : at * 2)
            {
                if (RandomAccess.Read(handle, buffer.AsSpan(0, 8), at) == 8 && buffer.AsSpan(0, 8).SequenceEqual(Signature)) return at;
            }
            return -1;
        }

        void Enqueue(long address)
        {
            if (Valid(address, 16) && headers.Add(address)) pending.Enqueue(address);
        }

        bool Valid(long address, long size) => address >= 0 && baseAddress >= 0 && address + baseAddress <= length - size && address + baseAddress >= 0;

        int Byte(long at) => RandomAccess.Read(handle, buffer.AsSpan(0, 1), at) == 1 ? buffer[0] : -1;

        long Long(long at) => RandomAccess.Read(handle, buffer.AsSpan(0, 8), at) == 8 ? BinaryPrimitives.ReadInt64LittleEndian(buffer) : -1;

        int Read(long address, int count) => RandomAccess.Read(handle, buffer.AsSpan(0, count), address + baseAddress);

        void Spend(long address, string what)
        {
            if (--budget < 0)
                throw Corrupt($"{what} at 0x{address:x} is one more block than the file can hold: its structure loops");
        }

        /// A little-endian unsigned integer of 1, 2, 4 or 8 bytes from the start of the buffer.
        long Sized(int width) => width switch { 1 => buffer[0], 2 => BinaryPrimitives.ReadUInt16LittleEndian(buffer), 4 => BinaryPrimitives.ReadUInt32LittleEndian(buffer), _ => BinaryPrimitives.ReadInt64LittleEndian(buffer) };

        InvalidDataException Corrupt(string why) => new($"'{path}' is a corrupt HDF5 file: {why}.");

        void Header(long address)
        {
            if (Read(address, 16) < 16) return;
            bool v2 = buffer.AsSpan(0, 4).SequenceEqual("OHDR"u8);
            if (!v2 && buffer[0] != 1) return;
            var blocks = new List<(long Start, long Size)>();
            if (v2)
            {
                if (buffer[4] != 2) return;
                int flags = buffer[5], at = 6 + ((flags & 0x20) != 0 ? 16 : 0) + ((flags & 0x10) != 0 ? 4 : 0);
                int width = 1 << (flags & 3);
                if (Read(address + at, width) < width) return;
                long size = Sized(width);
                blocks.Add((address + at + width, size));
                chunks.Add(address);
                Messages(address, blocks, flags, v2: true);
            }
            else
            {
                long size = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(8));
                blocks.Add((address + 16, size));
                chunks.Add(address + 16);
                Messages(address, blocks, 0, v2: false);
            }
        }

        /// The messages of an object header, block by block: continuation blocks are queued (each read once), symbol
        /// tables and hard links lead to the children's headers.
        void Messages(long header, List<(long Start, long Size)> blocks, int flags, bool v2)
        {
            for (int b = 0; b < blocks.Count; b++)
            {
                var (start, size) = blocks[b];
                if (b >= MaxChunksPerHeader) throw Corrupt($"the object header at 0x{header:x} continues into more than {MaxChunksPerHeader} blocks");
                if (size < 0 || !Valid(start, 0) || start + baseAddress + size > length) return;
                long end = start + size - (v2 ? 4 : 0);   // version 2 blocks end in a checksum
                long at = start;
                int prefix = v2 ? 4 + ((flags & 0x04) != 0 ? 2 : 0) : 8;
                while (at + prefix <= end)
                {
                    if (Read(at, prefix) < prefix) return;
                    int type = v2 ? buffer[0] : BinaryPrimitives.ReadUInt16LittleEndian(buffer);
                    int messageSize = v2 ? BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(1)) : BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(2));
                    long data = at + prefix;
                    if (data + messageSize > end) return;
                    Spend(at, "a header message");
                    switch (type)
                    {
                        case 0x10 when messageSize >= 16 && Read(data, 16) == 16:
                            long next = BinaryPrimitives.ReadInt64LittleEndian(buffer), nextSize = BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(8));
                            if (!chunks.Add(next))
                                throw Corrupt($"the object header at 0x{header:x} continues into the block at 0x{next:x}, which was read before: its continuation messages loop");
                            if (v2)
                            {
                                if (!Valid(next, 8) || Read(next, 4) < 4 || !buffer.AsSpan(0, 4).SequenceEqual("OCHK"u8)) break;
                                blocks.Add((next + 4, nextSize - 4));
                            }
                            else blocks.Add((next, nextSize));
                            break;
                        case 0x11 when messageSize >= 16 && Read(data, 16) == 16:
                            long tree = BinaryPrimitives.ReadInt64LittleEndian(buffer), heap = BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(8));
                            LocalHeap(heap);
                            GroupTree(tree);
                            break;
                        case 0x0C when messageSize >= 8:
                            Attribute(data, messageSize);
                            break;
                        case 0x06 when messageSize >= 4:
                            Link(data, messageSize);
                            break;
                    }
                    at = data + messageSize;
                }
            }
        }

        /// A symbol-table group's local heap (the names of its members): its data segment must lie inside the file,
        /// checked before PureHDF allocates a buffer of the size it states.
        void LocalHeap(long heap)
        {
            if (!Valid(heap, 32) || Read(heap, 32) < 32 || !buffer.AsSpan(0, 4).SequenceEqual("HEAP"u8)) return;
            long size = BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(8)), segment = BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(24));
            if (size < 0 || size > length || !Valid(segment, size))
                throw Corrupt($"the local heap at 0x{heap:x} says its data is {size} bytes at 0x{segment:x}, past the end of the {length}-byte file");
        }

        /// An attribute message holds its values inline: element size times element count must fit in what is left of
        /// the message, checked before PureHDF allocates a buffer of that product (found by fuzzing: a layer_names
        /// whose dimensions asked for 1.3 GB in a 19 KB file).
        void Attribute(long data, int size)
        {
            if (Read(data, 8) < 8) return;
            int version = buffer[0];
            if (version is < 1 or > 3) return;
            int nameSize = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(2));
            int typeSize = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(4));
            int spaceSize = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(6));
            static int Pad(int n, int version) => version == 1 ? (n + 7) & ~7 : n;
            long type = 8 + (version == 3 ? 1 : 0) + Pad(nameSize, version);
            long space = type + Pad(typeSize, version);
            long values = space + Pad(spaceSize, version);
            if (typeSize < 8 || spaceSize < 4 || values > size) return;
            if (Read(data + type + 4, 4) < 4) return;
            long elementSize = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
            if (Read(data + space, 4) < 4) return;
            int spaceVersion = buffer[0], rank = buffer[1];
            long dims = space + (spaceVersion == 1 ? 8 : 4);
            if (spaceVersion == 2 && buffer[3] != 1) return;   // scalar or null: one element or none
            if (rank > 32 || dims + rank * 8L > values) return;
            long count = 1;
            for (int i = 0; i < rank; i++)
            {
                if (Read(data + dims + i * 8L, 8) < 8) return;
                long d = BinaryPrimitives.ReadInt64LittleEndian(buffer);
                if (d < 0 || (d > 0 && count > (size - values + 1) / d)) { count = long.MaxValue; break; }
                count *= d;
            }
            if (count != long.MaxValue && (elementSize == 0 || count <= (size - values) / elementSize)) return;
            throw Corrupt($"an attribute at 0x{data:x} says it holds {(count == long.MaxValue ? "more" : count.ToString(System.Globalization.CultureInfo.InvariantCulture))} values of {elementSize} bytes, more than the {size - values} bytes its message has");
        }

        /// A compact group's link message: a hard link's target header is queued.
        void Link(long data, int size)
        {
            if (Read(data, Math.Min(size, 64)) < 2) return;
            int version = buffer[0], flags = buffer[1], at = 2;
            if (version != 1) return;
            int type = 0;
            if ((flags & 0x08) != 0) type = buffer[at++];
            if ((flags & 0x04) != 0) at += 8;
            if ((flags & 0x10) != 0) at++;
            int width = 1 << (flags & 3);
            if (type != 0 || at + width > size || Read(data + at, width) < width) return;
            long nameLength = Sized(width);
            long target = at + width + nameLength;
            if (nameLength < 0 || target + 8 > size || Read(data + target, 8) < 8) return;
            Enqueue(BinaryPrimitives.ReadInt64LittleEndian(buffer));
        }

        /// A symbol-table group: its version 1 B-tree, node by node (each read once), down to the symbol nodes, whose
        /// entries' headers are queued.
        void GroupTree(long root)
        {
            var stack = new Stack<long>();
            stack.Push(root);
            while (stack.Count > 0)
            {
                long node = stack.Pop();
                if (!Valid(node, 24) || Read(node, 24) < 24) continue;
                if (buffer.AsSpan(0, 4).SequenceEqual("SNOD"u8))
                {
                    if (!nodes.Add(node)) throw Corrupt($"the group symbol node at 0x{node:x} is reached twice: its group's B-tree loops");
                    Spend(node, "a group symbol node");
                    int symbols = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(6));
                    for (int i = 0; i < symbols; i++)
                        if (Valid(node + 8 + i * 40L, 40) && Read(node + 8 + i * 40L + 8, 8) == 8)
                            Enqueue(BinaryPrimitives.ReadInt64LittleEndian(buffer));
                    continue;
                }
                if (!buffer.AsSpan(0, 4).SequenceEqual("TREE"u8) || buffer[4] != 0) continue;
                if (!nodes.Add(node)) throw Corrupt($"the group B-tree node at 0x{node:x} is reached twice: its children loop");
                Spend(node, "a group B-tree node");
                int entries = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(6));
                // Keys and children alternate after the 24-byte node header: key 0, child 0, key 1, child 1, ...
                for (int i = 0; i < entries; i++)
                {
                    long child = node + 24 + 8 + i * 16L;
                    if (!Valid(child, 8) || Read(child, 8) < 8) break;
                    stack.Push(BinaryPrimitives.ReadInt64LittleEndian(buffer));
                }
            }
        }
    }
}
