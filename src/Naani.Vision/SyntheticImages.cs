using SkiaSharp;

namespace Naani.Vision;

/// Writes image folders of simple shapes, for trying Naani (and testing it) without photographs: class k is a shape
/// (circle, square, triangle, cross, ring, diamond, bar, star) in a hue of its own, drawn at a random place, size, angle
/// and shade over a random muted gradient with pixel noise. A small CNN learns them in a few epochs.
public static class SyntheticImages
{
    public static IReadOnlyList<string> ShapeNames { get; } = ["circle", "square", "triangle", "cross", "ring", "diamond", "bar", "star"];

    /// Writes perClass images of each of the first classes shapes into directory/SHAPE/NNNNN.EXT (jpg, png, bmp or webp),
    /// size x size pixels; the same seed writes the same files. Returns the number of files written.
    public static int WriteFolder(string directory, int classes, int perClass, int size = 64, string format = "png", int seed = 1, int? threads = null)
    {
        if (classes < 1 || classes > ShapeNames.Count) throw new ArgumentOutOfRangeException(nameof(classes), $"Between 1 and {ShapeNames.Count} classes; got {classes}.");
        if (perClass < 1) throw new ArgumentOutOfRangeException(nameof(perClass), $"At least one image per class; got {perClass}.");
        if (size < 8 || size > 4096) throw new ArgumentOutOfRangeException(nameof(size), $"The size must be in [8, 4096]; got {size}.");
        var encoding = format.ToLowerInvariant() switch
        {
            "jpg" or "jpeg" => SKEncodedImageFormat.Jpeg,
            "png" => SKEncodedImageFormat.Png,
            "webp" => SKEncodedImageFormat.Webp,
            "bmp" => SKEncodedImageFormat.Bmp,
            _ => throw new ArgumentException($"Unknown format '{format}'; use jpg, png, webp or bmp."),
        };
        string extension = format.ToLowerInvariant() == "jpeg" ? "jpg" : format.ToLowerInvariant();
        for (int c = 0; c < classes; c++) Directory.CreateDirectory(Path.Combine(directory, ShapeNames[c]));
        Parallel.For(0, classes * perClass, new ParallelOptions { MaxDegreeOfParallelism = threads ?? Environment.ProcessorCount }, i =>
        {
            int c = i % classes, n = i / classes;
            var random = new Rng((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)i);
            using var bitmap = Draw(c, size, random);
            var path = Path.Combine(directory, ShapeNames[c], $"{n:D5}.{extension}");
            if (encoding == SKEncodedImageFormat.Bmp)
            {
                WriteBmp(bitmap, path);
                return;
            }
            using var data = bitmap.Encode(encoding, 90) ?? throw new IOException($"Encoding {path} as {format} failed.");
            using var file = File.Create(path);
            data.SaveTo(file);
        });
        return classes * perClass;
    }

    /// One image of shape class c.
    public static SKBitmap Draw(int c, int size, Rng random)
    {
        var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(bitmap);
        // A muted background (two greyish colours in a gradient) and a saturated shape whose hue belongs to its class
        // (class k of K around 360 k / K degrees, +-25): learnable from a few hundred images, by shape and by colour.
        SKColor Muted() => SKColor.FromHsv(random.Uniform(0, 360), random.Uniform(0, 25), random.Uniform(25, 85));
        var (from, to) = (Muted(), Muted());
        using (var background = new SKPaint())
        {
            background.Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(size, size * random.NextFloat()), [from, to], SKShaderTileMode.Clamp);
            canvas.DrawRect(0, 0, size, size, background);
        }
        float radius = size * random.Uniform(0.2f, 0.34f);
        float cx = random.Uniform(radius, size - radius), cy = random.Uniform(radius, size - radius);
        float hue = (360f * c / ShapeNames.Count * 3 + random.Uniform(-25, 25) + 360) % 360;
        var ink = SKColor.FromHsv(hue, random.Uniform(60, 100), random.Uniform(70, 100));
        using var paint = new SKPaint { Color = ink, IsAntialias = true, Style = SKPaintStyle.Fill, StrokeWidth = Math.Max(2, radius * 0.35f) };
        float angle = random.Uniform(-0.4f, 0.4f);
        canvas.Translate(cx, cy);
        canvas.RotateRadians(angle);
        switch (ShapeNames[c])
        {
            case "circle":
                canvas.DrawCircle(0, 0, radius, paint);
                break;
            case "square":
                canvas.DrawRect(-radius * 0.85f, -radius * 0.85f, radius * 1.7f, radius * 1.7f, paint);
                break;
            case "triangle":
                canvas.DrawPath(Polygon([(0, -radius), (radius * 0.95f, radius * 0.75f), (-radius * 0.95f, radius * 0.75f)]), paint);
                break;
            case "cross":
                canvas.DrawRect(-radius, -radius * 0.25f, radius * 2, radius * 0.5f, paint);
                canvas.DrawRect(-radius * 0.25f, -radius, radius * 0.5f, radius * 2, paint);
                break;
            case "ring":
                paint.Style = SKPaintStyle.Stroke;
                canvas.DrawCircle(0, 0, radius * 0.8f, paint);
                break;
            case "diamond":
                canvas.DrawPath(Polygon([(0, -radius), (radius * 0.7f, 0), (0, radius), (-radius * 0.7f, 0)]), paint);
                break;
            case "bar":
                canvas.DrawRect(-radius, -radius * 0.2f, radius * 2, radius * 0.4f, paint);
                break;
            default:
                var points = new (float, float)[10];
                for (int k = 0; k < 10; k++)
                {
                    float r = k % 2 == 0 ? radius : radius * 0.45f, a = MathF.PI * k / 5 - MathF.PI / 2;
                    points[k] = (r * MathF.Cos(a), r * MathF.Sin(a));
                }
                canvas.DrawPath(Polygon(points), paint);
                break;
        }
        canvas.ResetMatrix();
        canvas.Flush();
        // Pixel noise, so that no two images are alike even at the same place and colour.
        var pixels = bitmap.GetPixelSpan();
        for (int p = 0; p < pixels.Length; p += 4)
            for (int k = 0; k < 3; k++)
                pixels[p + k] = (byte)Math.Clamp(pixels[p + k] + random.NextInt(25) - 12, 0, 255);
        bitmap.NotifyPixelsChanged();
        return bitmap;
    }

    static SKPath Polygon((float X, float Y)[] points)
    {
        var path = new SKPath();
        path.MoveTo(points[0].X, points[0].Y);
        foreach (var (x, y) in points.Skip(1)) path.LineTo(x, y);
        path.Close();
        return path;
    }

    // SkiaSharp decodes BMP but does not encode it: write a 24-bit bottom-up BMP by hand.
    static void WriteBmp(SKBitmap bitmap, string path)
    {
        int w = bitmap.Width, h = bitmap.Height, rowBytes = (w * 3 + 3) & ~3, size = 54 + rowBytes * h;
        var bytes = new byte[size];
        bytes[0] = (byte)'B';
        bytes[1] = (byte)'M';
        BitConverter.TryWriteBytes(bytes.AsSpan(2), size);
        BitConverter.TryWriteBytes(bytes.AsSpan(10), 54);
        BitConverter.TryWriteBytes(bytes.AsSpan(14), 40);
        BitConverter.TryWriteBytes(bytes.AsSpan(18), w);
        BitConverter.TryWriteBytes(bytes.AsSpan(22), h);
        BitConverter.TryWriteBytes(bytes.AsSpan(26), (short)1);
        BitConverter.TryWriteBytes(bytes.AsSpan(28), (short)24);
        BitConverter.TryWriteBytes(bytes.AsSpan(34), rowBytes * h);
        var pixels = bitmap.GetPixelSpan();
        for (int y = 0; y < h; y++)
        {
            int row = 54 + (h - 1 - y) * rowBytes;
            for (int x = 0; x < w; x++)
            {
                int p = (y * w + x) * 4;
                bytes[row + 3 * x] = pixels[p + 2];
                bytes[row + 3 * x + 1] = pixels[p + 1];
                bytes[row + 3 * x + 2] = pixels[p];
            }
        }
        File.WriteAllBytes(path, bytes);
    }
}
