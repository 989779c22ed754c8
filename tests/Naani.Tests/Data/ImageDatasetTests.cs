using Naani.Data;
using Xunit;

namespace Naani.Tests.Data;

public sealed class ImageDatasetTests
{
    // Five 2x2x1 images; image n is filled with n / 10.
    static ImageDataset Five(int[]? labels = null)
    {
        var images = new Tensor(5, 2, 2, 1);
        for (int n = 0; n < 5; n++)
            images.Sample(n).Fill(n / 10f);
        return new ImageDataset(images, labels ?? [0, 2, 1, 2, 0], ["zero", "one", "two"]);
    }

    [Fact]
    public void Counts_and_shapes_describe_the_data()
    {
        var data = Five();

        Assert.Equal(5, data.Count);
        Assert.Equal(3, data.NumClasses);
        Assert.Equal(new Shape(2, 2, 1), data.ImageShape);
    }

    [Fact]
    public void OneHotLabels_has_a_single_one_in_each_row_at_the_label()
    {
        var y = Five().OneHotLabels();

        Assert.Equal(new Shape(5, 3), y.Shape);
        Assert.Equal(
            [1, 0, 0,
             0, 0, 1,
             0, 1, 0,
             0, 0, 1,
             1, 0, 0], y.Data);
    }

    [Fact]
    public void SparseLabels_holds_class_indices_as_floats()
    {
        var y = Five().SparseLabels();

        Assert.Equal(new Shape(5), y.Shape);
        Assert.Equal([0f, 2f, 1f, 2f, 0f], y.Data);
    }

    [Fact]
    public void Subset_copies_the_requested_range()
    {
        var subset = Five().Subset(1, 3);

        Assert.Equal(3, subset.Count);
        Assert.Equal([2, 1, 2], subset.Labels);
        Assert.Equal(0.1f, subset.Images[0, 0, 0, 0]);
        Assert.Equal(0.3f, subset.Images[2, 1, 1, 0]);
        Assert.Equal(["zero", "one", "two"], subset.ClassNames);
    }

    [Theory]
    [InlineData(-1, 2)]
    [InlineData(4, 2)]
    [InlineData(0, 0)]
    public void Subset_outside_the_data_is_refused(int start, int count)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Five().Subset(start, count));
    }

    [Fact]
    public void Where_with_relabel_renumbers_kept_classes_and_filters_names()
    {
        var kept = Five().Where(label => label != 0, relabel: true);

        Assert.Equal(["one", "two"], kept.ClassNames);
        Assert.Equal([1, 0, 1], kept.Labels); // samples 1, 2, 3 had labels 2, 1, 2
        Assert.Equal(0.1f, kept.Images[0, 0, 0, 0]);
        Assert.Equal(0.2f, kept.Images[1, 0, 0, 0]);
        Assert.Equal(0.3f, kept.Images[2, 0, 0, 0]);
    }

    [Fact]
    public void Where_without_relabel_keeps_labels_and_names()
    {
        var kept = Five().Where(label => label == 0, relabel: false);

        Assert.Equal(["zero", "one", "two"], kept.ClassNames);
        Assert.Equal([0, 0], kept.Labels);
        Assert.Equal(0.4f, kept.Images[1, 0, 0, 0]);
    }

    [Fact]
    public void Where_that_keeps_nothing_is_refused()
    {
        Assert.Throws<ArgumentException>(() => Five().Where(_ => false, relabel: true));
        Assert.Throws<ArgumentException>(() => Five([0, 0, 0, 0, 0]).Where(label => label == 1, relabel: true));
    }

    [Fact]
    public void Label_outside_the_classes_is_refused_with_its_index()
    {
        var error = Assert.Throws<ArgumentException>(() => Five([0, 1, 3, 0, 0]));

        Assert.Contains("Label 2 is 3", error.Message);
        Assert.Contains("[0, 3)", error.Message);
    }

    [Fact]
    public void Image_and_label_counts_must_match()
    {
        var error = Assert.Throws<ArgumentException>(() => new ImageDataset(new Tensor(4, 2, 2, 1), [0, 1, 0], ["a", "b"]));

        Assert.Contains("4 images but 3 labels", error.Message);
    }

    [Fact]
    public void Images_must_be_rank_4()
    {
        Assert.Throws<ArgumentException>(() => new ImageDataset(new Tensor(3, 4), [0, 1, 0], ["a", "b"]));
    }
}
