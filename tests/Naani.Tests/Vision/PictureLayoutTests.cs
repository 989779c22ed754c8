using Naani.Inspection;
using Naani.Layers;
using Naani.Models;
using Naani.Vision;
using SkiaSharp;
using Xunit;

namespace Naani.Tests.Vision;

/// The pictures read at a glance: every box a renderer draws (tiles, captions, names, counts, titles) lies inside
/// the image, no text meets another text or a tile it is not drawn on, tiles are large enough to read and the image
/// stays of bounded size. The boxes are the ones the renderers draw from (Drawing.Boxes), not a recomputation.
public sealed class PictureLayoutTests
{
    static bool Overlap(SKRect a, SKRect b) => a.Left < b.Right && b.Left < a.Right && a.Top < b.Bottom && b.Top < a.Bottom;

    /// The collisions among boxes: any two texts that meet, a text on a tile it does not name as On, two tiles that
    /// meet, a text named On a tile but not inside it, a box outside the image.
    static List<string> Collisions(Drawing drawing)
    {
        var problems = new List<string>();
        var image = SKRect.Create(0, 0, drawing.Bitmap.Width, drawing.Bitmap.Height);
        var boxes = drawing.Boxes.OrderBy(b => b.Rect.Left).ToList();
        var byName = drawing.Boxes.GroupBy(b => b.Name).ToDictionary(g => g.Key, g => g.First());
        foreach (var b in boxes)
        {
            if (!image.Contains(b.Rect)) problems.Add($"{b.Name} {b.Rect} is outside the {image.Width}x{image.Height} image");
            if (b.On is not null && !byName[b.On].Rect.Contains(b.Rect)) problems.Add($"{b.Name} {b.Rect} sticks out of {b.On} {byName[b.On].Rect}");
        }
        // Sweep left to right: only boxes that start before this one ends can meet it.
        for (int i = 0; i < boxes.Count && problems.Count < 20; i++)
        {
            var a = boxes[i];
            for (int j = i + 1; j < boxes.Count && boxes[j].Rect.Left < a.Rect.Right; j++)
            {
                var b = boxes[j];
                if (!Overlap(a.Rect, b.Rect) || a.On == b.Name || b.On == a.Name) continue;
                problems.Add($"{a.Name} {a.Rect} meets {b.Name} {b.Rect}");
            }
        }
        return problems;
    }

    static void AssertReadable(Drawing drawing, int maxSide = GridLayout.MaxSide)
    {
        Assert.Empty(Collisions(drawing));
        Assert.InRange(drawing.Bitmap.Width, 100, maxSide);
        Assert.InRange(drawing.Bitmap.Height, 100, maxSide);
    }

    static IEnumerable<LayoutBox> Tiles(Drawing drawing) => drawing.Boxes.Where(b => b.What == LayoutBox.Kind.Tile);

    static IEnumerable<LayoutBox> Texts(Drawing drawing) => drawing.Boxes.Where(b => b.What == LayoutBox.Kind.Text);

    [Fact]
    public void The_collision_check_finds_texts_that_meet_and_boxes_outside()
    {
        using var bitmap = new SKBitmap(200, 200);
        var drawing = new Drawing(bitmap, [
            new(LayoutBox.Kind.Tile, "tile 1", SKRect.Create(10, 10, 50, 50)),
            new(LayoutBox.Kind.Text, "caption 1", SKRect.Create(10, 55, 20, 14)),   // runs into its tile
            new(LayoutBox.Kind.Text, "count", SKRect.Create(20, 20, 10, 10), On: "tile 1"),   // drawn on its tile: fine
            new(LayoutBox.Kind.Text, "caption 2", SKRect.Create(25, 62, 20, 14)),   // runs into caption 1
            new(LayoutBox.Kind.Text, "far", SKRect.Create(190, 190, 20, 14)),
        ]);
        var problems = Collisions(drawing);
        Assert.Contains(problems, p => p.StartsWith("tile 1", StringComparison.Ordinal) && p.Contains("meets caption 1", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("caption 1", StringComparison.Ordinal) && p.Contains("meets caption 2", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("far", StringComparison.Ordinal) && p.Contains("outside", StringComparison.Ordinal));
        Assert.DoesNotContain(problems, p => p.Contains("count", StringComparison.Ordinal));
        Assert.Equal(3, problems.Count);
    }

    static Conv2D Convolution(int filters, int kernel, int channels, int seed = 1)
    {
        var conv = new Conv2D(filters, kernel, name: "conv1");
        conv.Build(new Shape(28, 28, channels), new Rng((ulong)seed));
        return conv;
    }

    [Fact]
    public void Mnist_baseline_kernels_form_a_square_grid_of_legible_tiles()
    {
        var model = Architectures.MnistBaseline(42);
        model.Build();
        var conv = model.Layers.OfType<Conv2D>().First();
        Assert.Equal(new Shape(5, 5, 1, 32), conv.Kernel.Value.Shape);

        using var picture = InspectionImages.DrawKernels(conv);

        AssertReadable(picture);
        var tiles = Tiles(picture).ToList();
        Assert.Equal(32, tiles.Count);
        Assert.All(tiles, t => Assert.True(t.Rect.Width >= 40 && t.Rect.Height >= 40, $"{t.Name} is {t.Rect.Width} px wide"));
        // A grid, not a column: several tiles share a row and several a column, and the picture is about square.
        int columns = tiles.Select(t => t.Rect.Left).Distinct().Count(), rows = tiles.Select(t => t.Rect.Top).Distinct().Count();
        Assert.InRange(columns, 4, 10);
        Assert.InRange(rows, 3, 8);
        Assert.InRange((double)picture.Bitmap.Width / picture.Bitmap.Height, 0.6, 2.5);
        // Captions are the filter numbers from 1, each under its own tile.
        var captions = Texts(picture).Where(b => b.Name.StartsWith("caption", StringComparison.Ordinal)).ToList();
        Assert.Equal(32, captions.Count);
        for (int f = 1; f <= 32; f++)
        {
            var tile = tiles.Single(t => t.Name == $"tile {f}").Rect;
            var caption = captions.Single(c => c.Name == $"caption {f}").Rect;
            Assert.Equal($"{f}", captions.Single(c => c.Name == $"caption {f}").Text);
            Assert.True(caption.Top >= tile.Bottom && caption.Top - tile.Bottom < 8 && Math.Abs(caption.MidX - tile.MidX) < 1, $"caption {f} {caption} is not under {tile}");
        }
    }

    [Fact]
    public void Kernels_of_64_channels_show_16_channel_tiles_per_filter_in_one_cell()
    {
        var conv = Convolution(64, 5, 64);

        using var picture = InspectionImages.DrawKernels(conv);

        AssertReadable(picture);
        var tiles = Tiles(picture).ToList();
        Assert.Equal(64 * InspectionImages.MaxChannelTiles, tiles.Count);
        Assert.All(tiles, t => Assert.True(t.Rect.Width >= 40, $"{t.Name} is {t.Rect.Width} px wide"));
        Assert.Contains("channels 1-16 of 64", Texts(picture).Single(b => b.Name == "title").Text);
        // The tiles of one filter are one block (4 x 4), nearer to each other than to another filter's.
        var first = tiles.Where(t => t.Name.StartsWith("tile 1.", StringComparison.Ordinal)).Select(t => t.Rect).ToList();
        Assert.Equal(16, first.Count);
        Assert.Equal(4, first.Select(r => r.Left).Distinct().Count());
        Assert.Equal(4, first.Select(r => r.Top).Distinct().Count());
        var block = first.Aggregate(SKRect.Union);
        var second = tiles.Single(t => t.Name == "tile 2.1").Rect;
        Assert.True(second.Left - block.Right > first[1].Left - first[0].Right, "filters are not set apart from each other's channels");
        Assert.InRange((double)picture.Bitmap.Width / picture.Bitmap.Height, 0.6, 2.5);
    }

    [Fact]
    public void A_deep_layer_of_512_kernels_of_512_channels_stays_bounded()
    {
        var conv = Convolution(512, 3, 512);

        using var picture = InspectionImages.DrawKernels(conv);

        AssertReadable(picture);
        Assert.Equal(512 * 16, Tiles(picture).Count());
    }

    [Fact]
    public void Rgb_kernels_are_a_colour_tile_and_their_three_channels_in_a_row()
    {
        var conv = Convolution(32, 3, 3);

        using var picture = InspectionImages.DrawKernels(conv, maxFilters: 10);

        AssertReadable(picture);
        var first = Tiles(picture).Where(t => t.Name.StartsWith("tile 1.", StringComparison.Ordinal)).Select(t => t.Rect).ToList();
        Assert.Equal(4, first.Count);
        Assert.Single(first.Select(r => r.Top).Distinct());
        Assert.Equal(10, Texts(picture).Count(b => b.Name.StartsWith("caption", StringComparison.Ordinal)));
    }

    static LayerOutput Maps(int count, int size)
    {
        var y = new Tensor(1, size, size, count);
        var random = new Random(5);
        for (int i = 0; i < y.Length; i++) y.Data[i] = (float)random.NextDouble();
        return new LayerOutput(Convolution(count, 3, 1), y);
    }

    [Theory]
    [InlineData(8, 24)]
    [InlineData(512, 14)]
    [InlineData(512, 7)]
    [InlineData(1000, 2)]
    public void Feature_map_grids_of_few_and_many_maps_read_and_stay_bounded(int count, int size)
    {
        using var picture = InspectionImages.DrawFeatureMaps(Maps(count, size));

        AssertReadable(picture);
        var tiles = Tiles(picture).ToList();
        Assert.Equal(count, tiles.Count);
        Assert.All(tiles, t => Assert.True(t.Rect.Width >= 48, $"{t.Name} is {t.Rect.Width} px wide"));
        Assert.InRange((double)picture.Bitmap.Width / picture.Bitmap.Height, 0.8, 2.5);
        Assert.Equal(count, Texts(picture).Count(b => b.Name.StartsWith("caption", StringComparison.Ordinal)));
    }
}
