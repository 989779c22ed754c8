using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using Naani.Data;
using Xunit;

namespace Naani.Tests.Data;

/// CIFAR binary files made here, in the canonical layout: label byte(s), then 1024 red, 1024 green, 1024 blue bytes.
public sealed class CifarTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    /// Pixel (h, w) of channel c of image n: a value that tells all four apart.
    static byte Pixel(int n, int h, int w, int c) => (byte)((n * 31 + h * 7 + w * 3 + c * 85) % 256);

    static byte[] Records(int count, CifarKind kind, Func<int, int> label, int firstImage = 0)
    {
        int labelBytes = kind == CifarKind.Cifar10 ? 1 : 2;
        var bytes = new byte[count * (labelBytes + 3072)];
        for (int r = 0; r < count; r++)
        {
            int o = r * (labelBytes + 3072);
            if (kind == CifarKind.Cifar10) bytes[o] = (byte)label(r);
            else
            {
                bytes[o] = (byte)(label(r) / 5);   // coarse
                bytes[o + 1] = (byte)label(r);     // fine
            }
            for (int c = 0; c < 3; c++)
                for (int h = 0; h < 32; h++)
                    for (int w = 0; w < 32; w++)
                        bytes[o + labelBytes + c * 1024 + h * 32 + w] = Pixel(firstImage + r, h, w, c);
        }
        return bytes;
    }

    string WriteCifar10(string dir, int perBatch = 2)
    {
        Directory.CreateDirectory(dir);
        for (int b = 0; b < 5; b++)
            File.WriteAllBytes(Path.Combine(dir, Cifar.Cifar10TrainFiles[b]), Records(perBatch, CifarKind.Cifar10, r => (b * perBatch + r) % 10, b * perBatch));
        File.WriteAllBytes(Path.Combine(dir, Cifar.Cifar10TestFile), Records(3, CifarKind.Cifar10, r => 9 - r, 100));
        return dir;
    }

    [Fact]
    public void Cifar10_record_is_transposed_from_planes_to_channels_last_and_scaled()
    {
        var path = temp.Sub("one.bin");
        Directory.CreateDirectory(temp.Path);
        File.WriteAllBytes(path, Records(2, CifarKind.Cifar10, r => r + 3));

        var data = Cifar.ReadFile(path, CifarKind.Cifar10);

        Assert.Equal(new Shape(2, 32, 32, 3), data.Images.Shape);
        Assert.Equal([3, 4], data.Labels);
        Assert.Equal("cat", data.ClassNames[3]);
        foreach (var (n, h, w, c) in new[] { (0, 0, 0, 0), (0, 0, 1, 2), (1, 31, 5, 1), (1, 12, 31, 2) })
            Assert.Equal(Pixel(n, h, w, c) / 255f, data.Images[n, h, w, c]);
    }

    [Fact]
    public void Cifar100_reads_fine_or_coarse_labels()
    {
        var path = temp.Sub("train.bin");
        Directory.CreateDirectory(temp.Path);
        File.WriteAllBytes(path, Records(3, CifarKind.Cifar100, r => 40 + r * 17));

        var fine = Cifar.ReadFile(path, CifarKind.Cifar100);
        var coarse = Cifar.ReadFile(path, CifarKind.Cifar100, fineLabels: false);

        Assert.Equal([40, 57, 74], fine.Labels);
        Assert.Equal([8, 11, 14], coarse.Labels);
        Assert.Equal(100, fine.NumClasses);
        Assert.Equal(Pixel(2, 3, 4, 1) / 255f, fine.Images[2, 3, 4, 1]);
    }

    [Fact]
    public void Truncated_file_is_refused_before_allocating_with_the_record_size()
    {
        var path = temp.Sub("cut.bin");
        Directory.CreateDirectory(temp.Path);
        File.WriteAllBytes(path, Records(2, CifarKind.Cifar10, _ => 1)[..5000]);

        var e = Assert.Throws<InvalidDataException>(() => Cifar.ReadFile(path, CifarKind.Cifar10));
        Assert.Contains("3,073", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Label_outside_the_classes_names_the_record_and_offset()
    {
        var path = temp.Sub("bad.bin");
        Directory.CreateDirectory(temp.Path);
        File.WriteAllBytes(path, Records(2, CifarKind.Cifar10, r => r == 1 ? 12 : 0));

        var e = Assert.Throws<InvalidDataException>(() => Cifar.ReadFile(path, CifarKind.Cifar10));
        Assert.Contains("record 1", e.Message);
        Assert.Contains("3073", e.Message);
    }

    [Fact]
    public void Folder_of_the_six_cifar10_files_loads_train_and_test_with_meta_class_names()
    {
        var dir = WriteCifar10(temp.Sub("cifar-10-batches-bin"));
        File.WriteAllLines(Path.Combine(dir, "batches.meta.txt"), ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", ""]);

        var (train, test) = Cifar.LoadFolder(temp.Path, CifarKind.Cifar10);   // the parent works too

        Assert.Equal(10, train.Count);
        Assert.Equal(3, test.Count);
        Assert.Equal("a7", train.ClassNames[7]);
        Assert.Equal([.. Enumerable.Range(0, 10)], train.Labels);
        Assert.Equal(Pixel(7, 1, 2, 0) / 255f, train.Images[7, 1, 2, 0]);   // image 7 is the second of batch 4
        Assert.Equal(Pixel(101, 0, 0, 2) / 255f, test.Images[1, 0, 0, 2]);
    }

    [Fact]
    public void Datasets_Load_recognises_a_cifar_folder()
    {
        var dir = WriteCifar10(temp.Sub("mine"));

        var (train, test, source) = Datasets.Load(dir);

        Assert.Equal(10, train.Count);
        Assert.Equal(3, test.Count);
        Assert.Equal(Path.GetFullPath(dir), source);
        Assert.Contains("cifar-10", Datasets.KnownNames);
        Assert.Contains("cifar-100", Datasets.KnownNames);
    }

    [Fact]
    public void By_name_a_copy_in_the_search_folders_is_used_without_downloading()
    {
        var home = temp.Sub("home");
        WriteCifar10(Path.Combine(home, "cifar-10", "cifar-10-batches-bin"));
        var remote = Cifar.Find("CIFAR10", Cifar.Catalog)!;

        var (train, _, source) = Cifar.Load(remote, [home], (url, _) => throw new InvalidOperationException($"downloaded {url}"), null);

        Assert.Equal(10, train.Count);
        Assert.EndsWith("cifar-10-batches-bin", source);
    }

    [Fact]
    public void Download_is_checked_and_extracted_into_the_first_search_folder()
    {
        var staging = WriteCifar10(temp.Sub("staging", "cifar-10-batches-bin"));
        var archive = temp.Sub("cifar.tar.gz");
        using (var file = File.Create(archive))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
            TarFile.CreateFromDirectory(staging, gzip, includeBaseDirectory: true);
        string md5 = Convert.ToHexStringLower(MD5.HashData(File.ReadAllBytes(archive)));
        var remote = new Cifar.Remote("cifar-10", CifarKind.Cifar10, new Uri("https://example.invalid/cifar-10-binary.tar.gz"), md5, "cifar-10-batches-bin");
        var log = new List<string>();

        var (train, test, source) = Cifar.Load(remote, [temp.Sub("home"), temp.Sub("debian")], (_, destination) => File.Copy(archive, destination, true), log.Add);

        Assert.Equal(10, train.Count);
        Assert.Equal(3, test.Count);
        Assert.Equal(Path.Combine(temp.Sub("home"), "cifar-10", "cifar-10-batches-bin"), source);
        Assert.Contains(log, l => l.Contains("MD5 verified"));
        Assert.Empty(Directory.GetFiles(Path.Combine(temp.Sub("home"), "cifar-10"), "*.part"));
    }

    [Fact]
    public void Download_with_the_wrong_checksum_is_refused_and_removed()
    {
        var remote = new Cifar.Remote("cifar-10", CifarKind.Cifar10, new Uri("https://example.invalid/x.tar.gz"), "00000000000000000000000000000000", "cifar-10-batches-bin");

        var e = Assert.Throws<IOException>(() => Cifar.Load(remote, [temp.Sub("home")], (_, d) => File.WriteAllText(d, "not an archive"), null));

        Assert.Contains("MD5", e.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(temp.Sub("home"), "cifar-10")));
    }

    [Fact]
    public void Failed_download_says_how_to_work_offline()
    {
        var remote = Cifar.Find("cifar-100", Cifar.Catalog)!;

        var e = Assert.Throws<IOException>(() => Cifar.Load(remote, [temp.Sub("home")], (url, _) => throw new HttpRequestException("no route"), null));

        Assert.Contains("cifar-100-binary.tar.gz", e.Message);
        Assert.Contains("no route", e.Message);
    }
}
