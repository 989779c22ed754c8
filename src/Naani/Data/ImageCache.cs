using Microsoft.Win32.SafeHandles;

namespace Naani.Data;

/// Where a CachedImageSource keeps the images it has decoded.
public enum ImageCacheMode
{
    /// Decode every image every epoch.
    None,

    /// Keep decoded images in memory, one byte per value.
    Memory,

    /// Keep decoded images in one file of fixed-size records (read back through the OS page cache, not counted in the process's memory).
    Disk,

    /// Memory when the decoded set fits the memory budget, else disk.
    Auto,
}

/// Remembers each image of a slow source (files to decode and resize) after its first read, so later epochs
/// skip the decoding. Images are kept as 8-bit values, value = round(pixel * 255): exact for images decoded from
/// 8-bit files (JPEG, PNG, ...), which is what it is for; a source of arbitrary floats would be quantized.
/// Unreadable images are remembered too, so their failure is reported once. Thread-safe for reads of different
/// indices at once.
public sealed class CachedImageSource : IImageSource, IDisposable
{
    /// The default memory budget for Auto: 1 GiB, or a quarter of the memory available to the process if less.
    public static long DefaultMemoryBudget => Math.Min(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

    readonly IImageSource inner;
    readonly int imageSize;
    // 0: not read yet, 1: cached, 2: unreadable (reason in failures).
    readonly byte[] state;
    readonly string?[] failures;
    readonly byte[][]? memory;
    readonly SafeFileHandle? file;
    readonly string? filePath;

    /// Wraps source. Auto chooses Memory when Count * H * W * C bytes fit memoryBudget (default DefaultMemoryBudget);
    /// Disk writes a temporary file in directory (default: the system's temporary folder), deleted on Dispose.
    public CachedImageSource(IImageSource source, ImageCacheMode mode = ImageCacheMode.Auto, long? memoryBudget = null, string? directory = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        inner = source;
        imageSize = source.ImageShape.Size;
        long bytes = (long)imageSize * source.Count;
        if (mode == ImageCacheMode.Auto)
            mode = bytes <= (memoryBudget ?? DefaultMemoryBudget) ? ImageCacheMode.Memory : ImageCacheMode.Disk;
        Mode = mode;
        CacheBytes = mode == ImageCacheMode.None ? 0 : bytes;
        state = new byte[source.Count];
        failures = new string?[source.Count];
        if (mode == ImageCacheMode.Memory)
            memory = new byte[source.Count][];
        else if (mode == ImageCacheMode.Disk)
        {
            var folder = directory ?? Path.GetTempPath();
            Directory.CreateDirectory(folder);
            filePath = Path.Combine(folder, $"naani-cache-{Environment.ProcessId}-{Guid.NewGuid():N}.bin");
            try
            {
                file = File.OpenHandle(filePath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose | FileOptions.RandomAccess, bytes);
            }
            catch (IOException e)
            {
                throw new IOException($"Cannot create the image cache {filePath} ({bytes:N0} bytes): {e.Message} Choose another folder, or no cache.", e);
            }
        }
    }

    /// The mode in use (Auto resolved to Memory or Disk).
    public ImageCacheMode Mode { get; }

    /// Bytes the cache holds once every image is in it.
    public long CacheBytes { get; }

    /// The cache file, when Mode is Disk.
    public string? FilePath => filePath;

    public IImageSource Inner => inner;
    public int Count => inner.Count;
    public Shape ImageShape => inner.ImageShape;
    public IReadOnlyList<string> ClassNames => inner.ClassNames;
    public int GetLabel(int index) => inner.GetLabel(index);
    public string Describe(int index) => inner.Describe(index);

    /// Images read from the cache and from the source, since creation.
    public long Hits => Interlocked.Read(ref hits);
    public long Misses => Interlocked.Read(ref misses);
    long hits, misses;

    public bool TryRead(int index, Span<float> pixels, out string? reason)
    {
        if ((uint)index >= (uint)state.Length)
            throw new ArgumentOutOfRangeException(nameof(index), $"Image {index} is outside the {state.Length:N0} images.");
        switch (Volatile.Read(ref state[index]))
        {
            case 1:
                Interlocked.Increment(ref hits);
                Load(index, pixels[..imageSize]);
                reason = null;
                return true;
            case 2:
                reason = failures[index];
                return false;
        }
        Interlocked.Increment(ref misses);
        if (!inner.TryRead(index, pixels, out reason))
        {
            if (Mode != ImageCacheMode.None)
            {
                failures[index] = reason;
                Volatile.Write(ref state[index], 2);
            }
            return false;
        }
        if (Mode != ImageCacheMode.None)
        {
            Store(index, pixels[..imageSize]);
            Volatile.Write(ref state[index], 1);
        }
        return true;
    }

    void Store(int index, ReadOnlySpan<float> pixels)
    {
        var bytes = memory is not null ? new byte[imageSize] : System.Buffers.ArrayPool<byte>.Shared.Rent(imageSize);
        for (int i = 0; i < imageSize; i++) bytes[i] = (byte)Math.Clamp((int)MathF.Round(pixels[i] * 255f), 0, 255);
        if (memory is not null)
        {
            memory[index] = bytes;
            return;
        }
        RandomAccess.Write(file!, bytes.AsSpan(0, imageSize), (long)index * imageSize);
        System.Buffers.ArrayPool<byte>.Shared.Return(bytes);
    }

    void Load(int index, Span<float> pixels)
    {
        if (memory is not null)
        {
            var cached = memory[index];
            for (int i = 0; i < imageSize; i++) pixels[i] = cached[i] / 255f;
            return;
        }
        var bytes = System.Buffers.ArrayPool<byte>.Shared.Rent(imageSize);
        try
        {
            int read = 0;
            while (read < imageSize)
            {
                int n = RandomAccess.Read(file!, bytes.AsSpan(read, imageSize - read), (long)index * imageSize + read);
                if (n == 0) throw new IOException($"The image cache {filePath} ends early at image {index}; was it truncated by another program?");
                read += n;
            }
            for (int i = 0; i < imageSize; i++) pixels[i] = bytes[i] / 255f;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    public void Dispose() => file?.Dispose();
}
