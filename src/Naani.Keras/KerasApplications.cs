using System.Security.Cryptography;
using Naani.Data;
using Naani.Models;

namespace Naani.Serialization;

/// keras.applications' published ImageNet weights: where they are, their MD5s (the file_hash values of Keras's own
/// applications/vgg16.py and resnet.py), and a cache in $NAANI_HOME/models (~/.naani/models), as Keras keeps
/// ~/.keras/models. A file is downloaded once, checked against its MD5 before it is moved into place, and checked again
/// the first time a process uses it.
public static class KerasApplications
{
    const string Base = "https://storage.googleapis.com/tensorflow/keras-applications/";

    /// One published weight file: for an architecture with (IncludeTop) or without its classifier top.
    public sealed record PublishedWeights(string Architecture, bool IncludeTop, string FileName, Uri Url, string Md5);

    public static IReadOnlyList<PublishedWeights> Catalog { get; } =
    [
        new("vgg16", true, "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
            new Uri(Base + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5"), "64373286793e3c8b2b4e3219cbf3544b"),
        new("vgg16", false, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            new Uri(Base + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"), "6d6bbae143d832006294945121d1f1fc"),
        new("resnet50", true, "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
            new Uri(Base + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5"), "2cb95161c43110f7111970584f804107"),
        new("resnet50", false, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            new Uri(Base + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"), "4d473c1dd8becc155b73f8504c6f6626"),
    ];

    /// Where fetched weight files are kept: $NAANI_HOME/models, or ~/.naani/models.
    public static string ModelsDirectory => Path.Combine(Datasets.HomeDirectory, "models");

    /// The weight file for weights: "imagenet" means Keras's published file for the architecture (fetched into
    /// ModelsDirectory if it is not there yet); anything else is the path of a local .h5 file.
    public static string WeightsFile(string architecture, bool includeTop, string weights = "imagenet", Action<string>? log = null) =>
        WeightsFile(architecture, includeTop, weights, ModelsDirectory, HttpDownload, log);

    /// Loads weights (see WeightsFile) into a model of the architecture, e.g. Architectures.Create("vgg16"), matching
    /// layers by name where the model uses Keras's layer names (block1_conv1, ..., fc1, fc2, predictions) and else by order.
    public static KerasLoadResult LoadWeights(Model model, string architecture, bool includeTop, string weights = "imagenet", Action<string>? log = null) =>
        KerasWeights.Load(model, WeightsFile(architecture, includeTop, weights, log));

    /// Entries of DIRECTORY/catalog.json, which take precedence over the published catalogue: where a site keeps its own
    /// copies (a mirror for machines without internet, or its own weights under these names), as a list of
    /// {"architecture", "include_top", "file", "url" (http(s) or file://), "md5"}. Every file is still checked against
    /// the MD5 its entry gives.
    public static IReadOnlyList<PublishedWeights> MirrorCatalog(string directory)
    {
        string path = Path.Combine(directory, "catalog.json");
        if (!File.Exists(path)) return [];
        try
        {
            var entries = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path)) as System.Text.Json.Nodes.JsonArray
                ?? throw new InvalidDataException("it is not a JSON list");
            return [.. entries.Select(e => new PublishedWeights(
                e!["architecture"]!.GetValue<string>(), e["include_top"]!.GetValue<bool>(), Path.GetFileName(e["file"]!.GetValue<string>()),
                new Uri(e["url"]!.GetValue<string>()), e["md5"]!.GetValue<string>().ToLowerInvariant()))];
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or NullReferenceException or UriFormatException or InvalidDataException)
        {
            throw new InvalidDataException($"'{path}' is not a weights catalogue (a JSON list of {{architecture, include_top, file, url, md5}}): {e.Message}", e);
        }
    }

    /// Saves url into the file destination (created or overwritten); throws on any failure.
    internal delegate void Downloader(Uri url, string destination);

    static readonly HashSet<string> verified = [];

    internal static string WeightsFile(string architecture, bool includeTop, string weights, string directory, Downloader download, Action<string>? log)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (!weights.Equals("imagenet", StringComparison.OrdinalIgnoreCase))
        {
            if (!File.Exists(weights))
                throw new FileNotFoundException($"Weights '{weights}' are neither \"imagenet\" nor an existing .h5 file.", weights);
            return weights;
        }
        var known = MirrorCatalog(directory).Concat(Catalog).FirstOrDefault(c => c.Architecture.Equals(architecture, StringComparison.OrdinalIgnoreCase) && c.IncludeTop == includeTop)
            ?? throw new ArgumentException(
                $"No published ImageNet weights for '{architecture}' ({(includeTop ? "with" : "without")} its top) are known; known: " +
                string.Join(", ", Catalog.Select(c => $"{c.Architecture} ({(c.IncludeTop ? "top" : "no top")})")) + ". Pass the path of a .h5 file instead.");
        return Cached(known, directory, download, log);
    }

    /// The verified local copy of a published file, fetched first if it is missing or its MD5 is wrong.
    internal static string Cached(PublishedWeights known, string directory, Downloader download, Action<string>? log)
    {
        string destination = Path.Combine(directory, known.FileName);
        lock (verified)
        {
            if (verified.Contains(destination) && File.Exists(destination)) return destination;
            if (File.Exists(destination))
            {
                string md5 = Md5(destination);
                if (md5 == known.Md5)
                {
                    verified.Add(destination);
                    return destination;
                }
                log?.Invoke($"{destination} has MD5 {md5}, expected {known.Md5}: fetching it again");
            }
            Fetch(known, destination, download, log);
            verified.Add(destination);
            return destination;
        }
    }

    static void Fetch(PublishedWeights known, string destination, Downloader download, Action<string>? log)
    {
        string directory = Path.GetDirectoryName(destination)!;
        Directory.CreateDirectory(directory);
        // Download beside the destination and move it into place only once verified (a rename, atomic on one
        // file system), so an interrupted or corrupted download never leaves a file that looks complete.
        string temporary = Path.Combine(directory, $".{known.FileName}.{Guid.NewGuid():N}.part");
        try
        {
            log?.Invoke($"Downloading {known.Url}");
            download(known.Url, temporary);
            string md5 = Md5(temporary);
            if (md5 != known.Md5)
                throw new InvalidDataException($"The download of {known.Url} has MD5 {md5}, not the published {known.Md5}; nothing was saved. Try again, or pass the path of a copy you trust.");
            File.Move(temporary, destination, overwrite: true);
            log?.Invoke($"Saved {destination} (MD5 verified)");
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or UnauthorizedAccessException)
        {
            throw new IOException(
                $"Could not fetch the {known.Architecture} ImageNet weights from {known.Url}: {e.Message}. Without the network, copy " +
                $"{known.FileName} (MD5 {known.Md5}) into {directory}, or pass the path of the .h5 file as the weights.", e);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    internal static string Md5(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(stream));
    }

    // Connecting gives up after 15 s, so a machine without network fails fast; the 528 MB VGG16 file may take 30 minutes.
    static readonly Lazy<HttpClient> Http = new(() => new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(15) })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    });

    static void HttpDownload(Uri url, string destination)
    {
        if (url.IsFile)
        {
            // A mirror on a local or shared file system (see MirrorCatalog).
            File.Copy(url.LocalPath, destination, overwrite: true);
            return;
        }
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(30));
        using var response = Http.Value.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancel.Token).GetAwaiter().GetResult();
        response.EnsureSuccessStatusCode();
        using var body = response.Content.ReadAsStreamAsync(cancel.Token).GetAwaiter().GetResult();
        using var file = new FileStream(destination, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        body.CopyToAsync(file, cancel.Token).GetAwaiter().GetResult();
    }
}
