using System.Buffers.Binary;
using System.IO.Compression;
using Naani.Data;
using Naani.Serialization;
using Naani.Vision;

namespace Naani.Tests.Fuzzing;

/// A header that claims more than its file could hold is refused before the reader allocates for it: each test reads a
/// small crafted file and bounds what the reading allocated (GC.GetAllocatedBytesForCurrentThread; the readers allocate
/// on the calling thread).
public sealed class CraftedHeaderTests : IDisposable
{
    const long Bound = 32 << 20;

    readonly string directory = Directory.CreateTempSubdirectory("naani-crafted-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// Runs read, which must throw InvalidDataException, and returns its message; fails if reading allocated over Bound.
    static string RefusedWithin(Action read)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(read);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < Bound, $"refusing the file allocated {allocated:N0} bytes: {e.Message}");
        return e.Message;
    }

    [Fact]
    public void Idx_header_claiming_2_to_the_30_values_in_a_100_byte_file_is_refused_before_allocating()
    {
        var bytes = CraftedFiles.Idx(0x08, [1 << 30], 92);
        var path = Write("huge-idx1-ubyte", bytes);

        var message = RefusedWithin(() => IdxReader.Read(path));

        Assert.Contains(path, message);
        Assert.Contains("truncated", message);
    }

    [Fact]
    public void Idx_header_with_dimensions_of_2_to_the_31_is_refused_before_allocating()
    {
        var path = Write("overflow-idx4-float", CraftedFiles.Idx(0x0D, [int.MaxValue, 65536, 65536, 65536], 60));

        var message = RefusedWithin(() => IdxReader.Read(path));

        Assert.Contains("the most one array can hold", message);
    }

    [Fact]
    public void Gzip_idx_claiming_a_gigabyte_that_ends_after_a_few_bytes_is_refused_without_allocating_the_gigabyte()
    {
        // The decompressed length is unknown until the stream ends, so the reader reads in bounded chunks first.
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Optimal))
            gzip.Write(CraftedFiles.Idx(0x08, [1 << 30], 100));
        var path = Write("huge-idx1-ubyte.gz", buffer.ToArray());

        var message = RefusedWithin(() => IdxReader.Read(path));

        Assert.Contains("of the decompressed data", message);
    }

    [Fact]
    public void Model_file_whose_header_length_is_64_MiB_in_a_100_byte_file_is_refused_before_allocating()
    {
        var bytes = new byte[100];
        "NAANI\0\0\0"u8.CopyTo(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(12), ModelFile.MaxHeaderLength);
        var path = Write("huge-header.naani", bytes);

        var message = RefusedWithin(() => ModelFile.Load(path));

        Assert.Contains("header length is 67,108,864 bytes but the whole file has 100", message);
    }

    [Fact]
    public void Model_file_tensor_with_a_shape_of_billions_of_values_is_refused_before_allocating()
    {
        var path = Write("huge-tensor.naani", CraftedFiles.ModelWithHeaderEdit("\"shape\": [\n        3,\n        3,\n        1,\n        2\n      ]",
            "\"shape\": [\n        3000,\n        3000,\n        1000,\n        2000\n      ]"));

        var message = RefusedWithin(() => ModelFile.Load(path));

        Assert.Contains("more than the", message);
        Assert.Contains("bytes of data hold", message);
    }

    [Fact]
    public void Model_file_layer_asking_for_a_billion_units_is_refused_before_its_weights_are_allocated()
    {
        // Found while writing the model target (the 3-minute afl-fuzz campaign had not reached it): the layers were
        // built, and their weights allocated, before the file's tensors were compared with them, so "units": 1000000000
        // asked for a kernel of 8 billion values (32 GB).
        var path = Write("billion-units.naani", CraftedFiles.ModelWithHeaderEdit("\"units\": 3", "\"units\": 1000000000"));

        var message = RefusedWithin(() => ModelFile.Load(path));

        Assert.Contains("layer 'head' (Dense) would create weight 'kernel'", message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("left in the file's data", message);
    }

    [Fact]
    public void Model_file_conv_asking_for_a_huge_kernel_is_refused_before_its_weights_are_allocated()
    {
        var path = Write("huge-kernel.naani", CraftedFiles.ModelWithHeaderEdit("\"filters\": 2", "\"filters\": 2000000000"));

        var message = RefusedWithin(() => ModelFile.Load(path));

        Assert.Contains("would create weight 'kernel'", message);
    }

    [Fact]
    public void Cifar_file_of_a_million_records_is_refused_before_allocating_its_twelve_gigabytes_of_floats()
    {
        // A sparse file: its length claims 1,000,000 records of 3,073 bytes without taking the disk space.
        var path = Path.Combine(directory, "huge.bin");
        using (var file = File.Create(path)) file.SetLength(1_000_000L * 3073);

        var message = RefusedWithin(() => Cifar.ReadFile(path, CifarKind.Cifar10));

        Assert.Contains("more than one array can hold", message);
    }

    [Fact]
    public void Image_whose_header_claims_a_gigapixel_is_refused_before_decoding()
    {
        // The seed PNG with its IHDR chunk saying 40,000 x 40,000 (and that chunk's CRC made to match).
        var png = CraftedFiles.Seed("image", "seed.png");
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), 40_000);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), 40_000);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Naani.Fuzz.FuzzTargets.Crc32(png.AsSpan(12, 17)));
        var path = Write("huge.png", png);

        var message = RefusedWithin(() => ImageFile.ReadHeader(path));
        Assert.False(ImageFile.TryLoad(path, 4, 4, ColorMode.Rgb, new float[48], out var reason));

        Assert.Contains("more than the 100,000,000 allowed", message);
        Assert.Equal(message, reason);
    }
}
