using Naani.Data;
using Naani.Tests.Data;
using Naani.Vision;
using SkiaSharp;
using Xunit;

namespace Naani.Tests.Vision;

public sealed class ImageFolderTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    ImageFolderOptions Options(List<string> warnings, bool strict = false) =>
        new() { ImageSize = (16, 16), Warning = warnings.Add, Strict = strict };

    string Folder(int classes = 3, int perClass = 6)
    {
        var dir = temp.Sub("shapes");
        SyntheticImages.WriteFolder(dir, classes, perClass, size: 24);
        return dir;
    }

    [Fact]
    public void Class_folders_sorted_by_name_become_labels()
    {
        var dir = Folder();
        var warnings = new List<string>();

        var data = ImageFolderDataset.Open(dir, Options(warnings));

        Assert.Equal(["circle", "square", "triangle"], data.ClassNames);
        Assert.Equal(18, data.Count);
        Assert.Equal([6, 6, 6], data.CountPerClass());
        Assert.Equal(new Shape(16, 16, 3), data.ImageShape);
        Assert.Equal(16 * 16 * 3 * 4, data.BytesPerImage);
        Assert.Equal(2, data.Labels[data.Files.ToList().FindIndex(f => f.Contains("triangle"))]);
        Assert.Empty(warnings);
    }

    [Fact]
    public void Bad_files_are_skipped_with_a_warning_naming_them_and_an_empty_class_is_reported()
    {
        var dir = Folder(2, 4);
        File.WriteAllText(Path.Combine(dir, "circle", "readme.txt"), "hello");
        File.WriteAllText(Path.Combine(dir, "circle", "fake.png"), "not a png");
        File.WriteAllBytes(Path.Combine(dir, "square", "empty.jpg"), []);
        File.WriteAllText(Path.Combine(dir, "stray.png"), "x");
        Directory.CreateDirectory(Path.Combine(dir, "unused"));
        var warnings = new List<string>();

        var data = ImageFolderDataset.Open(dir, Options(warnings));

        Assert.Equal(8, data.Count);
        Assert.Equal(["circle", "square", "unused"], data.ClassNames);
        Assert.Equal(["unused"], data.EmptyClasses);
        Assert.Equal(4, data.Skipped.Count);
        Assert.Contains(warnings, w => w.Contains("readme.txt") && w.Contains("not an image file"));
        Assert.Contains(warnings, w => w.Contains("fake.png") && w.Contains("not an image"));
        Assert.Contains(warnings, w => w.Contains("empty.jpg") && w.Contains("empty"));
        Assert.Contains(warnings, w => w.Contains("stray.png") && w.Contains("class folder"));
        Assert.Contains(warnings, w => w.Contains("unused") && w.Contains("no readable image"));
    }

    [Fact]
    public void Strict_mode_fails_on_the_first_bad_file()
    {
        var dir = Folder(2, 2);
        File.WriteAllText(Path.Combine(dir, "square", "fake.webp"), "garbage");
        var e = Assert.Throws<InvalidDataException>(() => ImageFolderDataset.Open(dir, Options([], strict: true)));
        Assert.Contains("fake.webp", e.Message);
    }

    [Fact]
    public void A_folder_without_class_folders_says_what_layout_is_expected()
    {
        Directory.CreateDirectory(temp.Sub("flat"));
        var e = Assert.Throws<DirectoryNotFoundException>(() => ImageFolderDataset.Open(temp.Sub("flat")));
        Assert.Contains("one subfolder per class", e.Message);
    }

    [Fact]
    public void Split_is_stratified_seeded_and_disjoint()
    {
        var data = ImageFolderDataset.Open(Folder(3, 10), Options([]));

        var (train, validation) = data.Split(0.2, seed: 4);
        var (train2, validation2) = data.Split(0.2, seed: 4);
        var (_, validation3) = data.Split(0.2, seed: 5);

        Assert.Equal([2, 2, 2], validation.CountPerClass());
        Assert.Equal([8, 8, 8], train.CountPerClass());
        Assert.Empty(train.Files.Intersect(validation.Files));
        Assert.Equal(validation.Files, validation2.Files);
        Assert.Equal(train.Files, train2.Files);
        Assert.NotEqual(validation.Files, validation3.Files);
    }

    [Fact]
    public void Load_decodes_everything_and_leaves_out_truncated_files()
    {
        var dir = Folder(2, 3);
        var first = Directory.GetFiles(Path.Combine(dir, "square")).Order().First();
        var bytes = File.ReadAllBytes(first);
        File.WriteAllBytes(first, bytes[..(bytes.Length / 3)]);   // the header survives, the pixels do not
        var warnings = new List<string>();

        var data = ImageFolderDataset.Open(dir, Options(warnings));
        var loaded = data.Load(threads: 2);

        Assert.Equal(6, data.Count);
        Assert.Equal(5, loaded.Count);
        Assert.Equal(new Shape(5, 16, 16, 3), loaded.Images.Shape);
        Assert.Equal([0, 0, 0, 1, 1], loaded.Labels);
        Assert.Contains(warnings, w => w.Contains(Path.GetFileName(first)) && w.Contains("truncated"));
        var expected = new float[16 * 16 * 3];
        Assert.True(data.TryRead(data.Files.ToList().IndexOf(Directory.GetFiles(Path.Combine(dir, "square")).Order().Last()), expected, out _));
        Assert.Equal(expected, loaded.Images.Sample(4).ToArray());
    }

    [Fact]
    public void Train_validation_test_layout_is_found()
    {
        SyntheticImages.WriteFolder(temp.Sub("split", "train"), 2, 2, 16);
        SyntheticImages.WriteFolder(temp.Sub("split", "test"), 2, 1, 16);

        var (train, validation, test) = ImageFolderDataset.FindSplits(temp.Sub("split"));

        Assert.Equal(temp.Sub("split", "train"), train);
        Assert.Null(validation);
        Assert.Equal(temp.Sub("split", "test"), test);
        Assert.True(ImageFolderDataset.IsImageFolder(temp.Sub("split")));
        Assert.False(ImageFolderDataset.IsImageFolder(temp.Path + "-missing"));
    }

    [Fact]
    public void A_folder_streams_through_the_pipeline_with_a_disk_cache()
    {
        var data = ImageFolderDataset.Open(Folder(2, 9), Options([]));
        using var cached = new CachedImageSource(data, ImageCacheMode.Disk, directory: temp.Sub("cache"));
        using var pipeline = new BatchPipeline(cached, new PipelineOptions { BatchSize = 4, Workers = 2 });

        int Total(int epoch) => pipeline.GetEpoch(epoch).Sum(b => b.Count);

        Assert.Equal(18, Total(0));
        Assert.Equal(18, Total(1));
        Assert.Equal(18, cached.Misses);
        Assert.Equal(18, cached.Hits);
    }

    [Fact]
    public void Grayscale_folder_gives_one_channel()
    {
        var data = ImageFolderDataset.Open(Folder(2, 1), new ImageFolderOptions { ImageSize = (8, 12), Color = ColorMode.Grayscale });
        var loaded = data.Load();
        Assert.Equal(new Shape(2, 8, 12, 1), loaded.Images.Shape);
    }

    [Fact]
    public void Synthetic_images_are_reproducible_from_their_seed()
    {
        SyntheticImages.WriteFolder(temp.Sub("a"), 2, 2, 20, "png", seed: 9);
        SyntheticImages.WriteFolder(temp.Sub("b"), 2, 2, 20, "png", seed: 9);
        foreach (var file in Directory.GetFiles(temp.Sub("a"), "*", SearchOption.AllDirectories))
            Assert.Equal(File.ReadAllBytes(file), File.ReadAllBytes(file.Replace(temp.Sub("a"), temp.Sub("b"))));
        using var bitmap = SKBitmap.Decode(Directory.GetFiles(temp.Sub("a", "circle")).First());
        Assert.Equal(20, bitmap.Width);
    }
}
