using Naani.Inspection;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Tests.Data;
using Naani.Vision;
using SkiaSharp;
using Xunit;

namespace Naani.Tests.Vision;

/// The pictures of the inspection commands hold what the formulas say: filters against a naive convolution of the
/// decoded image, kernel and feature-map grids against the weights and the layer outputs.
public sealed class InspectionTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    // y[i, j] = sum_{m, n} x[i*s + m - pt, j*s + n - pl] * k[m, n], zero outside: the seed's formula, with Keras's padding.
    static float[,] Naive(Tensor image, int channel, float[,] k, int stride, Padding padding)
    {
        int h = image.Shape[0], w = image.Shape[1], kh = k.GetLength(0), kw = k.GetLength(1);
        int oh = ConvGeometry.OutputSize(h, kh, stride, padding), ow = ConvGeometry.OutputSize(w, kw, stride, padding);
        int pt = ConvGeometry.PadBefore(h, kh, stride, padding), pl = ConvGeometry.PadBefore(w, kw, stride, padding);
        var y = new float[oh, ow];
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                double sum = 0;
                for (int m = 0; m < kh; m++)
                    for (int n = 0; n < kw; n++)
                    {
                        int r = i * stride + m - pt, c = j * stride + n - pl;
                        if (r >= 0 && r < h && c >= 0 && c < w) sum += image[r, c, channel] * k[m, n];
                    }
                y[i, j] = (float)sum;
            }
        return y;
    }

    string Photo()
    {
        var dir = temp.Sub("photo");
        SyntheticImages.WriteFolder(dir, 1, 1, size: 40, format: "png", seed: 3);
        return Directory.GetFiles(dir, "*.png", SearchOption.AllDirectories).Single();
    }

    [Theory]
    [InlineData("horizontal", 1, Padding.Valid, FilterDisplay.Clip)]
    [InlineData("vertical", 1, Padding.Same, FilterDisplay.Clip)]
    [InlineData("laplacian", 2, Padding.Valid, FilterDisplay.Abs)]
    [InlineData("blur", 2, Padding.Same, FilterDisplay.Clip)]
    [InlineData("negative-blur", 1, Padding.Valid, FilterDisplay.Abs)]
    public void Filtered_png_holds_the_convolution_formula_of_each_pixel(string name, int stride, Padding padding, FilterDisplay display)
    {
        var path = Photo();
        var image = ImageFile.Load(path, color: ColorMode.Grayscale);
        var kernel = ClassicKernels.Named(name)!;

        var filtered = ImageFilter.Apply(image, kernel, stride, padding);
        var output = temp.Sub($"{name}.png");
        ImageFile.SavePng(ImageFilter.ForDisplay(filtered, display), output);

        var expected = Naive(image, 0, kernel, stride, padding);
        using var png = SKBitmap.Decode(output);
        Assert.Equal((expected.GetLength(1), expected.GetLength(0)), (png.Width, png.Height));
        int checkedPixels = 0;
        for (int i = 0; i < png.Height; i++)
            for (int j = 0; j < png.Width; j++)
            {
                float v = display == FilterDisplay.Abs ? Math.Abs(expected[i, j]) : expected[i, j];
                byte want = (byte)Math.Clamp((int)MathF.Round(v * 255), 0, 255);
                Assert.InRange(png.GetPixel(j, i).Red, want - 1, want + 1);
                Assert.Equal(png.GetPixel(j, i).Red, png.GetPixel(j, i).Blue);
                checkedPixels++;
            }
        Assert.True(checkedPixels > 100);
        Assert.Equal(expected[1, 1], filtered[1, 1, 0], 4);
    }

    [Fact]
    public void Rgb_filtering_treats_each_channel_on_its_own()
    {
        var image = ImageFile.Load(Photo());
        var filtered = ImageFilter.Apply(image, ClassicKernels.Vertical, 1, Padding.Valid);
        for (int c = 0; c < 3; c++)
        {
            var expected = Naive(image, c, ClassicKernels.Vertical, 1, Padding.Valid);
            Assert.Equal(expected[5, 7], filtered[5, 7, c], 4);
            Assert.Equal(expected[20, 30], filtered[20, 30, c], 4);
        }
    }

    [Fact]
    public void The_seed_blur_is_the_negative_of_naani_blur()
    {
        var image = ImageFile.Load(Photo(), color: ColorMode.Grayscale);
        var blur = ImageFilter.Apply(image, ClassicKernels.Blur);
        var seedBlur = ImageFilter.Apply(image, ClassicKernels.NegativeBlur);
        for (int i = 0; i < blur.Length; i++) Assert.Equal(-blur.Data[i], seedBlur.Data[i], 5);
        Assert.All(ImageFilter.ForDisplay(seedBlur, FilterDisplay.Clip).Data, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Kernel_text_files_parse_rows_brackets_and_fractions()
    {
        var k = ClassicKernels.Parse("# sharpen\n0 -1 0\n-1 5 -1\n0, -1, 0\n");
        Assert.Equal(5f, k[1, 1]);
        var one = ClassicKernels.Parse("[[1/9, 1/9], [1/9, 1/9]]");
        Assert.Equal(1f / 9, one[1, 0]);
        Assert.Contains("row 2", Assert.Throws<InvalidDataException>(() => ClassicKernels.Parse("1 2\n3")).Message);
        Assert.Contains("'x'", Assert.Throws<InvalidDataException>(() => ClassicKernels.Parse("1 x")).Message);
        Assert.Equal("[[ 1  1  1]\n [ 0  0  0]\n [-1 -1 -1]]".Replace("\n", Environment.NewLine), ClassicKernels.Format(ClassicKernels.Horizontal));
    }

    static Sequential Naani128Small(int seed = 42)
    {
        var model = Architectures.Naani128(seed, new Shape(24, 24, 3), 2);
        model.Build();
        return model;
    }

    [Fact]
    public void Kernel_grid_tiles_are_the_weights_on_a_shared_symmetric_scale()
    {
        var model = Naani128Small();
        var conv = (Conv2D)model.GetLayer("conv1");
        var k = conv.Kernel.Value;
        float maxAbs = k.Data.Max(Math.Abs);

        using var drawing = InspectionImages.DrawKernels(conv, maxFilters: 4);
        var picture = drawing.Bitmap;

        // Filter f is cell f + 1: its colour tile first ("tile f.1"), then channel ch ("tile f.(ch + 2)").
        var tiles = drawing.Boxes.Where(b => b.What == LayoutBox.Kind.Tile).ToDictionary(b => b.Name, b => b.Rect);
        Assert.Equal(4 * 4, tiles.Count);
        foreach (var (f, ch, i, j) in new[] { (0, 0, 0, 0), (1, 2, 2, 1), (3, 1, 1, 2) })
        {
            var tile = tiles[$"tile {f + 1}.{ch + 2}"];
            float cell = tile.Width / 3;
            var pixel = picture.GetPixel((int)(tile.Left + (j + 0.5f) * cell), (int)(tile.Top + (i + 0.5f) * cell));
            Assert.Equal(Colormaps.Map(Colormap.Diverging, k[i, j, ch, f] * (0.5f / maxAbs) + 0.5f), pixel);
        }
        var colour = tiles["tile 1.1"];   // the RGB tile of filter 1
        var rgb = picture.GetPixel((int)colour.Left, (int)colour.Top);
        Assert.Equal(ImageFile.ToByte(k[0, 0, 0, 0] * (0.5f / maxAbs) + 0.5f), rgb.Red);
        Assert.Equal(ImageFile.ToByte(k[0, 0, 2, 0] * (0.5f / maxAbs) + 0.5f), rgb.Blue);
    }

    [Fact]
    public void Feature_maps_are_the_layer_outputs_of_the_image_and_pooling_follows()
    {
        var model = Naani128Small();
        var image = ImageFile.Load(Photo(), (24, 24));

        var (maps, pooled) = FeatureMaps.Of(model, image, "conv1");

        Assert.Equal(new Shape(1, 24, 24, 32), maps.Output.Shape);
        Assert.NotNull(pooled);
        Assert.Equal(new Shape(1, 12, 12, 32), pooled!.Output.Shape);
        // conv1 is 'same' 3x3 + bias + ReLU: check a few values against the formula.
        var conv = (Conv2D)maps.Layer;
        foreach (var f in new[] { 0, 7, 31 })
        {
            var kernel = new float[3, 3];
            double expected = conv.Bias!.Value.Data[f];
            for (int c = 0; c < 3; c++)
            {
                for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) kernel[i, j] = conv.Kernel.Value[i, j, c, f];
                expected += Naive(image, c, kernel, 1, Padding.Same)[10, 13];
            }
            Assert.Equal(Math.Max(0, expected), maps.Output[0, 10, 13, f], 4);
        }
        // Max pooling 2x2 of those maps.
        Assert.Equal(new[] { maps.Output[0, 4, 6, 5], maps.Output[0, 4, 7, 5], maps.Output[0, 5, 6, 5], maps.Output[0, 5, 7, 5] }.Max(), pooled.Output[0, 2, 3, 5]);
        // The whole model, layer by layer, ends where Predict ends.
        var all = FeatureMaps.Compute(model, image);
        Assert.Equal(model.Predict(image.Reshape(1, 24, 24, 3)).Data, all[^1].Output.Data);
    }

    [Fact]
    public void Feature_map_grid_tile_is_the_min_max_scaled_map_in_the_colour_map()
    {
        var model = Naani128Small();
        var image = ImageFile.Load(Photo(), (24, 24));
        var (maps, _) = FeatureMaps.Of(model, image, "conv1");

        using var picture = InspectionImages.DrawFeatureMaps(maps, Colormap.Gray);
        var path = temp.Sub("fm.png");
        ImageFile.SavePng(picture.Bitmap, path);
        using var png = SKBitmap.Decode(path);

        foreach (var (f, y, x) in new[] { (0, 3, 4), (9, 20, 11), (31, 0, 23) })
        {
            var normalized = ImageGrid.Normalize(ImageGrid.Channel(maps.Output, f), out _, out _);
            var tile = picture.Boxes.Single(b => b.Name == $"tile {f + 1}").Rect;
            int scale = (int)tile.Width / 24;
            Assert.Equal(ImageFile.ToByte(normalized[y * 24 + x]), png.GetPixel((int)tile.Left + x * scale, (int)tile.Top + y * scale).Red);
        }
        Assert.Throws<ArgumentException>(() => InspectionImages.FeatureMaps(FeatureMaps.Compute(model, image)[^1]));
    }

    [Fact]
    public void Feature_maps_refuse_an_image_of_another_size()
    {
        var model = Naani128Small();
        var e = Assert.Throws<ArgumentException>(() => FeatureMaps.Compute(model, new Tensor(32, 32, 3)));
        Assert.Contains("(24, 24, 3)", e.Message);
    }

    [Theory]
    [InlineData("resnet-mini")]
    [InlineData("googlenet-mini")]
    public void Feature_maps_of_a_network_with_branches_feed_each_call_what_it_reads_and_end_where_Predict_ends(string name)
    {
        var model = Architectures.Create(name, seed: 4);
        var image = new Tensor(28, 28, 1);
        var rng = new Random(2);
        for (int i = 0; i < image.Length; i++) image.Data[i] = (float)rng.NextDouble();

        var calls = FeatureMaps.Calls(model);
        var outputs = FeatureMaps.Compute(model, image);
        Assert.Equal(calls.Layers.Count, outputs.Count);
        Assert.Contains(calls.Reads, r => r.Length > 1);   // a merge reads several calls
        var expected = model.Predict(image.Reshape(1, 28, 28, 1), batchSize: 1).Data;
        var main = outputs[calls.Main].Output.Data;
        Assert.Equal(expected.Length, main.Length);
        for (int k = 0; k < expected.Length; k++) Assert.Equal(expected[k], main[k], 5);
    }
}
