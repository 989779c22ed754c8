using Naani.Data;
using Xunit;

namespace Naani.Tests.Data;

/// A fact that runs only where Debian's dataset-fashion-mnist package is installed, and is reported as skipped
/// (with the reason) elsewhere.
public sealed class FashionMnistFactAttribute : FactAttribute
{
    public const string Folder = "/usr/share/datasets/fashion-mnist";

    public FashionMnistFactAttribute()
    {
        if (!Directory.Exists(Folder))
            Skip = $"{Folder} is absent; install the Debian package dataset-fashion-mnist to run this test.";
    }
}

[Trait("Category", "RealData")]
public sealed class RealFashionMnistTests
{
    static void MustNotDownload(Uri url, string destination) => throw new InvalidOperationException($"The test tried to download {url}.");

    [FashionMnistFact]
    public void Debian_fashion_mnist_loads_60000_and_10000_images_with_balanced_classes()
    {
        var (train, test, source) = Datasets.Load("fashion-mnist", [Datasets.DebianRoot], MustNotDownload, null, Datasets.Catalog);

        Assert.Equal(FashionMnistFactAttribute.Folder, source);
        Assert.Equal(new Shape(60000, 28, 28, 1), train.Images.Shape);
        Assert.Equal(new Shape(10000, 28, 28, 1), test.Images.Shape);
        Assert.Equal(MnistFamily.FashionClassNames, train.ClassNames);

        float min = float.MaxValue, max = float.MinValue;
        foreach (var v in train.Images.Data)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        Assert.Equal(0f, min);
        Assert.Equal(1f, max);

        var trainHistogram = new int[10];
        foreach (var label in train.Labels) trainHistogram[label]++;
        Assert.All(trainHistogram, count => Assert.Equal(6000, count));
        var testHistogram = new int[10];
        foreach (var label in test.Labels) testHistogram[label]++;
        Assert.All(testHistogram, count => Assert.Equal(1000, count));

        // Well-known first labels: both splits open with an ankle boot (9).
        Assert.Equal(9, train.Labels[0]);
        Assert.Equal(9, test.Labels[0]);
    }

    [FashionMnistFact]
    public void Debian_files_match_the_catalog_checksums_of_the_canonical_content()
    {
        var known = Datasets.Catalog.Single(d => d.Name == "fashion-mnist");
        foreach (var file in known.Files)
            Assert.Null(Datasets.ChecksumProblem(Path.Combine(FashionMnistFactAttribute.Folder, file.Name + ".gz"), file));
    }
}
