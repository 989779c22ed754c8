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
        // Found by the seeded mutation run against PureHDF, which threw NotSupportedException for the message type (a
        // deleted chunk shifted a continuation block's bytes). Our reader skips a message type it does not know unless
        // the header marks it as one a reader must understand, as the HDF5 library does; this file is refused because
        // the superblock says it is longer than it is, and, with that field mended, because the shifted continuation
        // block runs past the end of the file.
        var path = Path.Combine(Findings, "keras-h5-unknown-header-message-type.h5");

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.ReadLayers(path));
        var mended = WithEndOfFileMended(path);
        var f = Assert.Throws<InvalidDataException>(() => KerasWeights.ReadLayers(mended));

        Assert.Contains(path, e.Message);
        Assert.Contains("corrupt HDF5 file: it is truncated", e.Message);
        Assert.Contains("a continuation block of the object header at 0x4688 at 0x49F8 (104 bytes) is past the end of the file", f.Message);
    }

    /// A copy of a superblock-0 finding whose end-of-file address is the file's length, so that our reader gets past
    /// its truncation check to the structure the fuzzer broke (PureHDF did not check it).
    string WithEndOfFileMended(string path)
    {
        var bytes = File.ReadAllBytes(path);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(40), (ulong)bytes.Length);
        return Write("mended-" + Path.GetFileName(path), bytes);
    }

    [Theory]
    [InlineData("keras-h5-superblock-size-asks-for-gigabytes.h5",
        "the attribute 'layer_names' at 0x340 has 7,957,688,327,089,120,111 values of 12 bytes, more than its message holds")]
    [InlineData("keras-h5-local-heap-size-asks-for-gigabytes.h5",
        "the data segment's size in the local heap at 0x3B08 is 2,130,706,520, more than the file's 19,040 bytes")]
    [InlineData("keras-h5-attribute-count-asks-for-gigabytes-hang.h5",   // finding 8: a hang (over 5 s) in the 30-minute campaign
        "the attribute 'layer_names' at 0x340 has 7,075,566,706,263,023,409 values of 12 bytes, more than its message holds")]
    public void Keras_file_whose_structure_sizes_ask_for_gigabytes_is_refused_as_corrupt(string name, string why)
    {
        // Found by afl-fuzz (keras-h5 target, 1 GiB heap limit) against PureHDF, which allocated a structure's buffer at
        // the size the 19 KB file gives (1.4-2 GB) before finding the file too small: OutOfMemoryException under a heap
        // limit, or (the attribute count, finding 8) a hang while it filled them. Our reader checks every size against
        // the file's length before allocating.
        var path = Path.Combine(Findings, name);

        var model = Naani.Fuzz.FuzzTargets.KerasModel();
        model.Build();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(model, path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains(path, e.Message);
        Assert.Contains(why, e.Message);
        Assert.True(allocated < 4 << 20, $"reading the 19 KB file allocated {allocated:N0} bytes");
    }

    [Fact]
    public void Keras_file_with_an_address_past_2_to_the_63_is_refused_as_corrupt_not_as_an_IO_error()
    {
        // Found by afl-fuzz (keras-h5 target) against PureHDF, which read at the corrupt address: the system call failed
        // with EINVAL, and the IOException ("Invalid argument") passed KerasWeights' filter as if the disk had failed.
        // Our reader checks every address against the file's length before reading.
        var path = Path.Combine(Findings, "keras-h5-address-past-2-to-the-63.h5");

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.ReadLayers(path));
        var f = Assert.Throws<InvalidDataException>(() => KerasWeights.ReadLayers(WithEndOfFileMended(path)));

        Assert.Contains(path, e.Message);
        Assert.Contains("the superblock says it ends at 0xFF00000000000000 but the file has 125 bytes", e.Message);
        Assert.Contains("the object header at 0xFFFFFFFFFFFF is past the end of the file (125 bytes)", f.Message);
    }

    [Fact]
    public void Keras_file_whose_object_header_continuations_loop_is_refused_in_process()
    {
        // Found by afl-fuzz (keras-h5 target) against PureHDF, whose ObjectHeader.ReadHeaderMessages recursed on each
        // continuation message until the stack overflowed, which ends the process. Our reader follows continuation
        // blocks iteratively and refuses a block it has already read.
        // The file as found is refused at once (the superblock says it is longer than it is); mended, the loop is found.
        var path = Path.Combine(Findings, "keras-h5-object-header-recursion-stack-overflow.h5");

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(Naani.Fuzz.FuzzTargets.KerasModel(), path));
        var f = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(Naani.Fuzz.FuzzTargets.KerasModel(), WithEndOfFileMended(path)));

        Assert.Contains(path, e.Message);
        Assert.Contains("the object header at 0x60 continues at 0x320 a second time (its continuation blocks loop)", f.Message);
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
    public void Keras_file_whose_group_btree_points_back_to_itself_is_refused_as_corrupt()
    {
        // Crafted from the seed (with finding 7, against PureHDF, which followed group B-trees recursively until the
        // stack overflowed): the root group's B-tree node (at 0x88) names itself as its child.
        var bytes = CraftedFiles.Seed("keras-h5", "small_weights.h5");
        Assert.Equal("TREE"u8.ToArray(), bytes[0x88..0x8c]);
        bytes[0x88 + 5] = 1;   // level 1: its children are B-tree nodes
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(0x88 + 24 + 8), 0x88);
        var path = Write("btree-loop.h5", bytes);

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.ReadLayers(path));

        Assert.Contains(path, e.Message);
        Assert.Contains("the B-tree node at 0x88 of the group whose local heap is at 0x2A8 has itself as a child", e.Message);
    }
}
