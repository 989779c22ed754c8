using System.Security.Cryptography;
using Naani.Data;
using Xunit;

namespace Naani.Tests.Data;

/// Resolution order and downloads, with fake search folders and a fake downloader: these tests never touch the network.
public sealed class DatasetsTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    static void NoNetwork(Uri url, string destination) => throw new HttpRequestException($"Name or service not known ({url.Host}:80)");

    static void MustNotDownload(Uri url, string destination) => throw new InvalidOperationException($"The test tried to download {url}.");

    (string Home, string Debian) Roots() => (temp.Sub("home", "datasets"), temp.Sub("debian"));

    [Fact]
    public void Existing_directory_is_loaded_without_a_name_lookup()
    {
        var dir = temp.Sub("my-digits");
        IdxFiles.WriteMnistFolder(dir, train: 3, test: 2);

        var (train, test, source) = Datasets.Load(dir, [temp.Sub("unused")], MustNotDownload, null, Datasets.Catalog);

        Assert.Equal(Path.GetFullPath(dir), source);
        Assert.Equal(3, train.Count);
        Assert.Equal(2, test.Count);
        Assert.Equal(MnistFamily.DigitClassNames, train.ClassNames);
    }

    [Fact]
    public void Directory_named_fashion_gets_the_fashion_class_names()
    {
        var dir = temp.Sub("data", "fashion");
        IdxFiles.WriteMnistFolder(dir, train: 3, test: 2);

        var (train, _, _) = Datasets.Load(dir, [temp.Sub("unused")], MustNotDownload, null, Datasets.Catalog);

        Assert.Equal(MnistFamily.FashionClassNames, train.ClassNames);
    }

    [Fact]
    public void Unknown_name_is_refused_with_the_known_names()
    {
        var error = Assert.Throws<ArgumentException>(() => Datasets.Load("cifar-11", [temp.Path], MustNotDownload, null, Datasets.Catalog));

        Assert.Contains("\"cifar-11\"", error.Message);
        Assert.Contains("fashion-mnist, mnist", error.Message);
    }

    [Fact]
    public void Name_is_found_in_the_first_root_that_holds_all_four_files()
    {
        var (home, debian) = Roots();
        IdxFiles.WriteMnistFolder(Path.Combine(home, "fashion-mnist"), train: 4, test: 2);
        IdxFiles.WriteMnistFolder(Path.Combine(debian, "fashion-mnist"), train: 6, test: 3, gzip: true);
        var log = new List<string>();

        var (train, _, source) = Datasets.Load("Fashion-MNIST", [home, debian], MustNotDownload, log.Add, Datasets.Catalog);

        Assert.Equal(Path.Combine(home, "fashion-mnist"), source);
        Assert.Equal(4, train.Count);
        Assert.Equal(MnistFamily.FashionClassNames, train.ClassNames);
        Assert.Contains(log, line => line.Contains(source, StringComparison.Ordinal));
    }

    [Fact]
    public void Incomplete_folder_is_skipped_for_a_later_root()
    {
        var (home, debian) = Roots();
        IdxFiles.WriteMnistFolder(Path.Combine(home, "mnist"), train: 4, test: 2);
        File.Delete(Path.Combine(home, "mnist", "t10k-images-idx3-ubyte"));
        IdxFiles.WriteMnistFolder(Path.Combine(debian, "mnist"), train: 6, test: 3, gzip: true);
        var log = new List<string>();

        var (train, test, source) = Datasets.Load("mnist", [home, debian], MustNotDownload, log.Add, Datasets.Catalog);

        Assert.Equal(Path.Combine(debian, "mnist"), source);
        Assert.Equal(6, train.Count);
        Assert.Equal(3, test.Count);
        Assert.Contains(log, line => line.Contains("lacks t10k-images-idx3-ubyte", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_network_the_error_says_how_to_get_the_data()
    {
        var (home, debian) = Roots();

        var error = Assert.Throws<IOException>(() => Datasets.Load("fashion-mnist", [home, debian], NoNetwork, null, Datasets.Catalog));

        Assert.Contains("Could not get the fashion-mnist dataset", error.Message);
        Assert.Contains("Name or service not known", error.Message);
        Assert.Contains("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz", error.Message);
        Assert.Contains("dataset-fashion-mnist", error.Message);
        Assert.Contains(Path.Combine(home, "fashion-mnist"), error.Message);
        Assert.Contains("pass the folder", error.Message);
        Assert.IsType<HttpRequestException>(error.InnerException);
    }

    [Fact]
    public void Without_network_mnist_tries_both_mirrors_and_names_no_debian_package()
    {
        var (home, debian) = Roots();
        var tried = new List<Uri>();

        var error = Assert.Throws<IOException>(() => Datasets.Load("mnist", [home, debian], (url, destination) =>
        {
            tried.Add(url);
            NoNetwork(url, destination);
        }, null, Datasets.Catalog));

        Assert.Equal(
            [new Uri("https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"),
             new Uri("https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz")], tried);
        Assert.DoesNotContain("Debian package", error.Message);
        Assert.Contains(Path.Combine(home, "mnist"), error.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(home, "mnist")));
    }

    // A made-up dataset whose checksums are those of files the test writes, so the download path runs end to end.
    (Datasets.KnownDataset Known, Dictionary<string, byte[]> Served) Tiny()
    {
        var source = temp.Sub("served");
        IdxFiles.WriteMnistFolder(source, train: 5, test: 4, rows: 3, cols: 3, gzip: true, classes: 3);
        var served = new Dictionary<string, byte[]>();
        var files = new List<Datasets.RemoteFile>();
        foreach (var name in MnistFamily.FileNames)
        {
            var bytes = File.ReadAllBytes(Path.Combine(source, name + ".gz"));
            served[name + ".gz"] = bytes;
            files.Add(new Datasets.RemoteFile(name, Convert.ToHexStringLower(MD5.HashData(bytes)), null));
        }
        var known = new Datasets.KnownDataset("tiny", ["https://one.example/tiny/", "https://two.example/tiny/"], [.. files], ["a", "b", "c"], null);
        return (known, served);
    }

    [Fact]
    public void Download_saves_verified_files_into_the_first_root_and_loads_them()
    {
        var (home, debian) = Roots();
        var (known, served) = Tiny();
        var downloaded = new List<string>();

        var (train, test, source) = Datasets.Load("tiny", [home, debian], (url, destination) =>
        {
            downloaded.Add(url.AbsoluteUri);
            Assert.StartsWith(Path.Combine(home, "tiny"), destination, StringComparison.Ordinal);
            File.WriteAllBytes(destination, served[Path.GetFileName(url.AbsolutePath)]);
        }, null, [known]);

        Assert.Equal(Path.Combine(home, "tiny"), source);
        Assert.Equal(4, downloaded.Count);
        Assert.All(downloaded, url => Assert.StartsWith("https://one.example/tiny/", url, StringComparison.Ordinal));
        Assert.Equal(5, train.Count);
        Assert.Equal(new Shape(4, 3, 3, 1), test.Images.Shape);
        Assert.Equal(["a", "b", "c"], train.ClassNames);
        Assert.Equal(
            MnistFamily.FileNames.Select(n => n + ".gz").Order(),
            Directory.GetFiles(source).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Download_fetches_only_the_files_the_first_root_lacks()
    {
        var (home, debian) = Roots();
        var (known, served) = Tiny();
        Directory.CreateDirectory(Path.Combine(home, "tiny"));
        File.WriteAllBytes(Path.Combine(home, "tiny", "train-images-idx3-ubyte.gz"), served["train-images-idx3-ubyte.gz"]);
        var downloaded = new List<string>();

        Datasets.Load("tiny", [home, debian], (url, destination) =>
        {
            downloaded.Add(Path.GetFileName(url.AbsolutePath));
            File.WriteAllBytes(destination, served[Path.GetFileName(url.AbsolutePath)]);
        }, null, [known]);

        Assert.Equal(["train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"], downloaded);
    }

    [Fact]
    public void Download_with_a_wrong_checksum_tries_the_next_mirror_and_leaves_no_file_behind()
    {
        var (home, debian) = Roots();
        var (known, served) = Tiny();
        var tried = new List<string>();

        var error = Assert.Throws<IOException>(() => Datasets.Load("tiny", [home, debian], (url, destination) =>
        {
            tried.Add(url.Host);
            File.WriteAllBytes(destination, [0x1F, 0x8B, 1, 2, 3]); // corrupt on every mirror
        }, null, [known]));

        Assert.Equal(["one.example", "two.example"], tried);
        Assert.Contains("MD5 is", error.Message);
        Assert.Contains(known.Files[0].GzipMd5, error.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(home, "tiny")));
    }

    [Fact]
    public void Download_falls_back_to_the_second_mirror_when_the_first_fails()
    {
        var (home, debian) = Roots();
        var (known, served) = Tiny();

        var (train, _, _) = Datasets.Load("tiny", [home, debian], (url, destination) =>
        {
            if (url.Host == "one.example")
                throw new HttpRequestException("503 Service Unavailable");
            File.WriteAllBytes(destination, served[Path.GetFileName(url.AbsolutePath)]);
        }, null, [known]);

        Assert.Equal(5, train.Count);
    }

    [Fact]
    public void Checksum_accepts_a_recompressed_file_by_its_content_md5()
    {
        var content = IdxFiles.Ubyte([3], [1, 2, 3]);
        var recompressed = IdxFiles.Write(temp.Path, "x.gz", content, gzip: true);
        var file = new Datasets.RemoteFile("x", "00000000000000000000000000000000", Convert.ToHexStringLower(MD5.HashData(content)));

        Assert.Null(Datasets.ChecksumProblem(recompressed, file));
        Assert.NotNull(Datasets.ChecksumProblem(recompressed, file with { ContentMd5 = "11111111111111111111111111111111" }));
    }

    [Fact]
    public void Home_directory_follows_NAANI_HOME()
    {
        var saved = Environment.GetEnvironmentVariable("NAANI_HOME");
        try
        {
            Environment.SetEnvironmentVariable("NAANI_HOME", temp.Path);
            Assert.Equal(Path.Combine(temp.Path, "datasets"), Datasets.CacheDirectory);
            Assert.Equal([Path.Combine(temp.Path, "datasets"), "/usr/share/datasets"], Datasets.SearchRoots);
        }
        finally
        {
            Environment.SetEnvironmentVariable("NAANI_HOME", saved);
        }
    }
}
