using Naani.Data;

namespace Naani.Vision;

/// How an image folder is read.
public sealed record ImageFolderOptions
{
    /// Every image is resized to this (Keras's default is 256x256).
    public (int Height, int Width) ImageSize { get; init; } = (256, 256);
    public ColorMode Color { get; init; } = ColorMode.Rgb;

    /// Resize the largest centred crop of the target's aspect ratio instead of stretching the whole image.
    public bool CropToAspectRatio { get; init; }

    /// Fail on the first unreadable file instead of skipping it with a warning.
    public bool Strict { get; init; }

    /// Images whose header gives more pixels are refused before decoding.
    public long MaxPixels { get; init; } = ImageFile.DefaultMaxPixels;

    /// The classes, in label order; by default every subfolder, sorted by name (as Keras does).
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// Read every file's header while scanning, so non-images and absurd dimensions are found before training.
    public bool CheckHeaders { get; init; } = true;

    /// Receives warnings (skipped files, empty classes); null: Console.Error.
    public Action<string>? Warning { get; init; }

    public int Channels => Color == ColorMode.Rgb ? 3 : 1;
}

/// A file left out of an image folder, and why.
public sealed record SkippedFile(string Path, string Reason);

/// Images in one subfolder per class, Keras's image_dataset_from_directory layout:
///
///   DIR/cat/001.jpg, DIR/cat/002.png, ...   -> class 0 "cat"
///   DIR/dog/xyz.webp, DIR/dog/more/a.jpg    -> class 1 "dog" (subfolders of a class folder count for that class)
///
/// Class names are the folder names sorted ordinally. Opening scans the folders (and, by default, reads every file's
/// header); pixels are decoded only when read: TryRead decodes one file, Load decodes them all into memory, and a
/// BatchPipeline over it streams them. A file that is not an image, is truncated or corrupt, or claims absurd
/// dimensions is skipped with a warning naming it (an error with Strict).
public sealed class ImageFolderDataset : IImageSource
{
    readonly string[] files;
    readonly int[] labels;
    readonly string[] classNames;

    ImageFolderDataset(string directory, string[] files, int[] labels, string[] classNames, ImageFolderOptions options,
        IReadOnlyList<SkippedFile> skipped, IReadOnlyList<string> emptyClasses)
    {
        Directory = directory;
        this.files = files;
        this.labels = labels;
        this.classNames = classNames;
        Options = options;
        Skipped = skipped;
        EmptyClasses = emptyClasses;
        ImageShape = new Shape(options.ImageSize.Height, options.ImageSize.Width, options.Channels);
    }

    public string Directory { get; }
    public ImageFolderOptions Options { get; }
    public IReadOnlyList<string> Files => files;
    public IReadOnlyList<int> Labels => labels;
    public IReadOnlyList<string> ClassNames => classNames;
    public int Count => files.Length;
    public int NumClasses => classNames.Length;
    public Shape ImageShape { get; }

    /// Files left out while scanning, with the reason.
    public IReadOnlyList<SkippedFile> Skipped { get; }

    /// Class folders that hold no image.
    public IReadOnlyList<string> EmptyClasses { get; }

    /// Images per class, in label order.
    public int[] CountPerClass()
    {
        var counts = new int[NumClasses];
        foreach (var l in labels) counts[l]++;
        return counts;
    }

    /// Bytes one decoded image takes as float32, H * W * C * 4 (the seed's "memory per image").
    public long BytesPerImage => ImageShape.LongSize * sizeof(float);

    /// Bytes the whole decoded set would take in memory as float32.
    public long DecodedBytes => BytesPerImage * Count;

    // Files that are not images but live in image folders all the same: not worth a warning.
    static readonly string[] Ignored = ["Thumbs.db", "desktop.ini"];

    /// Scans directory: one subfolder per class.
    public static ImageFolderDataset Open(string directory, ImageFolderOptions? options = null)
    {
        options ??= new ImageFolderOptions();
        if (options.ImageSize.Height <= 0 || options.ImageSize.Width <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), $"The image size must be positive; got {options.ImageSize.Height}x{options.ImageSize.Width}.");
        if (!System.IO.Directory.Exists(directory))
            throw new DirectoryNotFoundException($"The image folder {Path.GetFullPath(directory)} does not exist.");
        var root = Path.GetFullPath(directory);
        var warn = options.Warning ?? (m => Console.Error.WriteLine(m));
        var skipped = new List<SkippedFile>();

        void Skip(string path, string reason)
        {
            if (options.Strict) throw new InvalidDataException($"{path}: {reason} (strict mode: stopping at the first unreadable file).");
            skipped.Add(new SkippedFile(path, reason));
            warn($"warning: skipping {path}: {reason}");
        }

        var folders = System.IO.Directory.GetDirectories(root).Select(Path.GetFileName).Where(n => !n!.StartsWith('.')).Select(n => n!).Order(StringComparer.Ordinal).ToList();
        string[] classes;
        if (options.ClassNames is { } wanted)
        {
            var missing = wanted.Where(c => !folders.Contains(c)).ToList();
            if (missing.Count > 0)
                throw new DirectoryNotFoundException($"{root} has no folder for class{(missing.Count == 1 ? "" : "es")} {string.Join(", ", missing)}; its folders are: {string.Join(", ", folders)}.");
            classes = [.. wanted];
        }
        else classes = [.. folders];
        if (classes.Length == 0)
            throw new DirectoryNotFoundException(
                $"{root} holds no class folders. An image folder has one subfolder per class with the images inside, e.g. {Path.Combine(root, "cat", "001.jpg")} and {Path.Combine(root, "dog", "001.jpg")}.");

        foreach (var stray in System.IO.Directory.GetFiles(root).Where(f => ImageFile.HasImageExtension(f)))
            Skip(stray, "not inside a class folder, so it has no label");

        var paths = new List<string>();
        var pathLabels = new List<int>();
        var empty = new List<string>();
        for (int c = 0; c < classes.Length; c++)
        {
            int before = paths.Count;
            foreach (var file in System.IO.Directory.EnumerateFiles(Path.Combine(root, classes[c]), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileName(file);
                if (name.StartsWith('.') || Ignored.Contains(name, StringComparer.OrdinalIgnoreCase)) continue;
                if (!ImageFile.HasImageExtension(file))
                {
                    Skip(file, $"not an image file (extension '{Path.GetExtension(file)}'; expected one of {string.Join(", ", ImageFile.Extensions)})");
                    continue;
                }
                paths.Add(file);
                pathLabels.Add(c);
            }
            if (paths.Count == before) empty.Add(classes[c]);
        }

        if (options.CheckHeaders)
        {
            var problems = new string?[paths.Count];
            Parallel.For(0, paths.Count, i =>
            {
                try
                {
                    ImageFile.ReadHeader(paths[i], options.MaxPixels);
                }
                catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
                {
                    problems[i] = e.Message.StartsWith(paths[i], StringComparison.Ordinal) ? e.Message[paths[i].Length..].TrimStart(':', ' ') : e.Message;
                }
            });
            var keptPaths = new List<string>(paths.Count);
            var keptLabels = new List<int>(paths.Count);
            for (int i = 0; i < paths.Count; i++)
            {
                if (problems[i] is { } problem)
                {
                    Skip(paths[i], problem);
                    continue;
                }
                keptPaths.Add(paths[i]);
                keptLabels.Add(pathLabels[i]);
            }
            empty = [.. classes.Where((_, c) => !keptLabels.Contains(c))];
            (paths, pathLabels) = (keptPaths, keptLabels);
        }

        foreach (var e in empty)
        {
            if (options.Strict) throw new InvalidDataException($"The class folder {Path.Combine(root, e)} holds no readable image (strict mode).");
            warn($"warning: the class folder {Path.Combine(root, e)} holds no readable image");
        }
        if (paths.Count == 0)
            throw new InvalidDataException($"{root} holds no readable images in its class folders ({string.Join(", ", classes)}).");
        return new ImageFolderDataset(root, [.. paths], [.. pathLabels], classes, options, skipped, empty);
    }

    /// The images at these positions, as a dataset of the same classes.
    public ImageFolderDataset Subset(IReadOnlyList<int> indices) =>
        new(Directory, [.. indices.Select(i => files[i])], [.. indices.Select(i => labels[i])], classNames, Options, Skipped, EmptyClasses);

    /// Splits into training and validation images, per class (stratified): in each class the images are shuffled with
    /// seed and the last round(n * validationFraction) go to validation (at least one when the class has two or more).
    public (ImageFolderDataset Training, ImageFolderDataset Validation) Split(double validationFraction, int seed)
    {
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), $"The validation fraction must be in (0, 1); got {validationFraction}.");
        var rng = new Rng((ulong)(uint)seed ^ 0xA5A5A5A5UL);
        var training = new List<int>();
        var validation = new List<int>();
        for (int c = 0; c < NumClasses; c++)
        {
            var members = Enumerable.Range(0, Count).Where(i => labels[i] == c).ToArray();
            rng.Shuffle(members);
            int nVal = (int)Math.Round(members.Length * validationFraction);
            if (nVal == 0 && members.Length >= 2) nVal = 1;
            if (nVal == members.Length && members.Length > 0) nVal = members.Length - 1;
            training.AddRange(members[..^nVal]);
            validation.AddRange(members[^nVal..]);
        }
        if (validation.Count == 0)
            throw new ArgumentException($"A validation fraction of {validationFraction} of {Count} images leaves no validation images.");
        training.Sort();
        validation.Sort();
        return (Subset(training), Subset(validation));
    }

    public int GetLabel(int index) => labels[index];

    public string Describe(int index) => files[index];

    public bool TryRead(int index, Span<float> pixels, out string? reason)
    {
        bool ok = ImageFile.TryLoad(files[index], Options.ImageSize.Height, Options.ImageSize.Width, Options.Color, pixels, out reason, Options.CropToAspectRatio, Options.MaxPixels);
        if (ok) return true;
        // TryLoad's messages start with the path; the pipeline names the file itself.
        if (reason is not null && reason.StartsWith(files[index], StringComparison.Ordinal)) reason = reason[files[index].Length..].TrimStart(':', ' ');
        return false;
    }

    /// Decodes every image into memory, on several threads: (N, H, W, C) floats. Unreadable files are left out with a
    /// warning (an error with Strict). Check DecodedBytes first: a large folder is better streamed (BatchPipeline).
    public ImageDataset Load(int? threads = null)
    {
        long bytes = DecodedBytes;
        if (bytes / sizeof(float) > Array.MaxLength)
            throw new InvalidOperationException(
                $"{Count:N0} images of {ImageShape} take {bytes:N0} bytes decoded, more than one array can hold; stream them with a BatchPipeline instead.");
        int size = ImageShape.Size;
        var data = new float[(long)Count * size];
        var ok = new bool[Count];
        var reasons = new string?[Count];
        Parallel.For(0, Count, new ParallelOptions { MaxDegreeOfParallelism = threads ?? Environment.ProcessorCount }, i =>
            ok[i] = TryRead(i, data.AsSpan(i * size, size), out reasons[i]));
        var warn = Options.Warning ?? (m => Console.Error.WriteLine(m));
        var keep = new List<int>(Count);
        for (int i = 0; i < Count; i++)
        {
            if (ok[i]) { keep.Add(i); continue; }
            if (Options.Strict) throw new InvalidDataException($"{files[i]}: {reasons[i]} (strict mode: stopping at the first unreadable file).");
            warn($"warning: skipping {files[i]}: {reasons[i]}");
        }
        if (keep.Count == 0) throw new InvalidDataException($"None of the {Count:N0} images in {Directory} could be read.");
        if (keep.Count < Count)
        {
            // Close the gaps the unreadable images left.
            for (int j = 0; j < keep.Count; j++)
                if (keep[j] != j) data.AsSpan(keep[j] * size, size).CopyTo(data.AsSpan(j * size, size));
            Array.Resize(ref data, keep.Count * size);
        }
        return new ImageDataset(new Tensor(ImageShape.WithBatch(keep.Count), data), [.. keep.Select(i => labels[i])], classNames);
    }

    /// The layout a folder has: one class folder per class (Classes), or split folders that each hold class folders:
    /// train (or training) with test and/or validation (or val).
    public static (string? Train, string? Validation, string? Test) FindSplits(string directory)
    {
        string? Sub(params string[] names) => names.Select(n => Path.Combine(directory, n)).FirstOrDefault(System.IO.Directory.Exists);
        var train = Sub("train", "training");
        return train is null ? (null, null, null) : (train, Sub("validation", "val", "valid"), Sub("test", "testing"));
    }

    /// True when directory looks like an image folder: class folders holding images, or train/ with class folders.
    public static bool IsImageFolder(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) return false;
        var (train, _, _) = FindSplits(directory);
        var root = train ?? directory;
        return System.IO.Directory.EnumerateDirectories(root)
            .Any(d => System.IO.Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories).Any(ImageFile.HasImageExtension));
    }

    public override string ToString() => $"ImageFolderDataset({Count:N0} images of {ImageShape} in {NumClasses} classes, {Directory})";
}
