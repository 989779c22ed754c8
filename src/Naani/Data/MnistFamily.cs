namespace Naani.Data;

/// Loads the datasets that share MNIST's layout (MNIST, Fashion-MNIST, KMNIST...): four IDX files in one folder,
/// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte,
/// each raw or gzipped (.gz), also under the dotted names some mirrors use (train-images.idx3-ubyte).
public static class MnistFamily
{
    public const string TrainImages = "train-images-idx3-ubyte";
    public const string TrainLabels = "train-labels-idx1-ubyte";
    public const string TestImages = "t10k-images-idx3-ubyte";
    public const string TestLabels = "t10k-labels-idx1-ubyte";

    /// The four files, in the order train images, train labels, test images, test labels.
    public static IReadOnlyList<string> FileNames { get; } = [TrainImages, TrainLabels, TestImages, TestLabels];

    /// MNIST's classes: the digits "0".."9".
    public static string[] DigitClassNames => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    /// Fashion-MNIST's classes, in label order.
    public static string[] FashionClassNames =>
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// Loads the training and test sets from a folder holding the four files. classNames defaults to the digits.
    public static (ImageDataset Train, ImageDataset Test) LoadFolder(string dir, string[]? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(dir);
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"The dataset folder {Path.GetFullPath(dir)} does not exist.");
        var missing = MissingFiles(dir);
        if (missing.Count > 0)
            throw new FileNotFoundException(
                $"{Path.GetFullPath(dir)} lacks {string.Join(", ", missing)}. A MNIST-family folder holds the four files " +
                $"{string.Join(", ", FileNames)}, each raw or with a .gz suffix (the dotted form train-images.idx3-ubyte is accepted too).");
        var train = Load(FindFile(dir, TrainImages)!, FindFile(dir, TrainLabels)!, classNames);
        var test = Load(FindFile(dir, TestImages)!, FindFile(dir, TestLabels)!, classNames);
        if (train.ImageShape != test.ImageShape)
            throw new InvalidDataException(
                $"{Path.GetFullPath(dir)}: the training images are {train.ImageShape} but the test images are {test.ImageShape}.");
        return (train, test);
    }

    /// Loads one split from an images file, (N, rows, cols) or (N, rows, cols, channels), and a labels file, (N).
    /// Unsigned-byte pixels are scaled to [0, 1] by dividing by 255; other element types are kept as stored.
    public static ImageDataset Load(string imagesPath, string labelsPath, string[]? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(imagesPath);
        ArgumentNullException.ThrowIfNull(labelsPath);
        classNames ??= DigitClassNames;

        var labels = IdxReader.Read(labelsPath);
        if (labels.Dims.Length != 1)
            throw new InvalidDataException($"{labelsPath}: a labels file has 1 dimension (N); this one has {labels.Dims.Length}, ({string.Join(", ", labels.Dims)}).");

        var images = IdxReader.Read(imagesPath);
        if (images.Dims.Length is not (3 or 4))
            throw new InvalidDataException(
                $"{imagesPath}: an images file has 3 dimensions (N, rows, cols) or 4 (N, rows, cols, channels); this one has {images.Dims.Length}, ({string.Join(", ", images.Dims)}).");
        if (images.Dims[0] != labels.Dims[0])
            throw new InvalidDataException(
                $"{imagesPath} holds {images.Dims[0]:N0} images but {labelsPath} holds {labels.Dims[0]:N0} labels; they must match.");

        var classes = new int[labels.Values.Length];
        for (int i = 0; i < classes.Length; i++)
        {
            float value = labels.Values[i];
            if (!(value >= 0 && value < classNames.Length) || value != MathF.Floor(value))
                throw new InvalidDataException(
                    $"{labelsPath}: label {i} is {value}; expected a class index 0..{classNames.Length - 1} for the {classNames.Length} classes ({string.Join(", ", classNames)}).");
            classes[i] = (int)value;
        }

        var pixels = images.Values;
        if (images.Type == IdxType.UnsignedByte)
            for (int i = 0; i < pixels.Length; i++)
                pixels[i] /= 255f;
        int[] dims = images.Dims.Length == 4 ? images.Dims : [.. images.Dims, 1];
        return new ImageDataset(new Tensor(new Shape(dims), pixels), classes, classNames);
    }

    /// The path of one of the four files in dir under any accepted spelling, or null.
    internal static string? FindFile(string dir, string baseName)
    {
        foreach (var name in Spellings(baseName))
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path))
                return path;
        }
        return null;
    }

    /// Which of the four files dir lacks (empty when it holds them all).
    internal static List<string> MissingFiles(string dir) => [.. FileNames.Where(f => FindFile(dir, f) is null)];

    // train-images-idx3-ubyte, train-images-idx3-ubyte.gz, train-images.idx3-ubyte, train-images.idx3-ubyte.gz
    static IEnumerable<string> Spellings(string baseName)
    {
        int dash = baseName.LastIndexOf("-idx", StringComparison.Ordinal);
        string dotted = baseName[..dash] + "." + baseName[(dash + 1)..];
        return [baseName, baseName + ".gz", dotted, dotted + ".gz"];
    }
}
