using SkiaSharp;

namespace Naani.Vision;

/// The channels an image is decoded to.
public enum ColorMode
{
    /// Three channels, red, green, blue; an alpha channel is dropped, as Keras does.
    Rgb,

    /// One channel: round(0.2989 R + 0.5870 G + 0.1140 B), Keras's (ITU-R 601) weights, kept on 8 bits.
    Grayscale,
}

/// What a file's header says, read without decoding the pixels.
public sealed record ImageHeader(int Width, int Height, string Format)
{
    public long Pixels => (long)Width * Height;
}

/// Reads image files (JPEG, PNG, BMP, WebP, GIF: whatever SkiaSharp decodes) into Naani's layout, (H, W, C)
/// floats in [0, 1], and writes (H, W, C) tensors back as PNG.
public static class ImageFile
{
    /// The extensions an image folder takes as images (case-insensitive).
    public static IReadOnlyList<string> Extensions { get; } = [".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"];

    /// Images with more pixels than this are refused before their pixels are allocated (a decompression bomb or a
    /// corrupt header): 100 megapixels, about 400 MB decoded.
    public const long DefaultMaxPixels = 100_000_000;

    public static bool HasImageExtension(string path) => Extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    /// Reads the header; throws InvalidDataException naming the file when it is not an image SkiaSharp can decode,
    /// or when its dimensions are absurd.
    public static ImageHeader ReadHeader(string path, long maxPixels = DefaultMaxPixels)
    {
        // The header is at the start: 1 MB covers it (even behind a large EXIF block) without reading a whole photograph.
        using var data = ReadData(path, 1 << 20);
        using var codec = OpenCodec(path, data);
        var header = CheckedHeader(path, codec, maxPixels);
        // The size it is shown at: a photograph taken upright and stored sideways (EXIF orientation 5-8) swaps them.
        return Rotated(codec.EncodedOrigin) ? header with { Width = header.Height, Height = header.Width } : header;
    }

    // EXIF orientations 5-8 store the image turned by a quarter (transposed, rotated 90 degrees either way, transversed).
    static bool Rotated(SKEncodedOrigin origin) => origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;

    /// The image as it is meant to be seen: JPEG's EXIF orientation applied (cameras store a portrait photograph sideways
    /// and say so in the tag), as Keras's loader (PIL's exif_transpose) and browsers do. Exact: a permutation of pixels.
    static SKBitmap Orient(SKBitmap source, SKEncodedOrigin origin)
    {
        if (origin is SKEncodedOrigin.TopLeft or 0) return source;
        float w = source.Width, h = source.Height;
        // Where stored pixel (x, y) goes: x' = scaleX x + skewX y + transX, y' = skewY x + scaleY y + transY.
        var matrix = origin switch
        {
            SKEncodedOrigin.TopRight => new SKMatrix(-1, 0, w, 0, 1, 0, 0, 0, 1),      // mirrored left-right
            SKEncodedOrigin.BottomRight => new SKMatrix(-1, 0, w, 0, -1, h, 0, 0, 1),  // rotated 180
            SKEncodedOrigin.BottomLeft => new SKMatrix(1, 0, 0, 0, -1, h, 0, 0, 1),    // mirrored top-bottom
            SKEncodedOrigin.LeftTop => new SKMatrix(0, 1, 0, 1, 0, 0, 0, 0, 1),        // transposed
            SKEncodedOrigin.RightTop => new SKMatrix(0, -1, h, 1, 0, 0, 0, 0, 1),      // to turn 90 clockwise
            SKEncodedOrigin.RightBottom => new SKMatrix(0, -1, h, -1, 0, w, 0, 0, 1),  // transversed
            SKEncodedOrigin.LeftBottom => new SKMatrix(0, 1, 0, -1, 0, w, 0, 0, 1),    // to turn 90 counter-clockwise
            _ => SKMatrix.Identity,
        };
        bool swap = Rotated(origin);
        var result = new SKBitmap(new SKImageInfo(swap ? source.Height : source.Width, swap ? source.Width : source.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using (var canvas = new SKCanvas(result))
        {
            canvas.Clear(SKColors.Transparent);
            canvas.SetMatrix(matrix);
            using var paint = new SKPaint { BlendMode = SKBlendMode.Src };
            canvas.DrawBitmap(source, 0, 0, paint);
        }
        source.Dispose();
        return result;
    }

    /// Decodes path, resizes it to (height, width) (bilinear, as Keras's image_dataset_from_directory; with
    /// cropToAspectRatio the largest centred crop of the target's aspect ratio is resized instead of stretching the
    /// whole image) and writes height * width * C values in [0, 1] into pixels. Returns false with a reason for a
    /// file that cannot be read (not an image, truncated, corrupt, too large); throws only on programming errors.
    public static bool TryLoad(string path, int height, int width, ColorMode color, Span<float> pixels, out string? reason,
        bool cropToAspectRatio = false, long maxPixels = DefaultMaxPixels)
    {
        int channels = color == ColorMode.Rgb ? 3 : 1;
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"Image size must be positive; got {height}x{width}.");
        if (pixels.Length < height * width * channels)
            throw new ArgumentException($"A {height}x{width}x{channels} image needs {height * width * channels} values; the destination holds {pixels.Length}.", nameof(pixels));
        try
        {
            using var data = ReadData(path);
            return TryDecode(data, path, height, width, color, pixels, out reason, cropToAspectRatio, maxPixels);
        }
        catch (InvalidDataException e)
        {
            reason = e.Message;
            return false;
        }
        catch (IOException e)
        {
            reason = e.Message;
            return false;
        }
        catch (UnauthorizedAccessException e)
        {
            reason = e.Message;
            return false;
        }
    }

    /// TryLoad for an image already in memory (an upload to a server): name stands for it in the reasons.
    public static bool TryDecode(ReadOnlySpan<byte> bytes, string name, int height, int width, ColorMode color, Span<float> pixels, out string? reason,
        bool cropToAspectRatio = false, long maxPixels = DefaultMaxPixels)
    {
        int channels = color == ColorMode.Rgb ? 3 : 1;
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"Image size must be positive; got {height}x{width}.");
        if (pixels.Length < height * width * channels)
            throw new ArgumentException($"A {height}x{width}x{channels} image needs {height * width * channels} values; the destination holds {pixels.Length}.", nameof(pixels));
        using var data = SKData.CreateCopy(bytes);
        return TryDecode(data, name, height, width, color, pixels, out reason, cropToAspectRatio, maxPixels);
    }

    static bool TryDecode(SKData data, string name, int height, int width, ColorMode color, Span<float> pixels, out string? reason,
        bool cropToAspectRatio, long maxPixels)
    {
        try
        {
            using var decoded = Decode(name, data, height, width, maxPixels);
            using var resized = Resize(decoded, height, width, cropToAspectRatio);
            ToFloats(resized, color, pixels);
            reason = null;
            return true;
        }
        catch (InvalidDataException e)
        {
            reason = e.Message;
            return false;
        }
    }

    /// Loads an image as an (H, W, C) tensor: at its own size, or resized to size. Throws InvalidDataException when it cannot be read.
    public static Tensor Load(string path, (int Height, int Width)? size = null, ColorMode color = ColorMode.Rgb, bool cropToAspectRatio = false)
    {
        var (height, width) = size ?? Size(path);
        var tensor = new Tensor(height, width, color == ColorMode.Rgb ? 3 : 1);
        if (!TryLoad(path, height, width, color, tensor.Data, out var reason, cropToAspectRatio))
            throw new InvalidDataException(reason);
        return tensor;
    }

    static (int Height, int Width) Size(string path)
    {
        var header = ReadHeader(path);
        return (header.Height, header.Width);
    }

    /// The file's bytes (at most maxBytes of them) in an SKData the caller disposes with the codec. SKCodec.Create(path)
    /// leaves its file stream to the finalizer, and the native memory of 20,000 undisposed streams adds up.
    static SKData ReadData(string path, long maxBytes = long.MaxValue)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file.", path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        long length = Math.Min(file.Length, maxBytes);
        if (length > int.MaxValue) throw new InvalidDataException($"{path} is {file.Length:N0} bytes, too large for an image file.");
        var bytes = new byte[length];
        file.ReadExactly(bytes);
        return SKData.CreateCopy(bytes);
    }

    static SKCodec OpenCodec(string path, SKData data)
    {
        var codec = SKCodec.Create(data);
        if (codec is null)
            throw new InvalidDataException(data.Size == 0
                ? $"{path} is empty."
                : $"{path} is not an image SkiaSharp can decode; JPEG, PNG, BMP, WebP and GIF are supported.");
        return codec;
    }

    static ImageHeader CheckedHeader(string path, SKCodec codec, long maxPixels)
    {
        var info = codec.Info;
        var header = new ImageHeader(info.Width, info.Height, codec.EncodedFormat.ToString().ToUpperInvariant());
        if (info.Width <= 0 || info.Height <= 0)
            throw new InvalidDataException($"{path}: the header gives {info.Width}x{info.Height} pixels; the file is corrupt.");
        if (header.Pixels > maxPixels)
            throw new InvalidDataException($"{path}: the header gives {info.Width:N0}x{info.Height:N0} pixels ({header.Pixels:N0}), more than the {maxPixels:N0} allowed; refusing to decode it.");
        return header;
    }

    /// Decodes to RGBA (unpremultiplied, 8 bits). JPEGs are decoded at the smallest built-in scale (1/2, 1/4, 1/8) that
    /// still covers the target size, which is much faster for photographs larger than the network's input.
    static SKBitmap Decode(string path, SKData data, int height, int width, long maxPixels)
    {
        using var codec = OpenCodec(path, data);
        var header = CheckedHeader(path, codec, maxPixels);
        var origin = codec.EncodedOrigin;
        if (Rotated(origin)) (width, height) = (height, width);   // the stored image is the shown one turned a quarter
        var size = new SKSizeI(header.Width, header.Height);
        float scale = Math.Max((float)width / header.Width, (float)height / header.Height);
        if (scale < 1)
        {
            var scaled = codec.GetScaledDimensions(scale);
            if (scaled.Width >= width && scaled.Height >= height && scaled.Width < header.Width) size = scaled;
        }
        var bitmap = new SKBitmap(new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        try
        {
            var result = codec.GetPixels(bitmap.Info, bitmap.GetPixels());
            if (result == SKCodecResult.InvalidScale && size.Width != header.Width)
            {
                bitmap.Dispose();
                bitmap = new SKBitmap(new SKImageInfo(header.Width, header.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
                result = codec.GetPixels(bitmap.Info, bitmap.GetPixels());
            }
            if (result == SKCodecResult.IncompleteInput)
                throw new InvalidDataException($"{path} is truncated: the {header.Format} data ends before the image does.");
            if (result != SKCodecResult.Success)
                throw new InvalidDataException($"{path}: decoding the {header.Format} image failed ({result}); the file is corrupt.");
            return Orient(bitmap, origin);
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
    }

    static SKBitmap Resize(SKBitmap source, int height, int width, bool cropToAspectRatio)
    {
        var target = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var sampling = new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None);
        if (cropToAspectRatio)
        {
            // The largest centred rectangle of the target's aspect ratio.
            double aspect = (double)width / height;
            int cropWidth = Math.Min(source.Width, (int)Math.Round(source.Height * aspect));
            int cropHeight = Math.Min(source.Height, (int)Math.Round(source.Width / aspect));
            if (cropWidth != source.Width || cropHeight != source.Height)
            {
                using var crop = new SKBitmap();
                var rect = SKRectI.Create((source.Width - cropWidth) / 2, (source.Height - cropHeight) / 2, cropWidth, cropHeight);
                if (!source.ExtractSubset(crop, rect))
                    throw new InvalidDataException($"Cropping a {source.Width}x{source.Height} image to {rect} failed.");
                return crop.Width == width && crop.Height == height ? crop.Copy() : crop.Resize(target, sampling);
            }
        }
        if (source.Width == width && source.Height == height) return source.Copy();
        return source.Resize(target, sampling) ?? throw new InvalidDataException($"Resizing a {source.Width}x{source.Height} image to {width}x{height} failed.");
    }

    static void ToFloats(SKBitmap bitmap, ColorMode color, Span<float> pixels)
    {
        // Divided, not multiplied by 1/255, so values equal MNIST's and CIFAR's pixel / 255f to the bit.
        var rgba = bitmap.GetPixelSpan();
        int n = bitmap.Width * bitmap.Height;
        if (color == ColorMode.Rgb)
        {
            for (int p = 0; p < n; p++)
            {
                pixels[3 * p] = rgba[4 * p] / 255f;
                pixels[3 * p + 1] = rgba[4 * p + 1] / 255f;
                pixels[3 * p + 2] = rgba[4 * p + 2] / 255f;
            }
            return;
        }
        for (int p = 0; p < n; p++)
            pixels[p] = MathF.Round(0.2989f * rgba[4 * p] + 0.5870f * rgba[4 * p + 1] + 0.1140f * rgba[4 * p + 2]) / 255f;
    }

    /// Writes an (H, W, C) or (1, H, W, C) tensor with C = 1 (gray), 3 (RGB) or 4 (RGBA) and values in [0, 1]
    /// (clipped) as a PNG, atomically.
    public static void SavePng(Tensor image, string path)
    {
        using var bitmap = ToBitmap(image);
        SavePng(bitmap, path);
    }

    /// The same image as PNG bytes (for pages that embed it).
    public static byte[] EncodePng(Tensor image)
    {
        using var bitmap = ToBitmap(image);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100) ?? throw new IOException($"Encoding a {image.Shape} image as PNG failed.");
        return data.ToArray();
    }

    static SKBitmap ToBitmap(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var dims = image.Shape.Dims;
        if (image.Rank == 4 && dims[0] == 1) dims = dims[1..];
        if (dims.Length != 3 || dims[2] is not (1 or 3 or 4))
            throw new ArgumentException($"A PNG is written from an (H, W, C) image with 1, 3 or 4 channels; got {image.Shape}.", nameof(image));
        int height = dims[0], width = dims[1], channels = dims[2];
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var rgba = bitmap.GetPixelSpan();
        var data = image.Data;
        for (int p = 0; p < height * width; p++)
        {
            byte r = ToByte(data[p * channels]);
            rgba[4 * p] = r;
            rgba[4 * p + 1] = channels == 1 ? r : ToByte(data[p * channels + 1]);
            rgba[4 * p + 2] = channels == 1 ? r : ToByte(data[p * channels + 2]);
            rgba[4 * p + 3] = channels == 4 ? ToByte(data[p * channels + 3]) : (byte)255;
        }
        return bitmap;
    }

    /// Writes a bitmap as PNG beside path and renames it into place, so a reader never sees half a file.
    public static void SavePng(SKBitmap bitmap, string path)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100) ?? throw new IOException($"Encoding {path} as PNG failed.");
        Naani.IO.AtomicFile.Write(path, data.SaveTo);
    }

    /// round(v * 255) clipped to [0, 255]; NaN becomes 0.
    public static byte ToByte(float value) => float.IsNaN(value) ? (byte)0 : (byte)Math.Clamp((int)MathF.Round(value * 255f), 0, 255);
}
