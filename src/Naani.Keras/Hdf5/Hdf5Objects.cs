using System.Buffers.Binary;
using System.Text;

namespace Naani.Serialization.Hdf5;

internal enum Hdf5TypeClass
{
    FixedPoint = 0, FloatingPoint = 1, Time = 2, String = 3, BitField = 4, Opaque = 5, Compound = 6, Reference = 7,
    Enumerated = 8, VariableLength = 9, Array = 10,
}

/// A datatype message (0x03), as far as the reader needs it: the class, the size of an element, the byte order, and
/// for strings the padding and whether they are variable-length (in the global heap).
internal sealed record Hdf5Type(Hdf5TypeClass Class, int Size, bool BigEndian, bool IsIeeeFloat, int StringPadding, bool IsVariableLengthString)
{
    public override string ToString() => IsVariableLengthString ? "variable-length strings"
        : Class == Hdf5TypeClass.FloatingPoint ? $"{Size}-byte {(BigEndian ? "big" : "little")}-endian floats{(IsIeeeFloat ? "" : " (not IEEE)")}"
        : Class == Hdf5TypeClass.FixedPoint ? $"{Size}-byte integers"
        : Class == Hdf5TypeClass.String ? $"{Size}-byte strings"
        : $"{Class} values";

    public static Hdf5Type Read(Hdf5File file, Hdf5Cursor m, int depth)
    {
        int first = m.U8();
        var classBits = m.Bytes(3);
        int bits = classBits[0] | classBits[1] << 8 | classBits[2] << 16;
        uint size = m.U32();
        var type = (Hdf5TypeClass)(first & 0x0F);
        if (size == 0 || size > (1 << 20)) throw file.Corrupt($"the datatype at 0x{m.Address:X} has elements of {size:N0} bytes");
        switch (type)
        {
            case Hdf5TypeClass.FixedPoint:
                return new(type, (int)size, (bits & 1) != 0, false, 0, false);
            case Hdf5TypeClass.FloatingPoint:
                if ((bits & 0x40) != 0) throw file.Unsupported($"VAX-ordered floats (datatype at 0x{m.Address:X})");
                int offset = m.U16(), precision = m.U16();
                m.Skip(1);
                int exponent = m.U8();
                m.Skip(1);
                int mantissa = m.U8();
                bool ieee = offset == 0 && precision == size * 8 && (size, exponent, mantissa) is (2, 5, 10) or (4, 8, 23) or (8, 11, 52);
                return new(type, (int)size, (bits & 1) != 0, ieee, 0, false);
            case Hdf5TypeClass.String:
                return new(type, (int)size, false, false, bits & 0x0F, false);
            case Hdf5TypeClass.VariableLength when (bits & 0x0F) == 1:
                if (depth > 0) throw file.Corrupt($"the datatype at 0x{m.Address:X} nests variable-length types");
                var baseType = Read(file, m, depth + 1);
                if (baseType.Size != 1) throw file.Corrupt($"the variable-length string type at 0x{m.Address:X} has characters of {baseType.Size} bytes");
                return new(type, (int)size, false, false, (bits >> 4) & 0x0F, true);
            default:
                return new(type, (int)size, false, false, 0, false);
        }
    }
}

/// A dataspace message (0x01, versions 1 and 2): a scalar (shape []), a simple array, or null (no elements).
internal sealed record Hdf5Space(long[] Shape, long Count)
{
    public static Hdf5Space Read(Hdf5File file, Hdf5Cursor m)
    {
        int version = m.U8();
        if (version is not (1 or 2)) throw file.Unsupported($"dataspace message version {version} (at 0x{m.Address:X})");
        int rank = m.U8();
        m.U8();   // flags: maximum dimensions and (version 1) permutations follow; neither is needed
        int kind = 1;
        if (version == 1) m.Skip(5);
        else kind = m.U8();
        if (rank > 32) throw file.Corrupt($"the dataspace at 0x{m.Address:X} has rank {rank} (HDF5 allows 32)");
        if (kind == 2) return new([], 0);
        if (kind == 0 || rank == 0) return new([], 1);
        if (kind != 1) throw file.Corrupt($"the dataspace at 0x{m.Address:X} has type {kind}");
        var shape = new long[rank];
        ulong count = 1;
        for (int i = 0; i < rank; i++)
        {
            ulong d = m.U64();
            if (d > long.MaxValue || (d != 0 && count > long.MaxValue / d))
                throw file.Corrupt($"the dataspace at 0x{m.Address:X} has more than 2^63 elements");
            shape[i] = (long)d;
            count *= d;
        }
        return new(shape, (long)count);
    }
}

/// An attribute (message 0x0C, versions 1 to 3): its name, shape, type and values, kept as the bytes of the message.
internal sealed class Hdf5Attribute(Hdf5File file, string name, Hdf5Type type, Hdf5Space space, byte[] data)
{
    public string Name => name;
    public Hdf5Type Type => type;
    public long[] Shape => space.Shape;
    public long Count => space.Count;

    public static Hdf5Attribute Read(Hdf5File file, Hdf5Cursor m)
    {
        int version = m.U8();
        if (version is not (1 or 2 or 3)) throw file.Unsupported($"attribute message version {version} (at 0x{m.Address:X})");
        int flags = m.U8();
        if (version > 1 && (flags & 3) != 0) throw file.Unsupported($"an attribute with a shared datatype or dataspace (at 0x{m.Address:X})");
        int nameSize = m.U16(), typeSize = m.U16(), spaceSize = m.U16();
        if (version == 3) m.Skip(1);   // the name's character set: ASCII or UTF-8, decoded alike
        int Padded(int n) => version == 1 ? (n + 7) & ~7 : n;
        var nameBytes = m.Bytes(Padded(nameSize))[..nameSize];
        int nul = nameBytes.IndexOf((byte)0);
        string name = Encoding.UTF8.GetString(nul >= 0 ? nameBytes[..nul] : nameBytes);
        var type = Hdf5Type.Read(file, m.Sub(Padded(typeSize)), 0);
        var space = Hdf5Space.Read(file, m.Sub(Padded(spaceSize)));
        long size = space.Count * type.Size;
        if (space.Count > m.Remaining || size > m.Remaining)
            throw file.Corrupt($"the attribute '{name}' at 0x{m.Address:X} has {space.Count:N0} values of {type.Size} bytes, more than its message holds");
        return new Hdf5Attribute(file, name, type, space, m.Bytes((int)size).ToArray());
    }

    /// The values as strings: fixed-length ones cut at the padding, variable-length ones from the global heap.
    public string[] ReadStrings()
    {
        if (type.Class != Hdf5TypeClass.String && !type.IsVariableLengthString)
            throw new InvalidDataException($"'{file.Path}': attribute '{name}' holds {type}, not strings.");
        if (type.IsVariableLengthString && type.Size != 16)
            throw file.Corrupt($"attribute '{name}' has variable-length strings of {type.Size}-byte references; they take 16");
        var strings = new string[space.Count];
        for (int i = 0; i < strings.Length; i++)
        {
            ReadOnlySpan<byte> bytes;
            if (type.IsVariableLengthString)
            {
                var element = data.AsSpan(i * type.Size, 16);
                uint length = BinaryPrimitives.ReadUInt32LittleEndian(element);
                ulong collection = BinaryPrimitives.ReadUInt64LittleEndian(element[4..]);
                uint index = BinaryPrimitives.ReadUInt32LittleEndian(element[12..]);
                file.Charge(length, $"attribute '{name}'");
                if (length == 0) bytes = [];
                else
                {
                    bytes = file.GlobalHeapObject(collection, index, $"attribute '{name}'");
                    if (length > bytes.Length) throw file.Corrupt($"string {i} of attribute '{name}' has {length:N0} bytes but its global heap object {bytes.Length:N0}");
                    bytes = bytes[..(int)length];
                }
            }
            else bytes = data.AsSpan(i * type.Size, type.Size);
            strings[i] = Encoding.UTF8.GetString(Trim(bytes, type.StringPadding));
        }
        return strings;
    }

    /// Null-terminated and null-padded strings end at the first NUL; space-padded ones lose their trailing spaces.
    static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> bytes, int padding)
    {
        if (padding == 2) return bytes.TrimEnd((byte)' ');
        int nul = bytes.IndexOf((byte)0);
        return nul >= 0 ? bytes[..nul] : bytes;
    }
}

/// A group or a dataset, with its attributes (compact in the object header, or dense in a fractal heap).
internal abstract class Hdf5Object(Hdf5File file, ulong address, string name, ObjectHeader header)
{
    Dictionary<string, Hdf5Attribute>? attributes;

    /// The path the object was first reached by, from the root ("/dense_1/dense_1").
    public string Name => name;
    public ulong Address => address;
    protected Hdf5File File => file;
    internal ObjectHeader Header => header;

    public IReadOnlyDictionary<string, Hdf5Attribute> Attributes => attributes ??= ReadAttributes();

    Dictionary<string, Hdf5Attribute> ReadAttributes()
    {
        var all = new List<Hdf5Attribute>(header.Attributes);
        if (header.AttributeInfo is var (heap, nameIndex))
            foreach (var (bytes, at) in DenseStorage.Objects(file, heap, nameIndex, 8, $"the attributes of '{name}'"))
                all.Add(Hdf5Attribute.Read(file, new Hdf5Cursor(file, bytes, at, $"an attribute of '{name}'")));
        var byName = new Dictionary<string, Hdf5Attribute>();
        foreach (var attribute in all)
            if (!byName.TryAdd(attribute.Name, attribute))
                throw file.Corrupt($"'{name}' has two attributes named '{attribute.Name}'");
        return byName;
    }
}

internal sealed class Hdf5Group(Hdf5File file, ulong address, string name, ObjectHeader header) : Hdf5Object(file, address, name, header)
{
    Dictionary<string, ulong>? links;

    /// The names of the group's hard links and the addresses of their objects' headers, read on first use.
    public IReadOnlyDictionary<string, ulong> Links => links ??= ReadLinks();

    /// The group's members, each object's header read.
    public IReadOnlyDictionary<string, Hdf5Object> Children => Links.ToDictionary(l => l.Key, l => File.GetObject(l.Value, Join(l.Key)));

    string Join(string child) => Name == "/" ? "/" + child : $"{Name}/{child}";

    /// The object at a path relative to this group ("a/b/c"); null when a part of it is missing or not a group.
    public Hdf5Object? TryGet(string path)
    {
        Hdf5Object current = this;
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (current is not Hdf5Group group || !group.Links.TryGetValue(part, out var at)) return null;
            current = File.GetObject(at, group.Join(part));
        }
        return current;
    }

    Dictionary<string, ulong> ReadLinks()
    {
        var list = new List<(string Name, ulong Address)>(Header.Links);
        if (Header.SymbolTable is var (btree, heap)) SymbolTable.ReadLinks(File, btree, heap, list);
        if (Header.LinkInfo is var (fractalHeap, nameIndex))
            foreach (var (bytes, at) in DenseStorage.Objects(File, fractalHeap, nameIndex, 5, $"the links of group '{Name}'"))
                ObjectHeader.ReadLink(File, new Hdf5Cursor(File, bytes, at, $"a link of group '{Name}'"), list);
        var byName = new Dictionary<string, ulong>();
        foreach (var (linkName, at) in list)
            if (!byName.TryAdd(linkName, at))
                throw File.Corrupt($"group '{Name}' has two links named '{linkName}'");
        return byName;
    }
}

internal sealed class Hdf5Dataset(Hdf5File file, ulong address, string name, ObjectHeader header) : Hdf5Object(file, address, name, header)
{
    Hdf5Space Space => Header.Space ?? throw File.Corrupt($"dataset '{Name}' has no dataspace message");

    public long[] Shape => Space.Shape;
    public long Count => Space.Count;
    public Hdf5Type ElementType => Header.Type ?? throw File.Corrupt($"dataset '{Name}' has no datatype message");

    /// The values as floats, converted from IEEE floats of 2, 4 or 8 bytes in either byte order. destination must
    /// have exactly Count elements.
    public void ReadFloats(Span<float> destination)
    {
        var type = ElementType;
        if (type.Class != Hdf5TypeClass.FloatingPoint || !type.IsIeeeFloat)
            throw new InvalidDataException($"'{File.Path}': dataset '{Name}' holds {type}, not IEEE floats of 2, 4 or 8 bytes.");
        if (destination.Length != Count)
            throw new ArgumentException($"Dataset '{Name}' of '{File.Path}' has {Count:N0} values; the destination has room for {destination.Length:N0}.", nameof(destination));
        var bytes = DatasetReader.Read(File, Name, Header, Space, type);
        int size = type.Size;
        for (int i = 0; i < destination.Length; i++)
        {
            var x = bytes.AsSpan(i * size, size);
            destination[i] = size switch
            {
                2 => (float)BitConverter.UInt16BitsToHalf(type.BigEndian ? BinaryPrimitives.ReadUInt16BigEndian(x) : BinaryPrimitives.ReadUInt16LittleEndian(x)),
                4 => type.BigEndian ? BinaryPrimitives.ReadSingleBigEndian(x) : BinaryPrimitives.ReadSingleLittleEndian(x),
                _ => (float)(type.BigEndian ? BinaryPrimitives.ReadDoubleBigEndian(x) : BinaryPrimitives.ReadDoubleLittleEndian(x)),
            };
        }
    }
}
