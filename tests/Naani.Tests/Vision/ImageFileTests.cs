using System.Buffers.Binary;
using Naani.Tests.Data;
using Naani.Vision;
using SkiaSharp;
using Xunit;

namespace Naani.Tests.Vision;

public sealed class ImageFileTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    /// An RGB image whose pixel (y, x) is (10 y + x, 3 x, 255 - y) so that each pixel can be checked.
    internal static SKBitmap Pattern(int width, int height)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, new SKColor((byte)(10 * y + x), (byte)(3 * x), (byte)(255 - y)));
        return bitmap;
    }

    internal static string Write(SKBitmap bitmap, string path, SKEncodedImageFormat format = SKEncodedImageFormat.Png, int quality = 100)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var data = bitmap.Encode(format, quality);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Fact]
    public void Png_is_read_at_its_own_size_as_rgb_in_the_unit_range()
    {
        using var bitmap = Pattern(7, 5);
        var path = Write(bitmap, temp.Sub("p.png"));

        var image = ImageFile.Load(path);

        Assert.Equal(new Shape(5, 7, 3), image.Shape);
        Assert.Equal((10 * 4 + 6) / 255f, image[4, 6, 0]);
        Assert.Equal(18 / 255f, image[4, 6, 1]);
        Assert.Equal(251 / 255f, image[4, 6, 2]);
    }

    [Fact]
    public void Grayscale_uses_the_keras_weights_rounded_to_8_bits()
    {
        using var bitmap = Pattern(4, 4);
        var image = ImageFile.Load(Write(bitmap, temp.Sub("g.png")), color: ColorMode.Grayscale);
        Assert.Equal(new Shape(4, 4, 1), image.Shape);
        float expected = MathF.Round(0.2989f * 23 + 0.5870f * 9 + 0.1140f * 253) / 255f;
        Assert.Equal(expected, image[2, 3, 0]);
    }

    [Fact]
    public void Resize_gives_the_requested_size_and_keeps_a_flat_colour()
    {
        using var flat = new SKBitmap(new SKImageInfo(50, 30, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        flat.Erase(new SKColor(200, 100, 50));
        var path = Write(flat, temp.Sub("flat.png"));

        var image = ImageFile.Load(path, (16, 20));
        var cropped = ImageFile.Load(path, (16, 16), cropToAspectRatio: true);

        Assert.Equal(new Shape(16, 20, 3), image.Shape);
        Assert.Equal(new Shape(16, 16, 3), cropped.Shape);
        Assert.All(Enumerable.Range(0, 16 * 20), p => Assert.Equal(200 / 255f, image.Data[3 * p]));
        Assert.Equal(50 / 255f, cropped[8, 8, 2]);
    }

    [Theory]
    [InlineData("jpg")]
    [InlineData("webp")]
    [InlineData("bmp")]
    public void Jpeg_webp_and_bmp_decode(string format)
    {
        var dir = temp.Sub("synth-" + format);
        SyntheticImages.WriteFolder(dir, classes: 1, perClass: 1, size: 32, format: format);
        var file = Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Single();

        var header = ImageFile.ReadHeader(file);
        var image = ImageFile.Load(file, (24, 24));

        Assert.Equal((32, 32), (header.Width, header.Height));
        Assert.Equal(new Shape(24, 24, 3), image.Shape);
        Assert.Contains(image.Data, v => v > 0.05f);
    }

    [Fact]
    public void Gif_decodes_its_first_frame()
    {
        // A 1x1 GIF89a whose only pixel is red (the classic smallest GIF, with a red palette entry).
        byte[] gif = Convert.FromBase64String("R0lGODlhAQABAIAAAP8AAAAAACH5BAAAAAAALAAAAAABAAEAAAICRAEAOw==");
        var path = temp.Sub("red.gif");
        Directory.CreateDirectory(temp.Path);
        File.WriteAllBytes(path, gif);

        var image = ImageFile.Load(path);

        Assert.Equal(new Shape(1, 1, 3), image.Shape);
        Assert.Equal([1f, 0f, 0f], image.Data);
    }

    [Fact]
    public void A_text_file_named_jpg_is_not_an_image_and_the_reason_says_so()
    {
        var path = temp.Sub("notes.jpg");
        Directory.CreateDirectory(temp.Path);
        File.WriteAllText(path, "this is not a picture");

        bool ok = ImageFile.TryLoad(path, 8, 8, ColorMode.Rgb, new float[192], out var reason);

        Assert.False(ok);
        Assert.Contains("not an image", reason);
        Assert.Contains(path, reason);
    }

    [Fact]
    public void A_truncated_jpeg_is_reported_as_truncated()
    {
        using var bitmap = Pattern(64, 64);
        var path = Write(bitmap, temp.Sub("t.jpg"), SKEncodedImageFormat.Jpeg, 95);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);

        bool ok = ImageFile.TryLoad(path, 32, 32, ColorMode.Rgb, new float[32 * 32 * 3], out var reason);

        Assert.False(ok);
        Assert.Contains("truncated", reason);
    }

    [Fact]
    public void Absurd_dimensions_are_refused_from_the_header_before_decoding()
    {
        // A PNG header claiming 100,000 x 100,000 pixels: 40 GB decoded, and no pixel data at all.
        var path = temp.Sub("huge.png");
        Directory.CreateDirectory(temp.Path);
        File.WriteAllBytes(path, PngHeader(100_000, 100_000));

        var e = Assert.Throws<InvalidDataException>(() => ImageFile.ReadHeader(path));
        Assert.Contains("100,000x100,000", e.Message);
        Assert.False(ImageFile.TryLoad(path, 8, 8, ColorMode.Rgb, new float[192], out var reason));
        Assert.Contains("refusing", reason);
    }

    [Fact]
    public void SavePng_round_trips_8_bit_values_exactly()
    {
        var image = new Tensor(3, 4, 3);
        for (int i = 0; i < image.Length; i++) image.Data[i] = (i * 37 % 256) / 255f;
        var path = temp.Sub("out", "round.png");

        ImageFile.SavePng(image, path);

        Assert.Equal(image.Data, ImageFile.Load(path).Data);
        Assert.Empty(Directory.GetFiles(temp.Sub("out"), "*.tmp"));
    }

    static byte[] PngHeader(int width, int height)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;    // bit depth
        ihdr[9] = 2;    // colour type RGB
        // IHDR, a few bytes of (compressed) pixel data, IEND: a well-formed but hostile file.
        return [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]), .. Chunk("IEND", [])];
    }

    static byte[] Chunk(string type, byte[] data)
    {
        var chunk = new List<byte>();
        var length = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        chunk.AddRange(length);
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        chunk.AddRange(typed);
        uint crc = Crc32(typed);
        chunk.AddRange([(byte)(crc >> 24), (byte)(crc >> 16), (byte)(crc >> 8), (byte)crc]);
        return [.. chunk];
    }

    static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
