using System.Buffers.Binary;
using System.IO.Compression;

namespace Naani.Tests.Data;

/// Builds IDX files byte by byte, so the reader is tested against the format, not against itself.
static class IdxFiles
{
    /// Magic (0, 0, type, rank), big-endian dims, then the payload as given.
    public static byte[] Build(byte type, int[] dims, byte[] payload)
    {
        var bytes = new byte[4 + 4 * dims.Length + payload.Length];
        bytes[2] = type;
        bytes[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++)
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dims[i]);
        payload.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    public static byte[] Ubyte(int[] dims, byte[] values) => Build(0x08, dims, values);

    public static byte[] Gzip(byte[] bytes)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Optimal))
            gzip.Write(bytes);
        return buffer.ToArray();
    }

    public static string Write(string dir, string name, byte[] bytes, bool gzip = false)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, gzip ? Gzip(bytes) : bytes);
        return path;
    }

    /// Writes a small MNIST-like folder: train and test sets of rows x cols images whose pixel i of image n is
    /// (n * 7 + i) % 256 and whose label is n % classes.
    public static void WriteMnistFolder(string dir, int train, int test, int rows = 28, int cols = 28, bool gzip = false, int classes = 10)
    {
        Directory.CreateDirectory(dir);
        string suffix = gzip ? ".gz" : "";
        Write(dir, "train-images-idx3-ubyte" + suffix, Ubyte([train, rows, cols], Pixels(train, rows * cols)), gzip);
        Write(dir, "train-labels-idx1-ubyte" + suffix, Ubyte([train], Labels(train, classes)), gzip);
        Write(dir, "t10k-images-idx3-ubyte" + suffix, Ubyte([test, rows, cols], Pixels(test, rows * cols)), gzip);
        Write(dir, "t10k-labels-idx1-ubyte" + suffix, Ubyte([test], Labels(test, classes)), gzip);
    }

    public static byte[] Pixels(int count, int size)
    {
        var pixels = new byte[count * size];
        for (int n = 0; n < count; n++)
            for (int i = 0; i < size; i++)
                pixels[n * size + i] = (byte)((n * 7 + i) % 256);
        return pixels;
    }

    public static byte[] Labels(int count, int classes)
    {
        var labels = new byte[count];
        for (int n = 0; n < count; n++)
            labels[n] = (byte)(n % classes);
        return labels;
    }
}

/// A fresh folder under the system temp folder, deleted with its contents on Dispose.
sealed class TempDirectory : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "naani-tests-" + Guid.NewGuid().ToString("N"));

    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Sub(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        if (Directory.Exists(Path))
            Directory.Delete(Path, recursive: true);
    }
}
