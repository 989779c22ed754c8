using Naani.Data;
using Xunit;

namespace Naani.Tests.Data;

public sealed class MnistFamilyTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void Raw_folder_loads_as_N_28_28_1_with_pixels_divided_by_255()
    {
        IdxFiles.WriteMnistFolder(temp.Path, train: 12, test: 5);

        var (train, test) = MnistFamily.LoadFolder(temp.Path);

        Assert.Equal(new Shape(12, 28, 28, 1), train.Images.Shape);
        Assert.Equal(new Shape(5, 28, 28, 1), test.Images.Shape);
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1], train.Labels);
        Assert.Equal(MnistFamily.DigitClassNames, train.ClassNames);
        // Pixel i of image n is (n * 7 + i) % 256: image 3, row 1, col 2 is i = 30, value 51.
        Assert.Equal(51f / 255f, train.Images[3, 1, 2, 0]);
        Assert.Equal(255f / 255f, train.Images[0, 9, 3, 0]); // i = 255
        Assert.All(train.Images.Data, v => Assert.InRange(v, 0f, 1f));
    }

    [Fact]
    public void Gzipped_files_and_rows_by_cols_from_the_header_are_used()
    {
        IdxFiles.WriteMnistFolder(temp.Path, train: 4, test: 3, rows: 5, cols: 7, gzip: true);

        var (train, test) = MnistFamily.LoadFolder(temp.Path, MnistFamily.FashionClassNames);

        Assert.Equal(new Shape(4, 5, 7, 1), train.Images.Shape);
        Assert.Equal(new Shape(3, 5, 7, 1), test.Images.Shape);
        Assert.Equal("Ankle boot", train.ClassNames[9]);
    }

    [Fact]
    public void Dotted_file_names_of_some_mirrors_are_accepted()
    {
        IdxFiles.WriteMnistFolder(temp.Path, train: 2, test: 2);
        foreach (var name in MnistFamily.FileNames)
        {
            var dotted = name.Replace("-idx", ".idx", StringComparison.Ordinal);
            File.Move(temp.Sub(name), temp.Sub(dotted + (name.StartsWith("train", StringComparison.Ordinal) ? ".gz" : "")));
        }

        var (train, test) = MnistFamily.LoadFolder(temp.Path);

        Assert.Equal(2, train.Count);
        Assert.Equal(2, test.Count);
    }

    [Fact]
    public void Missing_file_lists_the_expected_names_and_the_folder()
    {
        IdxFiles.WriteMnistFolder(temp.Path, train: 2, test: 2);
        File.Delete(temp.Sub("t10k-labels-idx1-ubyte"));

        var error = Assert.Throws<FileNotFoundException>(() => MnistFamily.LoadFolder(temp.Path));

        Assert.Contains(temp.Path, error.Message);
        Assert.Contains("lacks t10k-labels-idx1-ubyte", error.Message);
        foreach (var name in MnistFamily.FileNames)
            Assert.Contains(name, error.Message);
        Assert.Contains(".gz", error.Message);
    }

    [Fact]
    public void Missing_folder_is_reported()
    {
        var error = Assert.Throws<DirectoryNotFoundException>(() => MnistFamily.LoadFolder(temp.Sub("absent")));

        Assert.Contains(temp.Sub("absent"), error.Message);
    }

    [Fact]
    public void Image_and_label_count_mismatch_names_both_files()
    {
        IdxFiles.WriteMnistFolder(temp.Path, train: 6, test: 2);
        IdxFiles.Write(temp.Path, "train-labels-idx1-ubyte", IdxFiles.Ubyte([5], [0, 1, 2, 3, 4]));

        var error = Assert.Throws<InvalidDataException>(() => MnistFamily.LoadFolder(temp.Path));

        Assert.Contains(temp.Sub("train-images-idx3-ubyte") + " holds 6 images", error.Message);
        Assert.Contains(temp.Sub("train-labels-idx1-ubyte") + " holds 5 labels", error.Message);
    }

    [Fact]
    public void Label_outside_the_class_names_is_reported_with_the_file()
    {
        IdxFiles.WriteMnistFolder(temp.Path, train: 3, test: 2);
        IdxFiles.Write(temp.Path, "train-labels-idx1-ubyte", IdxFiles.Ubyte([3], [0, 12, 1]));

        var error = Assert.Throws<InvalidDataException>(() => MnistFamily.LoadFolder(temp.Path));

        Assert.Contains(temp.Sub("train-labels-idx1-ubyte"), error.Message);
        Assert.Contains("label 1 is 12", error.Message);
    }

    [Fact]
    public void Labels_file_with_two_dimensions_is_refused()
    {
        IdxFiles.WriteMnistFolder(temp.Path, train: 2, test: 2);
        IdxFiles.Write(temp.Path, "train-labels-idx1-ubyte", IdxFiles.Ubyte([2, 1], [0, 1]));

        var error = Assert.Throws<InvalidDataException>(() => MnistFamily.LoadFolder(temp.Path));

        Assert.Contains("has 2", error.Message);
    }
}
