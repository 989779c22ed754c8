using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace Naani.Data;

/// CIFAR-10 or CIFAR-100.
public enum CifarKind
{
    Cifar10,
    Cifar100,
}

/// Reads the binary versions of CIFAR-10 and CIFAR-100 (32x32 RGB photographs; www.cs.toronto.edu/~kriz/cifar.html).
///
/// Layout of one record (no header; a file is records back to back):
///   CIFAR-10:  1 byte label (0..9),                                 then 3072 bytes of pixels
///   CIFAR-100: 1 byte coarse label (0..19), 1 byte fine label (0..99), then 3072 bytes of pixels
///   pixels: the 1024 red values of the 32x32 image row by row, then the 1024 green, then the 1024 blue (planar, CHW).
/// Naani transposes them to (32, 32, 3) channels-last and scales them to [0, 1].
/// Files: cifar-10-batches-bin/data_batch_1.bin ... data_batch_5.bin and test_batch.bin (10,000 records each);
/// cifar-100-binary/train.bin (50,000) and test.bin (10,000); class names in batches.meta.txt and fine_label_names.txt.
public static class Cifar
{
    public const int Height = 32, Width = 32, Channels = 3;
    const int PixelBytes = Height * Width * Channels;

    public static string[] Cifar10ClassNames => ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    public static string[] Cifar100ClassNames =>
    [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy", "bridge", "bus",
        "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab",
        "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
        "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
        "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
        "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
        "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train",
        "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ];

    public static string[] Cifar10TrainFiles => ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
    public const string Cifar10TestFile = "test_batch.bin";
    public const string Cifar100TrainFile = "train.bin";
    public const string Cifar100TestFile = "test.bin";

    /// One CIFAR dataset as its site serves it: a .tar.gz holding one folder.
    internal sealed record Remote(string Name, CifarKind Kind, Uri Url, string Md5, string FolderName);

    internal static readonly Remote[] Catalog =
    [
        new("cifar-10", CifarKind.Cifar10, new Uri("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"), "c32a1d4ab5d03f1284b67883e8d87530", "cifar-10-batches-bin"),
        new("cifar-100", CifarKind.Cifar100, new Uri("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"), "03b5dce01913d631647c71ecec9e9cb8", "cifar-100-binary"),
    ];

    /// The names Datasets.Load accepts for CIFAR ("cifar10" and "cifar100" work too).
    public static IReadOnlyList<string> Names => [.. Catalog.Select(c => c.Name)];

    /// The catalog entry for a name, accepting cifar10 / cifar-10 / CIFAR-10; null for other names.
    internal static Remote? Find(string name, IReadOnlyList<Remote> catalog)
    {
        var key = name.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal);
        return catalog.FirstOrDefault(c => string.Equals(c.Name.Replace("-", "", StringComparison.Ordinal), key, StringComparison.OrdinalIgnoreCase));
    }

    /// Reads one CIFAR binary file; fineLabels picks CIFAR-100's fine (100) or coarse (20) labels.
    public static ImageDataset ReadFile(string path, CifarKind kind, string[]? classNames = null, bool fineLabels = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        classNames ??= kind == CifarKind.Cifar10 ? Cifar10ClassNames : fineLabels ? Cifar100ClassNames : [.. Enumerable.Range(0, 20).Select(i => $"coarse_{i}")];
        return Read([path], kind, classNames, fineLabels);
    }

    /// Reads several files of the same kind into one dataset (the five CIFAR-10 training batches).
    static ImageDataset Read(IReadOnlyList<string> paths, CifarKind kind, string[] classNames, bool fineLabels)
    {
        int labelBytes = kind == CifarKind.Cifar10 ? 1 : 2;
        int recordBytes = labelBytes + PixelBytes;
        long total = 0;
        foreach (var path in paths)
        {
            long length = new FileInfo(path).Length;
            if (length == 0 || length % recordBytes != 0)
                throw new InvalidDataException(
                    $"{path}: {length:N0} bytes is not a whole number of {kind} records of {recordBytes:N0} bytes " +
                    $"({labelBytes} label byte{(labelBytes == 1 ? "" : "s")} + {PixelBytes:N0} pixel bytes). The file is truncated or not a {kind} binary batch.");
            total += length / recordBytes;
        }
        if (total * PixelBytes > Array.MaxLength)
            throw new InvalidDataException($"{string.Join(", ", paths)}: {total:N0} images are more than one array can hold.");

        var images = new float[total * PixelBytes];
        var labels = new int[total];
        var record = new byte[recordBytes];
        int n = 0;
        foreach (var path in paths)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            long records = stream.Length / recordBytes;
            for (long r = 0; r < records; r++, n++)
            {
                stream.ReadExactly(record);
                int label = fineLabels ? record[labelBytes - 1] : record[0];
                if (label >= classNames.Length)
                    throw new InvalidDataException(
                        $"{path}: record {r} (byte {r * recordBytes}) has label {label}; {kind} has {classNames.Length} classes (0..{classNames.Length - 1}).");
                labels[n] = label;
                // CHW planes -> HWC: x[h, w, c] = plane_c[h * 32 + w] / 255
                var pixels = images.AsSpan(n * PixelBytes, PixelBytes);
                var planes = record.AsSpan(labelBytes);
                for (int p = 0; p < Height * Width; p++)
                    for (int c = 0; c < Channels; c++)
                        pixels[p * Channels + c] = planes[c * Height * Width + p] / 255f;
            }
        }
        return new ImageDataset(new Tensor(new Shape((int)total, Height, Width, Channels), images), labels, classNames);
    }

    /// The folder inside dir that holds the files of kind (dir itself, or its cifar-10-batches-bin / cifar-100-binary), or null.
    public static string? FindFolder(string dir, CifarKind kind)
    {
        var required = kind == CifarKind.Cifar10 ? [.. Cifar10TrainFiles, Cifar10TestFile] : new[] { Cifar100TrainFile, Cifar100TestFile };
        var inner = kind == CifarKind.Cifar10 ? "cifar-10-batches-bin" : "cifar-100-binary";
        foreach (var candidate in (string[])[dir, Path.Combine(dir, inner)])
            if (Directory.Exists(candidate) && required.All(f => File.Exists(Path.Combine(candidate, f))))
                return candidate;
        return null;
    }

    /// Which CIFAR a folder holds, if any.
    public static CifarKind? Detect(string dir) =>
        FindFolder(dir, CifarKind.Cifar10) is not null ? CifarKind.Cifar10 : FindFolder(dir, CifarKind.Cifar100) is not null ? CifarKind.Cifar100 : null;

    /// Loads the training and test sets from a folder of CIFAR binary files (or its parent).
    public static (ImageDataset Train, ImageDataset Test) LoadFolder(string dir, CifarKind kind, bool fineLabels = true)
    {
        var folder = FindFolder(dir, kind) ?? throw new FileNotFoundException(
            kind == CifarKind.Cifar10
                ? $"{Path.GetFullPath(dir)} does not hold CIFAR-10's binary files ({string.Join(", ", Cifar10TrainFiles)}, {Cifar10TestFile}), nor a cifar-10-batches-bin folder with them."
                : $"{Path.GetFullPath(dir)} does not hold CIFAR-100's binary files ({Cifar100TrainFile}, {Cifar100TestFile}), nor a cifar-100-binary folder with them.");
        var names = ClassNamesIn(folder, kind, fineLabels);
        if (kind == CifarKind.Cifar10)
            return (Read([.. Cifar10TrainFiles.Select(f => Path.Combine(folder, f))], kind, names, true), Read([Path.Combine(folder, Cifar10TestFile)], kind, names, true));
        return (Read([Path.Combine(folder, Cifar100TrainFile)], kind, names, fineLabels), Read([Path.Combine(folder, Cifar100TestFile)], kind, names, fineLabels));
    }

    /// Class names from the meta file beside the data (batches.meta.txt, fine_label_names.txt, coarse_label_names.txt), else the known ones.
    static string[] ClassNamesIn(string folder, CifarKind kind, bool fineLabels)
    {
        int expected = kind == CifarKind.Cifar10 ? 10 : fineLabels ? 100 : 20;
        var file = kind == CifarKind.Cifar10 ? "batches.meta.txt" : fineLabels ? "fine_label_names.txt" : "coarse_label_names.txt";
        var path = Path.Combine(folder, file);
        if (File.Exists(path))
        {
            var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            if (names.Length == expected) return names;
        }
        return kind == CifarKind.Cifar10 ? Cifar10ClassNames : fineLabels ? Cifar100ClassNames : [.. Enumerable.Range(0, 20).Select(i => $"coarse_{i}")];
    }

    /// Loads CIFAR by name like Datasets.Load: searchRoots/NAME first, then a download (MD5-checked) into searchRoots[0]/NAME.
    internal static (ImageDataset Train, ImageDataset Test, string Source) Load(
        Remote remote, IReadOnlyList<string> searchRoots, Datasets.Downloader download, Action<string>? log)
    {
        foreach (var root in searchRoots)
        {
            var dir = Path.Combine(root, remote.Name);
            if (!Directory.Exists(dir)) continue;
            if (FindFolder(dir, remote.Kind) is { } folder)
            {
                log?.Invoke($"Loading {remote.Name} from {folder}");
                var (train, test) = LoadFolder(folder, remote.Kind);
                return (train, test, folder);
            }
            log?.Invoke($"{dir} lacks the {remote.Name} binary files; looking further");
        }

        var target = Path.Combine(searchRoots[0], remote.Name);
        Directory.CreateDirectory(target);
        var archive = Path.Combine(target, $".{remote.FolderName}.{Guid.NewGuid():N}.tar.gz.part");
        try
        {
            log?.Invoke($"Downloading {remote.Url}");
            try
            {
                download(remote.Url, archive);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or UnauthorizedAccessException)
            {
                throw new IOException(
                    $"Could not get {remote.Name}: no copy in {string.Join(" or ", searchRoots.Select(r => Path.Combine(r, remote.Name)))}, and downloading {remote.Url} failed: {e.Message} " +
                    $"To use it without the network, extract {Path.GetFileName(remote.Url.LocalPath)} into {target}, or pass the folder that holds its files.", e);
            }
            string md5;
            using (var stream = File.OpenRead(archive))
                md5 = Convert.ToHexStringLower(MD5.HashData(stream));
            if (md5 != remote.Md5)
                throw new IOException($"{remote.Url}: MD5 is {md5}, expected {remote.Md5}; the download is damaged or not the CIFAR archive.");
            using (var file = File.OpenRead(archive))
            using (var gzip = new GZipStream(file, CompressionMode.Decompress))
                Extract(gzip, target);
            log?.Invoke($"Extracted {remote.Name} into {target} (MD5 verified)");
        }
        finally
        {
            if (File.Exists(archive)) File.Delete(archive);
        }
        var extracted = FindFolder(target, remote.Kind)
            ?? throw new InvalidDataException($"{remote.Url}: the archive did not hold the expected {remote.FolderName} files.");
        var (t, v) = LoadFolder(extracted, remote.Kind);
        return (t, v, extracted);
    }

    // Regular files only, and only below target: an entry naming ../ or an absolute path is refused.
    static void Extract(Stream tar, string target)
    {
        var root = Path.GetFullPath(target) + Path.DirectorySeparatorChar;
        using var reader = new TarReader(tar);
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
            var destination = Path.GetFullPath(Path.Combine(root, entry.Name));
            if (!destination.StartsWith(root, StringComparison.Ordinal))
                throw new InvalidDataException($"The archive entry '{entry.Name}' points outside {target}; refusing to extract it.");
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            var temporary = destination + ".part";
            entry.ExtractToFile(temporary, overwrite: true);
            File.Move(temporary, destination, overwrite: true);
        }
    }
}
