using System.CommandLine;
using System.Globalization;
using Naani.Data;
using Naani.Vision;
using Spectre.Console;

namespace Naani.Cli;

/// naani data: look at a dataset before training on it.
///   info DIR     images per class, unreadable files, and the memory the decoded set takes (the seed's arithmetic)
///   augment IMG  a grid of randomly augmented copies of one image, to see what --augment does
///   synth DIR    writes a folder of generated shape images (one class per shape) to try training without photographs
static class DataCommand
{
    public static Command Create()
    {
        var command = new Command("data", "Inspect an image folder: counts per class and memory (info), or what augmentation does (augment).")
        {
            Info(),
            Augment(),
            Synthesize(),
        };
        command.SetAction(_ =>
        {
            command.Parse("--help").Invoke();
            return Commands.UsageError;
        });
        return command;
    }

    static Command Info()
    {
        var directory = new Argument<string>("DIR") { Description = "An image folder: one subfolder per class, or train/ (validation/, test/) holding them." };
        directory.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string>();
            if (!Directory.Exists(value)) result.AddError($"'{value}' is not a folder.");
        });
        var size = new Option<string>("--size") { Description = "Images are resized to N (square) or HxW.", HelpName = "N|HxW", DefaultValueFactory = _ => "128" }
            .Check(value => ImageDataOptions.TryParseSize(value, out _) ? null : $"--size '{value}': expected N or HxW, e.g. 128 or 150x150.");
        var color = new Option<string>("--color") { Description = "rgb (3 channels) or grayscale (1).", HelpName = "MODE", DefaultValueFactory = _ => "rgb" };
        color.AcceptOnlyFromAmong("rgb", "grayscale");
        var count = new Option<int?>("--count") { Description = "Also give the memory for this many images (the seed counts 8,000).", HelpName = "N" }
            .Check(value => value is null or > 0 ? null : $"--count must be positive; got {value}.");
        var command = new Command("info", "Images per class, skipped files, and the memory the decoded images take as float32 (bytes per image and for the whole set).")
        {
            directory, size, color, count,
        };
        Commands.SetAction(command, parse =>
        {
            ImageDataOptions.TryParseSize(parse.GetValue(size)!, out var s);
            return RunInfo(parse.GetValue(directory)!, s, parse.GetValue(color) == "rgb" ? ColorMode.Rgb : ColorMode.Grayscale, parse.GetValue(count));
        });
        return command;
    }

    static int RunInfo(string directory, (int Height, int Width) size, ColorMode color, int? count)
    {
        var root = Path.GetFullPath(directory);
        var (train, validation, test) = ImageFolderDataset.FindSplits(root);
        var options = new ImageFolderOptions { ImageSize = size, Color = color, Warning = m => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(m)}[/]") };
        var splits = new List<(string Name, ImageFolderDataset Data)>();
        try
        {
            if (train is null) splits.Add(("all", ImageFolderDataset.Open(root, options)));
            else
            {
                var first = ImageFolderDataset.Open(train, options);
                splits.Add(("train", first));
                var named = options with { ClassNames = first.ClassNames };
                if (validation is not null) splits.Add(("validation", ImageFolderDataset.Open(validation, named)));
                if (test is not null) splits.Add(("test", ImageFolderDataset.Open(test, named)));
            }
        }
        catch (DirectoryNotFoundException e)
        {
            throw new UsageException(e.Message);
        }

        var classes = splits[0].Data.ClassNames;
        var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(root)).AddColumn("Class");
        foreach (var (name, _) in splits) table.AddColumn(new TableColumn(name).RightAligned());
        var perSplit = splits.Select(s => s.Data.CountPerClass()).ToList();
        for (int c = 0; c < classes.Count; c++)
            table.AddRow([Markup.Escape(classes[c]), .. perSplit.Select(p => p[c] == 0 ? "[red]0[/]" : p[c].ToString("N0", CultureInfo.InvariantCulture))]);
        table.AddEmptyRow();
        table.AddRow(["[bold]total[/]", .. splits.Select(s => $"[bold]{s.Data.Count:N0}[/]")]);
        AnsiConsole.Write(table);

        foreach (var (name, data) in splits)
        {
            if (data.Skipped.Count > 0) AnsiConsole.MarkupLine($"[yellow]{name}: {data.Skipped.Count} file(s) skipped (listed above)[/]");
            foreach (var empty in data.EmptyClasses) AnsiConsole.MarkupLine($"[red]{name}: class '{Markup.Escape(empty)}' has no readable image[/]");
        }

        int channels = color == ColorMode.Rgb ? 3 : 1;
        long perImage = (long)size.Height * size.Width * channels * sizeof(float);
        long total = splits.Sum(s => (long)s.Data.Count);
        AnsiConsole.WriteLine();
        AnsiConsole.MarkupLine("[bold]Memory as float32[/] (what training holds per decoded image, as the seed computes it):");
        Commands.WriteRaw(Memory(size, channels, perImage, total, "images in this folder"));
        if (count is { } n && n != total) Commands.WriteRaw(Memory(size, channels, perImage, n, "images", perImageLine: false));
        AnsiConsole.MarkupLine($"[grey]naani train streams a folder through a bounded queue of batches: it holds (prefetch + 1) x batch x {perImage:N0} bytes, " +
            $"plus an 8-bit cache of {TrainingData.Bytes(total * perImage / sizeof(float))} (in memory up to 1 GiB, else on disk).[/]");
        return Commands.Success;
    }

    /// The seed's arithmetic: "128 x 128 x 3 x 4 bytes = 196,608 bytes ≈ 192 KB" and
    /// "8,000 x 192 KB = 1,536,000 KB = 1,536 MB = 1.5 GB" (KB = 1024 bytes, then MB = 1000 KB and GB = 1024 MB, as the seed counts).
    internal static string Memory((int Height, int Width) size, int channels, long perImage, long count, string what, bool perImageLine = true)
    {
        double kb = perImage / 1024.0, totalKb = kb * count, mb = totalKb / 1000, gb = mb / 1024;
        var sb = new System.Text.StringBuilder();
        if (perImageLine)
            sb.Append(CultureInfo.InvariantCulture, $"  per image: {size.Height} x {size.Width} x {channels} x 4 bytes = {perImage:N0} bytes ≈ {kb:0.##} KB\n");
        sb.Append(CultureInfo.InvariantCulture, $"  {count:N0} {what}: {count:N0} x {kb:0.##} KB = {totalKb:N0} KB = {mb:N0} MB ≈ {gb:0.##} GB ({count * perImage:N0} bytes)\n");
        return sb.ToString();
    }

    static Command Synthesize()
    {
        var directory = new Argument<string>("DIR") { Description = "The folder to write: DIR/circle/00000.png, DIR/square/..." };
        var classes = new Option<int>("--classes") { Description = $"Classes, one shape each ({string.Join(", ", SyntheticImages.ShapeNames)}).", HelpName = "K", DefaultValueFactory = _ => 2 }
            .Check(value => value >= 1 && value <= SyntheticImages.ShapeNames.Count ? null : $"--classes must be in [1, {SyntheticImages.ShapeNames.Count}]; got {value}.");
        var perClass = new Option<int>("--per-class", "-n") { Description = "Images per class.", HelpName = "N", DefaultValueFactory = _ => 100 }.MustBePositive();
        var size = new Option<int>("--size") { Description = "Width and height in pixels.", HelpName = "N", DefaultValueFactory = _ => 128 }
            .Check(value => value >= 8 && value <= 4096 ? null : $"--size must be in [8, 4096]; got {value}.");
        var format = new Option<string>("--format") { Description = "jpg, png, webp or bmp.", HelpName = "EXT", DefaultValueFactory = _ => "jpg" };
        format.AcceptOnlyFromAmong("jpg", "png", "webp", "bmp");
        var seed = Inspect.SeedOption();
        var command = new Command("synth", "Write a folder of generated images of shapes, one class per shape, to try training on an image folder.")
        {
            directory, classes, perClass, size, format, seed,
        };
        Commands.SetAction(command, parse =>
        {
            var dir = parse.GetValue(directory)!;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            int n = SyntheticImages.WriteFolder(dir, parse.GetValue(classes), parse.GetValue(perClass), parse.GetValue(size), parse.GetValue(format)!, parse.GetValue(seed));
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"Wrote {n:N0} images to [bold]{Markup.Escape(Path.GetFullPath(dir))}[/] in {clock.Elapsed.TotalSeconds:0.0} s"));
            return Commands.Success;
        });
        return command;
    }

    static Command Augment()
    {
        var image = Inspect.ImageOption("The image to augment.");
        var spec = new Option<string>("--augment", "-a") { Description = "What to apply, as naani train --augment takes it (default, or e.g. flip,shift=0.1,rotate=15).", HelpName = "SPEC", DefaultValueFactory = _ => "default" };
        var size = new Option<string>("--size") { Description = "Resize the image to N or HxW first.", HelpName = "N|HxW", DefaultValueFactory = _ => "128" }
            .Check(value => ImageDataOptions.TryParseSize(value, out _) ? null : $"--size '{value}': expected N or HxW.");
        var copies = new Option<int>("--count", "-n") { Description = "Augmented copies to draw.", HelpName = "N", DefaultValueFactory = _ => 15 }.MustBePositive();
        var seed = Inspect.SeedOption();
        var output = Inspect.OutOption("The PNG grid [default: <image>-augmented.png].");
        var command = new Command("augment", "Write a grid of the image and randomly augmented copies of it, drawn as training draws them.")
        {
            image, spec, size, copies, seed, output,
        };
        Commands.SetAction(command, parse =>
        {
            Augmentation augmentation;
            try
            {
                augmentation = Augmentation.Parse(parse.GetValue(spec));
            }
            catch (ArgumentException e)
            {
                throw new UsageException($"--augment: {e.Message}");
            }
            ImageDataOptions.TryParseSize(parse.GetValue(size)!, out var s);
            return RunAugment(parse.GetValue(image)!, augmentation, s, parse.GetValue(copies), parse.GetValue(seed), parse.GetValue(output));
        });
        return command;
    }

    static int RunAugment(string imagePath, Augmentation augmentation, (int Height, int Width) size, int copies, int seed, string? output)
    {
        var image = ImageFile.Load(imagePath, size);
        int h = image.Shape[0], w = image.Shape[1], c = image.Shape[2];
        var tiles = new List<GridTile> { new(image.Data, h, w, c, "original") };
        var scratch = new float[image.Length];
        for (int i = 0; i < copies; i++)
        {
            var copy = (float[])image.Data.Clone();
            // Position i of epoch 0: the draws training makes for the i-th image of its first epoch.
            augmentation.Apply(copy, h, w, c, Augmentation.RandomFor(seed, 0, i), scratch);
            tiles.Add(new GridTile(copy, h, w, c, $"{i + 1}"));
        }
        var path = output ?? $"{Path.GetFileNameWithoutExtension(imagePath)}-augmented.png";
        using (var picture = ImageGrid.Render(tiles, Colormap.Gray, $"augmentation: {augmentation}", minTilePixels: 96))
            ImageFile.SavePng(picture, path);
        Inspect.Saved(path);
        return Commands.Success;
    }
}
