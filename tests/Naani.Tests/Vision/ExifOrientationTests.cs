using Naani.Vision;
using SkiaSharp;

namespace Naani.Tests.Vision;

/// JPEGs whose EXIF orientation says the stored pixels are turned (as cameras store portrait photographs) are read as
/// they are meant to be seen, as Keras's loader (PIL's exif_transpose) and browsers show them.
public sealed class ExifOrientationTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("naani-exif-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    // A 32 x 16 JPEG, left half red, right half blue, with an EXIF APP1 segment holding only the Orientation tag.
    string Jpeg(int orientation)
    {
        using var bitmap = new SKBitmap(32, 16);
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 32; x++) bitmap.SetPixel(x, y, x < 16 ? SKColors.Red : SKColors.Blue);
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 100);
        var jpeg = data.ToArray();
        byte[] tiff =
        [
            (byte)'I', (byte)'I', 42, 0, 8, 0, 0, 0,              // little-endian TIFF header, first IFD at 8
            1, 0,                                                  // one entry
            0x12, 0x01, 3, 0, 1, 0, 0, 0, (byte)orientation, 0, 0, 0, // Orientation (0x0112), SHORT, 1 value
            0, 0, 0, 0,                                            // no next IFD
        ];
        var app1 = new List<byte> { 0xFF, 0xE1 };
        int length = 2 + 6 + tiff.Length;
        app1.Add((byte)(length >> 8));
        app1.Add((byte)length);
        app1.AddRange("Exif\0\0"u8.ToArray());
        app1.AddRange(tiff);
        string path = Path.Combine(directory, $"o{orientation}.jpg");
        File.WriteAllBytes(path, [.. jpeg[..2], .. app1, .. jpeg[2..]]);
        return path;
    }

    static bool Red(Tensor image, int y, int x) => image.Data[(y * image.Shape[1] + x) * 3] > 0.8f && image.Data[(y * image.Shape[1] + x) * 3 + 2] < 0.2f;
    static bool Blue(Tensor image, int y, int x) => image.Data[(y * image.Shape[1] + x) * 3 + 2] > 0.8f && image.Data[(y * image.Shape[1] + x) * 3] < 0.2f;

    [Theory]
    [InlineData(1, 16, 32, "left red")]
    [InlineData(2, 16, 32, "left blue")]      // mirrored
    [InlineData(3, 16, 32, "left blue")]      // turned 180
    [InlineData(6, 32, 16, "top red")]        // stored turned: shown turned 90 degrees clockwise, the left side on top
    [InlineData(8, 32, 16, "top blue")]       // 90 degrees counter-clockwise, the right side on top
    public void The_orientation_tag_is_applied_when_an_image_is_read(int orientation, int height, int width, string expected)
    {
        string path = Jpeg(orientation);
        var header = ImageFile.ReadHeader(path);
        Assert.Equal((width, height), (header.Width, header.Height));

        var image = ImageFile.Load(path);
        Assert.Equal(new Shape(height, width, 3), image.Shape);
        // The top-left corner has the expected colour, the bottom-right the other.
        var (first, last) = ((2, 2), (height - 3, width - 3));
        bool firstRed = expected.EndsWith("red", StringComparison.Ordinal);
        Assert.True(firstRed ? Red(image, first.Item1, first.Item2) : Blue(image, first.Item1, first.Item2), $"orientation {orientation}: first corner");
        Assert.True(firstRed ? Blue(image, last.Item1, last.Item2) : Red(image, last.Item1, last.Item2), $"orientation {orientation}: opposite corner");

        // Resized on reading (to a square, as a dataset does), the turn is applied first.
        var square = ImageFile.Load(path, (8, 8));
        Assert.True(firstRed ? Red(square, 0, 0) : Blue(square, 0, 0));
    }
}
