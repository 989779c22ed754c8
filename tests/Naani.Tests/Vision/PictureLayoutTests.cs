using Naani.Inspection;
using Naani.Layers;
using Naani.Metrics;
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

    static readonly string[] FashionMnist = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    static readonly string[] Cifar100 =
    [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy", "bridge", "bus",
        "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
        "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
        "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle",
        "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
        "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark",
        "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table",
        "tank", "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree",
        "wolf", "woman", "worm",
    ];

    /// perClass images of each class, about 85% right, the rest spread over a few other classes.
    static ReportEvaluation Evaluation(string[] names, int perClass)
    {
        int n = names.Length;
        var actual = new List<int>();
        var predicted = new List<int>();
        for (int a = 0; a < n; a++)
        {
            for (int i = 0; i < perClass; i++)
            {
                actual.Add(a);
                predicted.Add(i % 20 < 17 ? a : (a + 1 + i % 3) % n);
            }
        }
        var matrix = ConfusionMatrix.FromPredictions([.. actual], [.. predicted], n);
        return new ReportEvaluation("test", matrix.Total, matrix.Accuracy, 0.4, matrix, ClassificationReport.From(matrix, names), names);
    }

    [Fact]
    public void Confusion_matrix_of_10_fashion_classes_has_no_colliding_text_and_legible_counts()
    {
        var evaluation = Evaluation(FashionMnist, 1000);

        using var picture = ConfusionMatrixImage.Draw(evaluation);

        AssertReadable(picture, maxSide: 2000);
        var counts = Texts(picture).Where(b => b.Name.StartsWith("count", StringComparison.Ordinal)).ToList();
        Assert.Equal(100, counts.Count);
        Assert.All(counts, c => Assert.True(c.Rect.Height >= 12, $"{c.Name} is {c.Rect.Height} px tall"));
        foreach (var name in (string[])["title", "x title", "y title", "bar title", "predicted 0", "actual 9", "colour bar"])
            Assert.Contains(picture.Boxes, b => b.Name == name);
        // Names run below the columns and left of the rows, titles beyond them.
        var xTitle = picture.Boxes.Single(b => b.Name == "x title").Rect;
        var yTitle = picture.Boxes.Single(b => b.Name == "y title").Rect;
        Assert.All(Enumerable.Range(0, 10), i =>
        {
            Assert.True(picture.Boxes.Single(b => b.Name == $"predicted {i}").Rect.Bottom <= xTitle.Top);
            Assert.True(picture.Boxes.Single(b => b.Name == $"actual {i}").Rect.Left >= yTitle.Right);
        });
        // The cells keep the colouring rule: viridis of the share of the actual class.
        var cell = picture.Boxes.Single(b => b.Name == "cell 0,0").Rect;
        var corner = picture.Bitmap.GetPixel((int)cell.Left + 2, (int)cell.Top + 2);
        Assert.Equal(Colormaps.Map(Colormap.Viridis, evaluation.Matrix[0, 0] / 1000f), corner);
    }

    [Fact]
    public void Confusion_matrix_of_100_classes_keeps_one_thin_name_per_row_and_column()
    {
        var evaluation = Evaluation(Cifar100, 100);

        using var picture = ConfusionMatrixImage.Draw(evaluation);

        AssertReadable(picture, maxSide: 2500);
        Assert.Equal(100, picture.Boxes.Count(b => b.Name.StartsWith("predicted ", StringComparison.Ordinal)));
        Assert.Equal(100, picture.Boxes.Count(b => b.Name.StartsWith("actual ", StringComparison.Ordinal)));
        Assert.Equal(100 * 100, picture.Boxes.Count(b => b.Name.StartsWith("cell ", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(40)]
    public void Confusion_matrices_of_other_sizes_and_long_names_have_no_colliding_text(int classes)
    {
        string[] names = [.. Enumerable.Range(0, classes).Select(c => $"a rather long class name number {c}")];

        using var picture = ConfusionMatrixImage.Draw(Evaluation(names, 20));

        AssertReadable(picture, maxSide: 2500);
        Assert.All(picture.Boxes.Where(b => b.Name.StartsWith("actual ", StringComparison.Ordinal)), b => Assert.EndsWith("...", b.Text));
    }

    [Fact]
    public void The_report_writes_the_drawn_confusion_matrix()
    {
        var evaluation = Evaluation(FashionMnist, 30);
        using var temp = new Naani.Tests.Data.TempDirectory();
        var path = temp.Sub("confusion-matrix.png");

        TrainingReport.WriteConfusion(path, evaluation);

        using var png = SKBitmap.Decode(path);
        using var picture = ConfusionMatrixImage.Draw(evaluation);
        Assert.Equal((picture.Bitmap.Width, picture.Bitmap.Height), (png.Width, png.Height));
        var cell = picture.Boxes.Single(b => b.Name == "cell 3,4").Rect;
        Assert.Equal(picture.Bitmap.GetPixel((int)cell.Left + 1, (int)cell.Top + 1), png.GetPixel((int)cell.Left + 1, (int)cell.Top + 1));
    }
}
