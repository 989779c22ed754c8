using System.IO.Compression;
using System.Security.Cryptography;

namespace Naani.Data;

/// Finds a dataset by name or folder. A name is looked up, in order, in
///   1. $NAANI_HOME/datasets/NAME (NAANI_HOME defaults to ~/.naani)
///   2. /usr/share/datasets/NAME (where Debian's dataset-fashion-mnist package puts Fashion-MNIST)
///   3. the dataset's canonical download site, saved into the first folder, each file's MD5 checked.
/// Loading from disk never touches the network; the download happens only when no folder has the files.
public static class Datasets
{
    public const string DebianRoot = "/usr/share/datasets";

    /// Naani's own folder: $NAANI_HOME, or ~/.naani when that is not set.
    public static string HomeDirectory =>
        Environment.GetEnvironmentVariable("NAANI_HOME") is { Length: > 0 } home
            ? home
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".naani");

    /// Where downloaded datasets are kept: HomeDirectory/datasets.
    public static string CacheDirectory => Path.Combine(HomeDirectory, "datasets");

    /// The folders searched for NAME, in order; downloads go into the first.
    public static IReadOnlyList<string> SearchRoots => [CacheDirectory, DebianRoot];

    /// The names Load accepts, besides folders.
    public static IReadOnlyList<string> KnownNames => [.. Catalog.Select(d => d.Name), .. Cifar.Names];

    /// Loads a dataset from a folder, or by name (see the class comment). Source is the folder it was read from.
    public static (ImageDataset Train, ImageDataset Test, string Source) Load(string nameOrDirectory, Action<string>? log = null)
    {
        // CIFAR-10/100 (binary version): by name, or a folder holding their .bin files.
        if (Directory.Exists(nameOrDirectory) && Cifar.Detect(nameOrDirectory) is { } kind)
        {
            var (train, test) = Cifar.LoadFolder(nameOrDirectory, kind);
            return (train, test, Path.GetFullPath(Cifar.FindFolder(nameOrDirectory, kind)!));
        }
        if (!Directory.Exists(nameOrDirectory) && Cifar.Find(nameOrDirectory, Cifar.Catalog) is { } cifar)
            return Cifar.Load(cifar, SearchRoots, HttpDownload, log);
        return Load(nameOrDirectory, SearchRoots, HttpDownload, log, Catalog);
    }

    /// Saves url into the file destination (created or overwritten); throws on any failure.
    internal delegate void Downloader(Uri url, string destination);

    /// One file of a dataset as the mirrors serve it: NAME.gz, with the MD5 of the .gz file and, where known,
    /// the MD5 of its decompressed content (which survives a mirror recompressing the file).
    internal sealed record RemoteFile(string Name, string GzipMd5, string? ContentMd5);

    internal sealed record KnownDataset(string Name, string[] Mirrors, RemoteFile[] Files, string[] ClassNames, string? DebianPackage);

    // The .gz MD5s are torchvision's. The content MD5s are those of the decompressed files of Debian's
    // dataset-fashion-mnist 0.0~git20200523.55506a9-1: Debian's .gz files differ from the canonical ones only by the
    // dropped file-name field of the gzip header (each is shorter by exactly the name's length), so their compressed
    // MD5s differ but the content is the canonical content.
    internal static readonly KnownDataset[] Catalog =
    [
        new("fashion-mnist",
            ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
            [
                new(MnistFamily.TrainImages, "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
                new(MnistFamily.TrainLabels, "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"),
                new(MnistFamily.TestImages, "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
                new(MnistFamily.TestLabels, "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
            ],
            MnistFamily.FashionClassNames,
            "dataset-fashion-mnist"),
        new("mnist",
            ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"],
            [
                new(MnistFamily.TrainImages, "f68b3c2dcbeaaa9fbdd348bbdeb94873", null),
                new(MnistFamily.TrainLabels, "d53e105ee54ea40749a09fcbcd1e9432", null),
                new(MnistFamily.TestImages, "9fb629c4189551a2d022fa330f9573f3", null),
                new(MnistFamily.TestLabels, "ec29112dd5afa0611ce80d1b7f02629c", null),
            ],
            MnistFamily.DigitClassNames,
            null),
    ];

    /// Load with the search folders, the downloader and the catalog given: what the tests drive.
    /// searchRoots[0] is where downloads go.
    internal static (ImageDataset Train, ImageDataset Test, string Source) Load(
        string nameOrDirectory, IReadOnlyList<string> searchRoots, Downloader download, Action<string>? log, IReadOnlyList<KnownDataset> catalog)
    {
        ArgumentNullException.ThrowIfNull(nameOrDirectory);
        if (searchRoots.Count == 0)
            throw new ArgumentException("At least one search folder is needed.", nameof(searchRoots));

        if (Directory.Exists(nameOrDirectory))
        {
            var dir = Path.GetFullPath(nameOrDirectory);
            // A folder says nothing about its classes; Fashion-MNIST folders are recognised by name
            // (fashion-mnist, or data/fashion as in Zalando's repository).
            bool fashion = Path.GetFileName(Path.TrimEndingDirectorySeparator(dir)).Contains("fashion", StringComparison.OrdinalIgnoreCase);
            log?.Invoke($"Loading {dir}{(fashion ? " (Fashion-MNIST class names)" : "")}");
            var (train, test) = MnistFamily.LoadFolder(dir, fashion ? MnistFamily.FashionClassNames : MnistFamily.DigitClassNames);
            return (train, test, dir);
        }

        var known = catalog.FirstOrDefault(d => string.Equals(d.Name, nameOrDirectory, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException(
                $"\"{nameOrDirectory}\" is neither a folder nor a known dataset; known datasets: {string.Join(", ", catalog.Select(d => d.Name))}.",
                nameof(nameOrDirectory));

        foreach (var root in searchRoots)
        {
            var dir = Path.Combine(root, known.Name);
            if (!Directory.Exists(dir))
                continue;
            var missing = MnistFamily.MissingFiles(dir);
            if (missing.Count > 0)
            {
                log?.Invoke($"{dir} lacks {string.Join(", ", missing)}; looking further");
                continue;
            }
            log?.Invoke($"Loading {known.Name} from {dir}");
            var (train, test) = MnistFamily.LoadFolder(dir, known.ClassNames);
            return (train, test, dir);
        }

        var target = Path.Combine(searchRoots[0], known.Name);
        DownloadMissing(known, target, searchRoots, download, log);
        var (downloadedTrain, downloadedTest) = MnistFamily.LoadFolder(target, known.ClassNames);
        return (downloadedTrain, downloadedTest, target);
    }

    static void DownloadMissing(KnownDataset known, string target, IReadOnlyList<string> searchRoots, Downloader download, Action<string>? log)
    {
        var failures = new List<string>();
        Exception? lastError = null;
        try
        {
            Directory.CreateDirectory(target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Unavailable(known, target, searchRoots, [$"cannot create {target}: {e.Message}"], e);
        }

        foreach (var file in known.Files)
        {
            if (MnistFamily.FindFile(target, file.Name) is not null)
                continue;
            var destination = Path.Combine(target, file.Name + ".gz");
            bool done = false;
            foreach (var mirror in known.Mirrors)
            {
                var url = new Uri(new Uri(mirror), file.Name + ".gz");
                // Download beside the destination and move into place only once verified,
                // so an interrupted download never leaves a file that looks complete.
                var temporary = Path.Combine(target, $".{file.Name}.gz.{Guid.NewGuid():N}.part");
                try
                {
                    log?.Invoke($"Downloading {url}");
                    download(url, temporary);
                    var problem = ChecksumProblem(temporary, file);
                    if (problem is not null)
                    {
                        failures.Add($"{url}: {problem}");
                        continue;
                    }
                    File.Move(temporary, destination, overwrite: true);
                    log?.Invoke($"Saved {destination} (MD5 verified)");
                    done = true;
                    break;
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or UnauthorizedAccessException)
                {
                    failures.Add($"{url}: {e.Message}");
                    lastError = e;
                }
                finally
                {
                    if (File.Exists(temporary))
                        File.Delete(temporary);
                }
            }
            if (!done)
                throw Unavailable(known, target, searchRoots, failures, lastError);
        }
    }

    /// Null when path holds the expected file, else what is wrong with it.
    internal static string? ChecksumProblem(string path, RemoteFile file)
    {
        string gzipMd5 = Md5(path, decompress: false);
        if (gzipMd5 == file.GzipMd5)
            return null;
        if (file.ContentMd5 is not null)
        {
            string contentMd5;
            try
            {
                contentMd5 = Md5(path, decompress: true);
            }
            catch (InvalidDataException)
            {
                return $"MD5 is {gzipMd5}, expected {file.GzipMd5}, and it is not a gzip file";
            }
            if (contentMd5 == file.ContentMd5)
                return null;
            return $"MD5 is {gzipMd5}, expected {file.GzipMd5} (decompressed: {contentMd5}, expected {file.ContentMd5})";
        }
        return $"MD5 is {gzipMd5}, expected {file.GzipMd5}";
    }

    static string Md5(string path, bool decompress)
    {
        using var stream = File.OpenRead(path);
        using var content = decompress ? new GZipStream(stream, CompressionMode.Decompress) : (Stream)stream;
        return Convert.ToHexStringLower(MD5.HashData(content));
    }

    static IOException Unavailable(KnownDataset known, string target, IReadOnlyList<string> searchRoots, List<string> failures, Exception? inner)
    {
        var lines = new List<string>
        {
            $"Could not get the {known.Name} dataset: no complete copy in {string.Join(" or ", searchRoots.Select(r => Path.Combine(r, known.Name)))}, " +
            "and the download failed:",
        };
        lines.AddRange(failures.Select(f => "  " + f));
        lines.Add("To use it without the network, either:");
        if (known.DebianPackage is not null)
            lines.Add($"  - install the Debian package {known.DebianPackage} (sudo apt install {known.DebianPackage}), which puts the files in {DebianRoot}/{known.Name};");
        lines.Add($"  - copy the four files {string.Join(", ", known.Files.Select(f => f.Name + ".gz"))} (gzipped or not) into {target};");
        lines.Add($"  - or pass the folder that holds them instead of the name \"{known.Name}\".");
        return new IOException(string.Join(Environment.NewLine, lines), inner);
    }

    // Connecting gives up after 15 s, so a machine without network fails fast; a whole file may take 10 minutes.
    static readonly Lazy<HttpClient> Http = new(() => new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(15) })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    });

    internal static void HttpDownload(Uri url, string destination)
    {
        // HttpClient.Timeout would not cover reading the body of a streamed response; this token does.
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        using var response = Http.Value.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancel.Token).GetAwaiter().GetResult();
        response.EnsureSuccessStatusCode();
        using var body = response.Content.ReadAsStreamAsync(cancel.Token).GetAwaiter().GetResult();
        using var file = new FileStream(destination, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        body.CopyToAsync(file, cancel.Token).GetAwaiter().GetResult();
    }
}
