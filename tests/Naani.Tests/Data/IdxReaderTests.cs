using System.Buffers.Binary;
using Naani.Data;
using Xunit;

namespace Naani.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void Ubyte_file_round_trips_dims_and_values()
    {
        var values = new byte[] { 0, 1, 2, 127, 128, 200, 254, 255, 9, 10, 11, 12 };
        var path = IdxFiles.Write(temp.Path, "x-idx3-ubyte", IdxFiles.Ubyte([2, 3, 2], values));

        var idx = IdxReader.Read(path);

        Assert.Equal([2, 3, 2], idx.Dims);
        Assert.Equal(IdxType.UnsignedByte, idx.Type);
        Assert.Equal(values.Select(v => (float)v), idx.Values);
    }

    [Fact]
    public void Gzip_is_detected_by_its_magic_not_by_the_file_name()
    {
        var values = new byte[] { 5, 6, 7, 8, 9, 10 };
        var bytes = IdxFiles.Ubyte([6], values);
        var gzipWithoutSuffix = IdxFiles.Write(temp.Path, "labels-idx1-ubyte", bytes, gzip: true);
        var rawWithSuffix = IdxFiles.Write(temp.Path, "labels-idx1-ubyte.gz", bytes, gzip: false);

        Assert.Equal(values.Select(v => (float)v), IdxReader.Read(gzipWithoutSuffix).Values);
        Assert.Equal(values.Select(v => (float)v), IdxReader.Read(rawWithSuffix).Values);
    }

    [Fact]
    public void Every_element_type_is_read_big_endian_and_converted_to_float()
    {
        var sbytes = new byte[] { 0x80, 0xFF, 0x7F };
        Assert.Equal([-128f, -1f, 127f], ReadPayload(0x09, sbytes));

        var shorts = new byte[4];
        BinaryPrimitives.WriteInt16BigEndian(shorts, -1234);
        BinaryPrimitives.WriteInt16BigEndian(shorts.AsSpan(2), 30000);
        Assert.Equal([-1234f, 30000f], ReadPayload(0x0B, shorts));

        var ints = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(ints, -7);
        BinaryPrimitives.WriteInt32BigEndian(ints.AsSpan(4), 1 << 20);
        Assert.Equal([-7f, 1048576f], ReadPayload(0x0C, ints));

        var floats = new byte[8];
        BinaryPrimitives.WriteSingleBigEndian(floats, 1.5f);
        BinaryPrimitives.WriteSingleBigEndian(floats.AsSpan(4), -0.25f);
        Assert.Equal([1.5f, -0.25f], ReadPayload(0x0D, floats));

        var doubles = new byte[16];
        BinaryPrimitives.WriteDoubleBigEndian(doubles, 2.25);
        BinaryPrimitives.WriteDoubleBigEndian(doubles.AsSpan(8), -1e10);
        Assert.Equal([2.25f, -1e10f], ReadPayload(0x0E, doubles));
    }

    float[] ReadPayload(byte type, byte[] payload)
    {
        int size = type switch { 0x0B => 2, 0x0C or 0x0D => 4, 0x0E => 8, _ => 1 };
        var path = IdxFiles.Write(temp.Path, $"type-{type:X2}", IdxFiles.Build(type, [payload.Length / size], payload));
        var idx = IdxReader.Read(path);
        Assert.Equal((IdxType)type, idx.Type);
        return idx.Values;
    }

    [Fact]
    public void Bad_magic_is_reported_with_the_file_and_the_bytes_found()
    {
        var bytes = IdxFiles.Ubyte([2], [1, 2]);
        bytes[0] = 0x50;
        bytes[1] = 0x4B;
        var path = IdxFiles.Write(temp.Path, "not-idx", bytes);

        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("0x50 0x4B", error.Message);
        Assert.Contains("expected 0x00 0x00", error.Message);
    }

    [Fact]
    public void Unknown_data_type_is_reported_with_its_offset_and_the_accepted_types()
    {
        var path = IdxFiles.Write(temp.Path, "bad-type", IdxFiles.Build(0x0A, [2], [1, 2]));

        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("byte 2 (data type) is 0x0A", error.Message);
        Assert.Contains("0x08 (ubyte)", error.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void Rank_outside_1_to_4_is_refused(int rank)
    {
        var path = IdxFiles.Write(temp.Path, "bad-rank", IdxFiles.Build(0x08, [.. Enumerable.Repeat(1, rank)], [1]));

        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

        Assert.Contains($"(number of dimensions) is {rank}; expected 1 to 4", error.Message);
    }

    [Fact]
    public void Zero_or_negative_dimension_is_refused_with_its_offset()
    {
        var path = IdxFiles.Write(temp.Path, "zero-dim", IdxFiles.Build(0x08, [3, 0], []));

        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

        Assert.Contains("dimension 1 (at byte 8) is 0", error.Message);
    }

    [Fact]
    public void Too_large_dims_are_refused_before_allocating()
    {
        var path = IdxFiles.Write(temp.Path, "huge", IdxFiles.Build(0x08, [65536, 65536, 2], []));

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains(path, error.Message);
        Assert.Contains("65536, 65536", error.Message);
        Assert.Contains("more than", error.Message);
        Assert.True(allocated < 1 << 20, $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void Truncated_raw_file_reports_the_bytes_needed_and_found_before_allocating()
    {
        // The header promises 60000 images of 28x28 but only 100 pixels follow.
        var path = IdxFiles.Write(temp.Path, "short-idx3-ubyte", IdxFiles.Ubyte([60000, 28, 28], new byte[100]));

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains(path, error.Message);
        Assert.Contains("needs 47,040,016 bytes", error.Message);
        Assert.Contains("the file has 116", error.Message);
        Assert.True(allocated < 1 << 20, $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void Truncated_header_is_reported()
    {
        var bytes = IdxFiles.Ubyte([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])[..10];
        var path = IdxFiles.Write(temp.Path, "cut-header", bytes);

        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

        Assert.Contains("inside the header", error.Message);
        Assert.Contains("need 16 header bytes", error.Message);
    }

    [Fact]
    public void Truncated_gzip_content_is_reported_with_its_name_and_offset()
    {
        var complete = IdxFiles.Ubyte([10, 4, 4], IdxFiles.Pixels(10, 16));
        var path = IdxFiles.Write(temp.Path, "train-images-idx3-ubyte.gz", complete[..100], gzip: true);

        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("the data ends at byte 100 of the decompressed data", error.Message);
        Assert.Contains("needs 176 bytes", error.Message);
    }

    [Fact]
    public void Truncated_gzip_file_is_reported_with_its_name()
    {
        var random = new Random(1);
        var pixels = new byte[4000];
        random.NextBytes(pixels); // incompressible, so cutting the file cuts the data
        var gzip = IdxFiles.Gzip(IdxFiles.Ubyte([10, 20, 20], pixels));
        var path = IdxFiles.Write(temp.Path, "t10k-images-idx3-ubyte.gz", gzip[..(gzip.Length / 2)]);

        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("of the decompressed data", error.Message);
    }

    [Fact]
    public void Truncated_gzip_with_a_huge_header_fails_without_allocating_the_values()
    {
        // 1e9 promised bytes would be a 4 GB float array; the stream holds 10.
        var path = IdxFiles.Write(temp.Path, "bomb.gz", IdxFiles.Ubyte([10000, 1000, 100], new byte[10]), gzip: true);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains("the data ends at byte 26 of the decompressed data", error.Message);
        Assert.True(allocated < 64 << 20, $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void Bytes_after_the_data_are_refused()
    {
        var path = IdxFiles.Write(temp.Path, "long", IdxFiles.Ubyte([2], [1, 2, 3]));

        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

        Assert.Contains("more data after byte 10", error.Message);
    }

    [Fact]
    public void Empty_file_is_reported()
    {
        var path = IdxFiles.Write(temp.Path, "empty", []);

        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("ends after 0 bytes", error.Message);
    }

    [Fact]
    public void Missing_file_throws_FileNotFoundException()
    {
        Assert.Throws<FileNotFoundException>(() => IdxReader.Read(temp.Sub("nope")));
    }
}
