using System.Text;
using Naani.Serialization;

namespace Naani.Tests.Fuzzing;

/// One test per finding of the fuzzing campaigns (docs/RELIABILITY.md, "Fuzzed readers"): the input that made a reader
/// fail with something other than its documented InvalidDataException, rebuilt by hand where it is simple and kept as
/// the fuzzer found it (Fuzzing/Findings) where it is not.
public sealed class FuzzFindingsTests : IDisposable
{
    static readonly string Findings = Path.Combine(AppContext.BaseDirectory, "Fuzzing", "Findings");

    readonly string directory = Directory.CreateTempSubdirectory("naani-findings-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Model_header_with_a_string_that_is_not_UTF8_is_refused_as_corrupt_naming_the_header_bytes()
    {
        // Found by afl-fuzz (model target): System.Text.Json decodes a string when it is first read, so the invalid
        // byte surfaced later, inside the layer factory, as InvalidOperationException.
        var (header, data) = CraftedFiles.SequentialModel();
        var bytes = Encoding.UTF8.GetBytes(header);
        int at = header.IndexOf("\"seed\"", StringComparison.Ordinal) + 2;
        bytes[at] = 0xFF;
        var path = Write("not-utf8.naani", CraftedFiles.ModelFile(bytes, data));

        var e = Assert.Throws<InvalidDataException>(() => ModelFile.Load(path));

        Assert.Contains(path, e.Message);
        Assert.Contains("not valid UTF-8", e.Message);
        Assert.Contains($"bytes 16 to {16 + bytes.Length:N0}", e.Message);
    }

    [Fact]
    public void Model_header_with_a_key_given_twice_is_refused_as_invalid_JSON()
    {
        // Found by afl-fuzz (model target): JsonObject refused the second key only when the object was first read,
        // with ArgumentException ("An item with the same key has already been added").
        var path = Write("twice.naani", CraftedFiles.ModelWithHeaderEdit("\"type\": \"Conv2D\",", "\"type\": \"Conv2D\", \"type\": \"Dense\","));

        var e = Assert.Throws<InvalidDataException>(() => ModelFile.Load(path));

        Assert.Contains(path, e.Message);
        Assert.Contains("not valid JSON", e.Message);
        Assert.Contains("Duplicate property 'type'", e.Message);
    }

    [Fact]
    public void Keras_file_with_an_unknown_header_message_type_is_refused_as_corrupt()
    {
        // Found by the seeded mutation run: PureHDF throws NotSupportedException for the message type.
        var path = Path.Combine(Findings, "keras-h5-unknown-header-message-type.h5");

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.ReadLayers(path));

        Assert.Contains(path, e.Message);
        Assert.Contains("corrupt HDF5 file", e.Message);
        Assert.Contains("message type", e.Message);
    }

    [Theory]
    [InlineData("keras-h5-superblock-size-asks-for-gigabytes.h5")]
    [InlineData("keras-h5-local-heap-size-asks-for-gigabytes.h5")]
    [InlineData("keras-h5-attribute-count-asks-for-gigabytes-hang.h5")]   // a hang (over 5 s) in the 30-minute campaign
    public void Keras_file_whose_structure_sizes_ask_for_gigabytes_is_refused_as_corrupt(string name)
    {
        // Found by afl-fuzz (keras-h5 target, 1 GiB heap limit): PureHDF allocates a structure's buffer at the size the
        // 19 KB file gives (1.4-2 GB) before finding the file too small. Under a heap limit that is OutOfMemoryException,
        // without one plain Exception ("The file is too small"); both are now the documented InvalidDataException.
        var path = Path.Combine(Findings, name);

        var model = Naani.Fuzz.FuzzTargets.KerasModel();
        model.Build();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(model, path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains(path, e.Message);
        Assert.True(allocated < 16 << 20, $"reading the 19 KB file allocated {allocated:N0} bytes");
    }

    [Fact]
    public void Keras_file_with_an_address_past_2_to_the_63_is_refused_as_corrupt_not_as_an_IO_error()
    {
        // Found by afl-fuzz (keras-h5 target): PureHDF reads at the corrupt address, the system call fails with EINVAL,
        // and the IOException ("Invalid argument") passed KerasWeights' filter as if the disk had failed.
        var path = Path.Combine(Findings, "keras-h5-address-past-2-to-the-63.h5");

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.ReadLayers(path));

        Assert.Contains(path, e.Message);
        Assert.Contains("Invalid argument", e.Message);
    }

    [Fact]
    public void Truncated_keras_file_is_refused_as_corrupt()
    {
        var whole = CraftedFiles.Seed("keras-h5", "small_weights.h5");
        var path = Write("truncated.h5", whole[..(whole.Length / 2)]);

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(Naani.Fuzz.FuzzTargets.KerasModel(), path));

        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Keras_file_whose_object_header_continues_into_itself_is_refused_as_corrupt()
    {
        // Found by afl-fuzz (keras-h5 target): the root object header's continuation block holds a continuation to
        // itself. PureHDF follows continuations recursively without remembering them, so the stack overflowed and the
        // process ended (.NET cannot catch that). Hdf5Guard walks the chain first, remembering each block.
        var path = Path.Combine(Findings, "keras-h5-object-header-recursion-stack-overflow.h5");

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.ReadLayers(path));

        Assert.Contains(path, e.Message);
        Assert.Contains("continues into the block at 0x320, which was read before", e.Message);
    }

    [Fact]
    public void Keras_file_whose_group_btree_points_back_to_itself_is_refused_as_corrupt()
    {
        // Crafted from the seed: the root group's B-tree node (at 0x88) names itself as its child, a loop PureHDF would
        // follow until the stack overflowed.
        var bytes = CraftedFiles.Seed("keras-h5", "small_weights.h5");
        Assert.Equal("TREE"u8.ToArray(), bytes[0x88..0x8c]);
        bytes[0x88 + 5] = 1;   // level 1: its children are B-tree nodes
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(0x88 + 24 + 8), 0x88);
        var path = Write("btree-loop.h5", bytes);

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.ReadLayers(path));

        Assert.Contains(path, e.Message);
        Assert.Contains("B-tree node at 0x88 is reached twice", e.Message);
    }
}
