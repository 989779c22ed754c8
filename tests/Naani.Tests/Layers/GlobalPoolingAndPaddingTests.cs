using Naani.Layers;
using Xunit;
using Xunit.Abstractions;

namespace Naani.Tests.Layers;

public sealed class GlobalPoolingAndPaddingTests(ITestOutputHelper output)
{
    public static TheoryData<int, int, int> Shapes => new()
    {
        { 3, 3, 2 },
        { 1, 1, 5 },    // one pixel: pooling is the identity
        { 4, 5, 17 },   // SIMD plus a scalar tail
        { 2, 7, 16 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GlobalAveragePooling2D_gradient_matches_central_differences(int h, int w, int c)
    {
        var layer = new GlobalAveragePooling2D();
        layer.Build(new Shape(h, w, c), new Rng(1));
        Assert.Equal(new Shape(c), layer.OutputShape);

        output.WriteLine(GradientCheck.AssertLayer(layer, GradientCheck.Uniform(new Rng(2), -1, 1, 3, h, w, c)).ToString());
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GlobalMaxPooling2D_gradient_matches_central_differences(int h, int w, int c)
    {
        var layer = new GlobalMaxPooling2D(keepDims: true);
        layer.Build(new Shape(h, w, c), new Rng(1));
        Assert.Equal(new Shape(1, 1, c), layer.OutputShape);
        // Distinct values 3h apart: a step of h never changes which pixel holds a channel's maximum.
        var x = GradientCheck.Distinct(new Rng(3), (float)(3 * GradientCheck.Step), 3, h, w, c);

        output.WriteLine(GradientCheck.AssertLayer(layer, x).ToString());
    }

    [Fact]
    public void Global_pooling_averages_and_maximizes_each_channel_of_each_image()
    {
        // one image 2x2 with 2 channels: channel 0 = 1, 5, -3, 2 and channel 1 = -1, -7, -2, -4
        var x = Tensor.FromArray([1f, -1f, 5f, -7f, -3f, -2f, 2f, -4f], 1, 2, 2, 2);
        var average = new GlobalAveragePooling2D();
        var max = new GlobalMaxPooling2D();
        average.Build(new Shape(2, 2, 2), new Rng(1));
        max.Build(new Shape(2, 2, 2), new Rng(1));
        var ya = new Tensor(1, 2);
        var ym = new Tensor(1, 2);

        average.Forward(x, ya, training: false);
        max.Forward(x, ym, training: true);
        var dx = new Tensor(x.Shape);
        max.Backward(x, ym, Tensor.FromArray([10f, 20f], 1, 2), dx);

        Assert.Equal([1.25f, -3.5f], ya.Data);
        Assert.Equal([5f, -1f], ym.Data);
        Assert.Equal([0f, 20f, 10f, 0f, 0f, 0f, 0f, 0f], dx.Data);
    }

    // (top, bottom, left, right)
    public static TheoryData<int, int, int, int> Paddings => new()
    {
        { 1, 1, 1, 1 },
        { 3, 3, 3, 3 },   // ResNet's stem
        { 0, 2, 1, 0 },
        { 2, 0, 0, 0 },
    };

    [Theory]
    [MemberData(nameof(Paddings))]
    public void ZeroPadding2D_places_the_image_and_its_gradient_matches_central_differences(int top, int bottom, int left, int right)
    {
        var layer = new ZeroPadding2D(((top, bottom), (left, right)));
        layer.Build(new Shape(3, 4, 5), new Rng(1));
        Assert.Equal(new Shape(3 + top + bottom, 4 + left + right, 5), layer.OutputShape);
        var x = GradientCheck.Uniform(new Rng(4), 1, 2, 2, 3, 4, 5);
        var y = new Tensor(layer.OutputShape.WithBatch(2));
        y.Fill(float.NaN);

        layer.Forward(x, y, training: false);

        for (int n = 0; n < 2; n++)
            for (int h = 0; h < y.Shape[1]; h++)
                for (int w = 0; w < y.Shape[2]; w++)
                    for (int c = 0; c < 5; c++)
                    {
                        bool inside = h >= top && h < top + 3 && w >= left && w < left + 4;
                        Assert.Equal(inside ? x[n, h - top, w - left, c] : 0f, y[n, h, w, c]);
                    }
        GradientCheck.AssertLayer(layer, x);
    }

    [Fact]
    public void ZeroPadding2D_takes_one_number_or_a_symmetric_pair_as_Keras()
    {
        var one = new ZeroPadding2D(2);
        var pair = new ZeroPadding2D((1, 3));

        Assert.Equal((2, 2, 2, 2), (one.Top, one.Bottom, one.Left, one.Right));
        Assert.Equal((1, 1, 3, 3), (pair.Top, pair.Bottom, pair.Left, pair.Right));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ZeroPadding2D(-1));
    }
}
