using System.Buffers.Binary;
using Naani.Serialization.Hdf5;

namespace Naani.Tests.Serialization;

/// Naani's HDF5 reader against the files Reference/make_hdf5_fixtures.py wrote with h5py (HDF5 1.10), and against
/// small files crafted here, each broken in one way, which it must refuse naming the fault without reading or
/// allocating more than the file holds.
public sealed class Hdf5ReaderTests : IDisposable
{
    static readonly string Reference = Path.Combine(AppContext.BaseDirectory, "Reference");
    static string Fixture(string name) => Path.Combine(Reference, "hdf5", name);
    static string Keras(string name) => Path.Combine(Reference, "keras", name);

    static readonly float[] Values = [-1f, -0.75f, -0.5f, -0.25f, 0f, 0.25f];
    static readonly float[] Grid = [.. Enumerable.Range(0, 35).Select(i => i / 8f)];

    readonly string directory = Directory.CreateTempSubdirectory("naani-hdf5-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static float[] ReadFloats(Hdf5File file, string path)
    {
        var dataset = Assert.IsType<Hdf5Dataset>(file.Root.TryGet(path));
        var values = new float[dataset.Count];
        dataset.ReadFloats(values);
        return values;
    }

    public static TheoryData<string> BothFormats => ["features.h5", "features_latest.h5"];

    [Theory]
    [MemberData(nameof(BothFormats))]
    public void Reads_floats_of_2_4_and_8_bytes_in_both_byte_orders(string name)
    {
        using var file = Hdf5File.Open(Fixture(name));

        foreach (var type in new[] { "f2", "f4", "f8" })
            foreach (var order in new[] { "le", "be" })
            {
                var dataset = Assert.IsType<Hdf5Dataset>(file.Root.TryGet($"floats/{type}_{order}"));
                Assert.Equal([2L, 3L], dataset.Shape);
                Assert.Equal(Hdf5TypeClass.FloatingPoint, dataset.ElementType.Class);
                Assert.Equal(type[1] - '0', dataset.ElementType.Size);
                Assert.Equal(order == "be", dataset.ElementType.BigEndian);
                Assert.Equal(Values, ReadFloats(file, $"/floats/{type}_{order}"));
            }
    }

    [Theory]
    [MemberData(nameof(BothFormats))]
    public void Reads_a_scalar_a_compact_dataset_and_refuses_integers_as_floats(string name)
    {
        using var file = Hdf5File.Open(Fixture(name));

        Assert.Equal([2.5f], ReadFloats(file, "scalar"));
        Assert.Empty(Assert.IsType<Hdf5Dataset>(file.Root.TryGet("scalar")).Shape);
        Assert.Equal(Values, ReadFloats(file, "compact"));
        var integers = Assert.IsType<Hdf5Dataset>(file.Root.TryGet("int32"));
        Assert.Equal(Hdf5TypeClass.FixedPoint, integers.ElementType.Class);
        var e = Assert.Throws<InvalidDataException>(() => integers.ReadFloats(new float[4]));
        Says("4-byte integers", e);
        Assert.Throws<ArgumentException>(() => Assert.IsType<Hdf5Dataset>(file.Root.TryGet("compact")).ReadFloats(new float[5]));
    }

    [Theory]
    [MemberData(nameof(BothFormats))]
    public void Reads_fixed_length_and_variable_length_string_attributes(string name)
    {
        using var file = Hdf5File.Open(Fixture(name));
        var attributes = Assert.IsType<Hdf5Group>(file.Root.TryGet("strings")).Attributes;

        Assert.Equal(["ab", "cde", ""], attributes["fixed"].ReadStrings());
        Assert.Equal([3L], attributes["fixed"].Shape);
        Assert.True(attributes["vlen"].Type.IsVariableLengthString);
        Assert.Equal(["alpha", "beta", "\u03b3amma"], attributes["vlen"].ReadStrings());
        Assert.Equal(["xyz"], attributes["scalar_fixed"].ReadStrings());
        Assert.Equal(["hello"], attributes["scalar_vlen"].ReadStrings());
        Assert.Equal(0, attributes["empty"].Count);
        Assert.Equal(Hdf5TypeClass.FloatingPoint, attributes["empty"].Type.Class);
        Assert.Throws<InvalidDataException>(() => attributes["empty"].ReadStrings());
    }

    [Fact]
    public void Reads_chunked_datasets_plain_and_shuffled_and_deflated_from_a_version_1_B_tree()
    {
        using var file = Hdf5File.Open(Fixture("features.h5"));

        Assert.Equal(Grid, ReadFloats(file, "chunked/plain"));   // 5 x 7 in chunks of 2 x 3: edge chunks are partial
        Assert.Equal(Grid, ReadFloats(file, "chunked/gzip"));    // big-endian float64, shuffle then deflate
        Assert.Equal(Grid, ReadFloats(file, "chunked/single"));
    }

    [Fact]
    public void In_the_latest_format_reads_a_single_chunk_and_refuses_a_fixed_array_index_by_name()
    {
        using var file = Hdf5File.Open(Fixture("features_latest.h5"));

        Assert.Equal(Grid, ReadFloats(file, "chunked/single"));
        var e = Assert.Throws<InvalidDataException>(() => file.Root.TryGet("chunked/plain"));
        Says("features_latest.h5", e);
        Says("fixed array chunk index", e);
    }

    [Theory]
    [MemberData(nameof(BothFormats))]
    public void Skips_soft_and_external_links(string name)
    {
        using var file = Hdf5File.Open(Fixture(name));

        Assert.Null(file.Root.TryGet("soft"));
        Assert.Null(file.Root.TryGet("external"));
        Assert.Contains("floats", file.Root.Links.Keys);
        Assert.IsType<Hdf5Group>(file.Root.Children["strings"]);
    }

    [Fact]
    public void Reads_the_superblock_3_version_2_headers_and_dense_links_of_a_latest_format_file()
    {
        using var file = Hdf5File.Open(Keras("small_weights_latest.h5"));

        Assert.Equal(3, file.SuperblockVersion);
        Assert.Equal(30, file.Root.Links.Count);   // 6 layers and 24 more: in a fractal heap, not in the header
        Assert.Null(file.Root.Header.SymbolTable);
        Assert.NotNull(file.Root.Header.LinkInfo);
        Assert.Empty(file.Root.Header.Links);
        Assert.Equal([16L, 3L], Assert.IsType<Hdf5Dataset>(file.Root.TryGet("fc/fc/kernel:0")).Shape);
        Assert.Equal(30, file.Root.Attributes["layer_names"].ReadStrings().Length);
    }

    [Fact]
    public void Reads_dense_attribute_storage()
    {
        using var file = Hdf5File.Open(Fixture("features_latest.h5"));
        var group = Assert.IsType<Hdf5Group>(file.Root.TryGet("many_attributes"));

        Assert.Empty(group.Header.Attributes);
        Assert.NotNull(group.Header.AttributeInfo);
        Assert.Equal(12, group.Attributes.Count);
        Assert.Equal(["value 7"], group.Attributes["a07"].ReadStrings());
    }

    [Fact]
    public void Finds_a_version_2_superblock_after_a_user_block()
    {
        using var file = Hdf5File.Open(Fixture("superblock_v2_userblock.h5"));

        Assert.Equal(2, file.SuperblockVersion);
        Assert.Equal(Values, ReadFloats(file, "values"));
    }

    [Fact]
    public void Reads_a_version_1_superblock()
    {
        // h5py cannot write one, so features.h5's superblock 0 becomes a version 1 one. Its four more bytes (the
        // indexed-storage K and a reserved field) would overwrite the start of the root object header that follows it,
        // so that header moves to the end of the file, where the root entry now points.
        var v0 = File.ReadAllBytes(Fixture("features.h5"));
        int root = (int)BinaryPrimitives.ReadUInt64LittleEndian(v0.AsSpan(64));
        int rootSize = 16 + (int)BinaryPrimitives.ReadUInt32LittleEndian(v0.AsSpan(root + 8));
        var v1 = new byte[v0.Length + rootSize];
        v0.CopyTo(v1, 0);
        v0.AsSpan(root, rootSize).CopyTo(v1.AsSpan(v0.Length));
        v0.AsSpan(24, 72).CopyTo(v1.AsSpan(28));
        v1[8] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(v1.AsSpan(24), 32);
        BinaryPrimitives.WriteUInt64LittleEndian(v1.AsSpan(44), (ulong)v1.Length);   // end of file
        BinaryPrimitives.WriteUInt64LittleEndian(v1.AsSpan(68), (ulong)v0.Length);   // the root object header

        using var file = Hdf5File.Open(Write("v1.h5", v1));

        Assert.Equal(1, file.SuperblockVersion);
        Assert.Equal(Values, ReadFloats(file, "floats/f4_be"));
        Assert.Equal(Grid, ReadFloats(file, "chunked/gzip"));
    }

    // Crafted files: a superblock 0 and version 1 object headers (no checksums), built field by field.

    /// A superblock 0 (96 bytes) whose root object header is at rootHeader, followed by the blocks given, each at its address.
    static byte[] Crafted(ulong rootHeader, params (int Address, byte[] Bytes)[] blocks)
    {
        int length = Math.Max(2048, blocks.Select(b => b.Address + b.Bytes.Length).DefaultIfEmpty(0).Max());
        var file = new byte[length];
        new byte[] { 0x89, (byte)'H', (byte)'D', (byte)'F', (byte)'\r', (byte)'\n', 0x1A, (byte)'\n' }.CopyTo(file, 0);
        file[13] = 8;   // offsets
        file[14] = 8;   // lengths
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(16), 4);
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(18), 16);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(32), ulong.MaxValue);   // free space
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(40), (ulong)length);    // end of file
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(48), ulong.MaxValue);   // driver info
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(64), rootHeader);
        foreach (var (address, bytes) in blocks) bytes.CopyTo(file, address);
        return file;
    }

    /// A version 1 object header holding the messages given as (type, data).
    static byte[] HeaderV1(params (int Type, byte[] Data)[] messages)
    {
        int size = messages.Sum(m => 8 + ((m.Data.Length + 7) & ~7));
        var header = new byte[16 + size];
        header[0] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(2), (ushort)messages.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)size);
        int at = 16;
        foreach (var (type, data) in messages)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(at), (ushort)type);
            BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(at + 2), (ushort)((data.Length + 7) & ~7));
            data.CopyTo(header, at + 8);
            at += 8 + ((data.Length + 7) & ~7);
        }
        return header;
    }

    static byte[] Addresses(params ulong[] values)
    {
        var bytes = new byte[8 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8 * i), values[i]);
        return bytes;
    }

    static byte[] Continuation(ulong address, ulong length) => Addresses(address, length);

    static byte[] SymbolTableMessage(ulong btree, ulong heap) => Addresses(btree, heap);

    static byte[] LocalHeap(ulong dataSize, ulong dataAddress) => [.. "HEAP"u8, 0, 0, 0, 0, .. Addresses(dataSize, ulong.MaxValue, dataAddress)];

    /// Assert.Contains shows only the start of a long message; this shows all of it.
    static void Says(string expected, Exception e) => Assert.True(e.Message.Contains(expected, StringComparison.Ordinal), $"expected '{expected}' in: {e.Message}");

    InvalidDataException Refused(byte[] bytes, Action<Hdf5File> read)
    {
        var path = Write("crafted.h5", bytes);
        var e = Assert.Throws<InvalidDataException>(() =>
        {
            using var file = Hdf5File.Open(path);
            read(file);
        });
        Assert.Contains(path, e.Message);
        return e;
    }

    [Fact]
    public void An_object_header_that_continues_into_itself_is_refused()
    {
        var e = Refused(Crafted(96, (96, HeaderV1((0x10, Continuation(96, 40))))), _ => { });

        Says("is a corrupt HDF5 file: the object header at 0x60 continues into itself", e);
    }

    [Fact]
    public void Continuation_blocks_that_loop_are_refused()
    {
        // The header continues at 0x200, whose block continues at 0x300, whose block continues at 0x200 again.
        var e = Refused(Crafted(96,
            (96, HeaderV1((0x10, Continuation(0x200, 24)))),
            (0x200, HeaderV1((0x10, Continuation(0x300, 24))).AsSpan(16).ToArray()),
            (0x300, HeaderV1((0x10, Continuation(0x200, 24))).AsSpan(16).ToArray())), _ => { });

        Says("the object header at 0x60 continues at 0x200 a second time (its continuation blocks loop)", e);
    }

    [Fact]
    public void An_unknown_message_type_is_skipped_unless_marked_as_one_a_reader_must_understand()
    {
        var skipped = Write("skipped.h5", Crafted(96, (96, HeaderV1((0x11, SymbolTableMessage(ulong.MaxValue, ulong.MaxValue)), (0x5A, new byte[8])))));
        var header = HeaderV1((0x11, SymbolTableMessage(ulong.MaxValue, ulong.MaxValue)), (0x5A, new byte[8]));
        header[16 + 24 + 4] = 0x80;   // the second message's flags: fail if not understood

        using (var file = Hdf5File.Open(skipped)) Assert.IsType<Hdf5Group>(file.Root);
        var e = Refused(Crafted(96, (96, header)), _ => { });

        Says("the object header at 0x60 has a message of unknown type 0x5A that it marks as one a reader must understand", e);
    }

    [Fact]
    public void A_B_tree_node_whose_child_is_itself_is_refused()
    {
        // A group's symbol-table B-tree at 0x200: a level-1 node whose one child is the node itself.
        byte[] node = [.. "TREE"u8, 0, 1, 1, 0, .. Addresses(ulong.MaxValue, ulong.MaxValue, 0, 0x200, 0)];
        var e = Refused(Crafted(96,
            (96, HeaderV1((0x11, SymbolTableMessage(0x200, 0x300)))),
            (0x200, node),
            (0x300, LocalHeap(16, 0x340))), file => _ = file.Root.Links);

        Says("the B-tree node at 0x200 of the group whose local heap is at 0x300 has itself as a child", e);
    }

    [Fact]
    public void A_local_heap_larger_than_the_file_is_refused_before_it_is_allocated()
    {
        var bytes = Crafted(96,
            (96, HeaderV1((0x11, SymbolTableMessage(0x200, 0x300)))),
            (0x300, LocalHeap(1UL << 40, 0x340)));
        long before = GC.GetAllocatedBytesForCurrentThread();

        var e = Refused(bytes, file => _ = file.Root.Links);

        Says("the data segment's size in the local heap at 0x300 is 1,099,511,627,776, more than the file's 2,048 bytes", e);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 2 << 20);
    }

    [Fact]
    public void An_object_header_larger_than_the_file_is_refused_before_it_is_allocated()
    {
        var header = HeaderV1();
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), 0xFFFF_FFF0);
        var bytes = Crafted(96, (96, header));
        long before = GC.GetAllocatedBytesForCurrentThread();

        var e = Refused(bytes, _ => { });

        Says("the object header at 0x60 (4,294,967,296 bytes) is past the end of the file (2,048 bytes)", e);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 2 << 20);
    }

    [Theory]
    [InlineData(0x10000UL, "0x10000")]
    [InlineData(0x8000_0000_0000_0060UL, "0x8000000000000060")]
    public void An_address_past_the_end_or_past_2_to_the_63_is_refused(ulong address, string shown)
    {
        var e = Refused(Crafted(address), _ => { });

        Says($"the object header at {shown} is past the end of the file (2,048 bytes)", e);
    }

    [Fact]
    public void A_superblock_whose_checksum_does_not_match_is_refused()
    {
        var bytes = File.ReadAllBytes(Keras("small_weights_latest.h5"));
        bytes[40] ^= 1;   // a bit of the root object header's address

        var e = Refused(bytes, _ => { });

        Says("the superblock at 0x0's checksum does not match its bytes", e);
    }

    [Fact]
    public void An_object_header_whose_checksum_does_not_match_is_refused()
    {
        var bytes = File.ReadAllBytes(Keras("small_weights_latest.h5"));
        int root = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(36));
        Assert.Equal("OHDR"u8.ToArray(), bytes[root..(root + 4)]);
        bytes[root + 12] ^= 1;

        var e = Refused(bytes, _ => { });

        Says($"the object header at 0x{root:X}'s checksum does not match its bytes", e);
    }

    [Fact]
    public void A_truncated_file_is_refused_naming_the_length_the_superblock_gives()
    {
        var bytes = File.ReadAllBytes(Fixture("features.h5"));

        var e = Refused(bytes[..1000], _ => { });

        Says($"it is truncated: the superblock says it ends at 0x{bytes.Length:X} but the file has 1,000 bytes", e);
    }

    [Fact]
    public void A_file_without_the_signature_is_not_HDF5()
    {
        var e = Refused(new byte[3000], _ => { });

        Says("no HDF5 signature", e);
    }

    [Fact]
    public void Lookup3_matches_the_published_test_values()
    {
        // From lookup3.c's driver: hashlittle("", 0) and hashlittle("Four score and seven years ago", 0).
        Assert.Equal(0xDEADBEEFu, Lookup3.Hash([]));
        Assert.Equal(0x17770551u, Lookup3.Hash("Four score and seven years ago"u8));
    }
}
