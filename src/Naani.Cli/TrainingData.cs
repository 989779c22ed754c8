using System.CommandLine;
using System.Globalization;
using Naani.Callbacks;
using Naani.Data;
using Naani.Distributed;
using Naani.Models;
using Naani.Vision;
using Spectre.Console;

namespace Naani.Cli;

/// The options of naani train that concern images: folders of photographs, augmentation, the batch pipeline.
sealed class ImageDataOptions
{
    public readonly Option<string?> Augment = new("--augment")
    {
        Description = "Augment training images on the fly (seeded): alone, the default set (flip, shift=0.1, rotate=10, brightness=0.1, contrast=0.1); " +
            "or a list such as flip,shift=0.125,rotate=15,brightness=0.2,contrast=0.2. Off by default.",
        HelpName = "SPEC",
        Arity = ArgumentArity.ZeroOrOne,
    };

    public readonly Option<string?> ImageSize = new Option<string?>("--image-size")
    {
        Description = "Image folders: resize every image to N (square) or HxW [default: the model's input size, e.g. 128 for naani-128].",
        HelpName = "N|HxW",
    }.Check(value => value is null || TryParseSize(value, out _) ? null : $"--image-size '{value}': expected N or HxW with positive numbers, e.g. 128 or 150x150.");

    public readonly Option<string?> Color = new("--color")
    {
        Description = "Image folders: rgb or grayscale [default: the model's input channels].",
        HelpName = "MODE",
    };

    public readonly Option<bool> CropToAspectRatio = new("--crop-to-aspect-ratio")
    {
        Description = "Image folders: resize the largest centred crop of the target's aspect ratio instead of stretching the image.",
    };

    public readonly Option<string> Cache = new("--cache")
    {
        Description = "Image folders: keep decoded images for later epochs in memory, on disk, or not at all; auto picks memory when the 8-bit set fits 1 GiB.",
        HelpName = "MODE",
        DefaultValueFactory = _ => "auto",
    };

    public readonly Option<string?> CacheDirectory = new("--cache-dir")
    {
        Description = "Folder for the disk cache [default: the system's temporary folder]; the file is deleted when training ends.",
        HelpName = "DIR",
    };

    public readonly Option<int> Workers = new Option<int>("--workers")
    {
        Description = "Threads that decode and augment batches ahead of training; 0 reads each batch on the training thread (no overlap) [default: half the cores].",
        HelpName = "N",
        DefaultValueFactory = _ => PipelineOptions.DefaultWorkers,
    }.MustNotBeNegative();

    public readonly Option<int> Prefetch = new Option<int>("--prefetch")
    {
        Description = "Batches decoded ahead of the one being trained on (the bound of the queue) [default: workers + 2].",
        HelpName = "N",
    }.MustNotBeNegative();

    public readonly Option<bool> Strict = new("--strict")
    {
        Description = "Stop at the first unreadable image or empty class folder instead of skipping it with a warning.",
    };

    public ImageDataOptions()
    {
        Color.AcceptOnlyFromAmong("rgb", "grayscale");
        Cache.AcceptOnlyFromAmong("auto", "memory", "disk", "none");
    }

    public void AddTo(Command command)
    {
        foreach (var option in (Option[])[Augment, ImageSize, Color, CropToAspectRatio, Cache, CacheDirectory, Workers, Prefetch, Strict])
            command.Options.Add(option);
    }

    public ImageDataSettings Read(ParseResult parse)
    {
        Augmentation? augmentation = null;
        if (parse.GetResult(Augment) is not null)
        {
            try
            {
                augmentation = Augmentation.Parse(parse.GetValue(Augment));
            }
            catch (ArgumentException e)
            {
                throw new UsageException($"--augment: {e.Message}");
            }
        }
        (int, int)? size = parse.GetValue(ImageSize) is { } s && TryParseSize(s, out var parsed) ? parsed : null;
        var color = parse.GetValue(Color) is { } c ? (c == "rgb" ? ColorMode.Rgb : ColorMode.Grayscale) : (ColorMode?)null;
        var cache = Enum.Parse<ImageCacheMode>(parse.GetValue(Cache) ?? "auto", ignoreCase: true);
        int workers = parse.GetValue(Workers);
        int prefetch = parse.GetValue(Prefetch);
        return new ImageDataSettings(augmentation, size, color, parse.GetValue(CropToAspectRatio), cache, parse.GetValue(CacheDirectory),
            workers, prefetch > 0 ? prefetch : workers + 2, parse.GetValue(Strict));
    }

    public static bool TryParseSize(string value, out (int Height, int Width) size)
    {
        size = default;
        var parts = value.ToLowerInvariant().Split('x');
        if (parts.Length is not (1 or 2)) return false;
        if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int h) || h <= 0 || h > 8192) return false;
        int w = h;
        if (parts.Length == 2 && (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out w) || w <= 0 || w > 8192)) return false;
        size = (h, w);
        return true;
    }
}

sealed record ImageDataSettings(
    Augmentation? Augmentation, (int Height, int Width)? ImageSize, ColorMode? Color, bool CropToAspectRatio,
    ImageCacheMode Cache, string? CacheDirectory, int Workers, int Prefetch, bool Strict);

/// The data of one training run, in memory (an MNIST-family or CIFAR dataset) or streamed (an image folder, or any
/// dataset with --augment), with what the run needs: shapes and classes, fitting, and the held-out evaluations.
sealed class TrainingData : IDisposable
{
    public required string Source { get; init; }
    public required Shape ImageShape { get; init; }
    public required string[] ClassNames { get; init; }
    public int NumClasses => ClassNames.Length;

    // In memory: the dataset's own splits.
    ImageDataset? train, test;
    // Streamed: pipelines over image sources.
    BatchPipeline? trainPipeline, validationPipeline, testPipeline;
    double validationSplit;

    public BatchPipeline? TrainPipeline => trainPipeline;
    public bool HasTest => test is not null || testPipeline is not null;
    public bool Streams => trainPipeline is not null;

    /// Opens --data: an image folder (class subfolders, or train/ validation/ test/ with class subfolders), or a dataset
    /// name or folder that Datasets.Load knows (MNIST family, CIFAR). defaultShape is the model's usual input.
    public static TrainingData Open(string data, ImageDataSettings images, Shape defaultShape, double validationSplit, int batchSize, int seed)
    {
        if (ImageFolderDataset.IsImageFolder(data))
            return OpenFolder(data, images, defaultShape, validationSplit, batchSize, seed);

        var (trainSet, testSet, source) = Commands.LoadData(data);
        var result = new TrainingData { Source = source, ImageShape = trainSet.ImageShape, ClassNames = trainSet.ClassNames, train = trainSet, test = testSet, validationSplit = validationSplit };
        if (images.Augmentation is not null)
        {
            // Augmenting in-memory data: the pipeline reads from memory, so it needs no cache.
            int total = trainSet.Count, nVal = (int)(total * validationSplit);
            var options = PipelineOptions(images, batchSize, seed);
            result.trainPipeline = new BatchPipeline(new ImageDatasetSource(trainSet, [.. Enumerable.Range(0, total - nVal)]), options with { Augmentation = images.Augmentation });
            if (nVal > 0)
                result.validationPipeline = new BatchPipeline(new ImageDatasetSource(trainSet, [.. Enumerable.Range(total - nVal, nVal)]), options with { Shuffle = false, Workers = 0 });
        }
        return result;
    }

    static PipelineOptions PipelineOptions(ImageDataSettings images, int batchSize, int seed) => new()
    {
        BatchSize = batchSize,
        Seed = seed,
        Workers = images.Workers,
        Prefetch = Math.Max(1, images.Prefetch),
        Strict = images.Strict,
        Warning = Warn,
    };

    static void Warn(string message) => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(message)}[/]");

    static TrainingData OpenFolder(string data, ImageDataSettings images, Shape defaultShape, double validationSplit, int batchSize, int seed)
    {
        var size = images.ImageSize ?? (defaultShape[0], defaultShape[1]);
        var color = images.Color ?? (defaultShape[2] == 1 ? ColorMode.Grayscale : ColorMode.Rgb);
        var folderOptions = new ImageFolderOptions
        {
            ImageSize = size,
            Color = color,
            CropToAspectRatio = images.CropToAspectRatio,
            Strict = images.Strict,
            Warning = Warn,
        };
        var root = Path.GetFullPath(data);
        var (trainDir, validationDir, testDir) = ImageFolderDataset.FindSplits(root);
        ImageFolderDataset training, all;
        ImageFolderDataset? validation = null, test = null;
        try
        {
            all = ImageFolderDataset.Open(trainDir ?? root, folderOptions);
            var named = folderOptions with { ClassNames = all.ClassNames };
            if (validationDir is not null) validation = ImageFolderDataset.Open(validationDir, named);
            if (testDir is not null) test = ImageFolderDataset.Open(testDir, named);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new UsageException(e.Message);
        }
        training = all;
        if (validation is null && validationSplit > 0)
            (training, validation) = all.Split(validationSplit, seed);
        if (all.NumClasses < 2)
            throw new UsageException($"{all.Directory} has one class folder ({all.ClassNames[0]}); a classifier needs at least two.");

        var counts = all.CountPerClass();
        AnsiConsole.MarkupLine($"Images [bold]{Markup.Escape(root)}[/]: {all.Count:N0} in {all.NumClasses} classes " +
            $"({Markup.Escape(string.Join(", ", all.ClassNames.Select((n, i) => $"{n} {counts[i]:N0}")))}), " +
            $"resized to {size.Height}x{size.Width} {color.ToString().ToLowerInvariant()}" +
            (all.Skipped.Count > 0 ? $", [yellow]{all.Skipped.Count} file(s) skipped[/]" : ""));
        AnsiConsole.MarkupLine($"  training {training.Count:N0}" + (validation is not null ? $", validation {validation.Count:N0}{(validationDir is null ? FormattableString.Invariant($" (stratified split {validationSplit}, seed {seed})") : "")}" : "") +
            (test is not null ? $", test {test.Count:N0}" : ""));

        var options = PipelineOptions(images, batchSize, seed);
        var trainSource = new CachedImageSource(training, images.Cache, directory: images.CacheDirectory);
        var result = new TrainingData { Source = root, ImageShape = all.ImageShape, ClassNames = [.. all.ClassNames] };
        result.trainPipeline = new BatchPipeline(trainSource, options with { Augmentation = images.Augmentation });
        AnsiConsole.MarkupLine($"  decoded set {Bytes(training.DecodedBytes)} as float32; streaming through {images.Workers} worker(s), " +
            $"{images.Prefetch} batch(es) ahead, cache {trainSource.Mode.ToString().ToLowerInvariant()}" +
            (trainSource.Mode == ImageCacheMode.None ? "" : $" ({Bytes(trainSource.CacheBytes)})") +
            (images.Augmentation is { } a ? $", augmentation {a}" : ""));
        if (validation is not null)
            result.validationPipeline = new BatchPipeline(new CachedImageSource(validation, images.Cache, directory: images.CacheDirectory), options with { Shuffle = false });
        if (test is not null)
            result.testPipeline = new BatchPipeline(test, options with { Shuffle = false });
        return result;
    }

    /// 1,572,864,000 bytes (1.46 GiB)
    public static string Bytes(long bytes)
    {
        string[] units = ["KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        int unit = -1;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit < 0 ? $"{bytes:N0} bytes" : string.Create(CultureInfo.InvariantCulture, $"{bytes:N0} bytes ({value:0.##} {units[unit]})");
    }

    public History Fit(Model model, int batchSize, int epochs, IReadOnlyList<Callback> callbacks, ICommunicator? distributed = null)
    {
        if (trainPipeline is not null)
        {
            if (distributed is not null)
                throw new UsageException("Data-parallel training (mpirun) takes datasets that fit in memory (MNIST-family, CIFAR); " +
                    "image folders are streamed from disk, and their pipeline cannot yet be split across ranks. Run without mpirun.");
            return model.Fit(trainPipeline, epochs, validationPipeline, callbacks);
        }
        return model.Fit(train!.Images, Commands.Targets(model, train), batchSize, epochs, validationSplit: validationSplit, callbacks: callbacks, distributed: distributed);
    }

    /// What the training dashboard shows at each epoch's end: the first gridSize validation images with their predictions,
    /// and the confusion matrix over the validation images (in memory: the first matrixLimit of them, so that the extra
    /// inference pass stays small beside training when most of a dataset is held out); null without validation data.
    public MonitorValidation? MonitorValidation(int batchSize, int gridSize = 24, int matrixLimit = 10_000)
    {
        if (validationPipeline is { } pipeline)
        {
            var source = pipeline.Source;
            var shape = source.ImageShape;
            var pixels = new List<float>();
            var labels = new List<int>();
            var buffer = new float[shape.Size];
            for (int i = 0; i < source.Count && labels.Count < gridSize; i++)
            {
                if (!source.TryRead(i, buffer, out _)) continue;
                pixels.AddRange(buffer);
                labels.Add(source.GetLabel(i));
            }
            if (labels.Count == 0) return null;
            return new MonitorValidation(Tensor.FromArray([.. pixels], [labels.Count, .. shape.Dims]), [.. labels], model => model.Predict(pipeline));
        }
        if (train is null || trainPipeline is not null) return null;
        int total = train.Count, nVal = (int)(total * validationSplit);
        if (nVal == 0) return null;
        int counted = Math.Min(nVal, matrixLimit);
        var images = train.Images.SliceBatch(total - nVal, counted);
        int[] all = train.Labels[(total - nVal)..][..counted];
        int shown = Math.Min(gridSize, counted);
        return new MonitorValidation(images.SliceBatch(0, shown), all[..shown], model => (model.Predict(images, batchSize), all));
    }

    /// The held-out evaluations for the report: the test split when there is one, else the validation images (when
    /// they are a pipeline; in-memory validation is reported from the history).
    public IEnumerable<(string Name, Evaluation Result)> Evaluate(Model model, int batchSize, string dataName, ICommunicator? distributed = null)
    {
        if (test is not null) yield return ($"Test: {dataName}", Report.Evaluate(model, test, batchSize, distributed));
        if (testPipeline is not null) yield return ($"Test: {dataName}", Report.Evaluate(model, testPipeline));
        if (validationPipeline is not null) yield return ($"Validation: {dataName}", Report.Evaluate(model, validationPipeline));
    }

    public void Dispose()
    {
        trainPipeline?.Dispose();
        validationPipeline?.Dispose();
        testPipeline?.Dispose();
    }
}
