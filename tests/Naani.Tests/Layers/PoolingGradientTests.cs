using Naani.Kernels;
using Naani.Layers;
using Xunit;
using Xunit.Abstractions;

namespace Naani.Tests.Layers;

public sealed class PoolingGradientTests(ITestOutputHelper output)
{
    // (height, width, channels, pool, stride, padding)
    public static TheoryData<int, int, int, int, int, Padding> Variants => new()
    {
        { 4, 4, 2, 2, 2, Padding.Valid },
        { 5, 5, 3, 2, 2, Padding.Valid },   // odd input: the last row and column are dropped
        { 5, 4, 2, 2, 1, Padding.Valid },   // overlapping windows
        { 5, 5, 2, 2, 2, Padding.Same },    // pads one row/column at the bottom/right
        { 6, 6, 3, 3, 3, Padding.Valid },
        { 7, 7, 2, 3, 2, Padding.Valid },
        { 6, 6, 2, 3, 2, Padding.Same },    // even input: pads 0 top, 1 bottom
        { 7, 6, 2, 3, 2, Padding.Same },    // odd height: 1 top, 1 bottom
        { 5, 5, 1, 3, 1, Padding.Same },    // every window overlaps its neighbours
        { 4, 5, 3, 3, 1, Padding.Valid },
        { 4, 4, 17, 2, 2, Padding.Valid },  // 16 channels at a time (SIMD) plus a scalar tail
        { 5, 5, 16, 3, 2, Padding.Same },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void MaxPooling2D_input_gradient_matches_central_differences(int height, int width, int channels, int pool, int stride, Padding padding)
    {
        var layer = new MaxPooling2D(pool, stride, padding);
        layer.Build(new Shape(height, width, channels), new Rng(1));
        // Distinct values 3h apart: no ties, and a step of h never changes which value is a window's maximum.
        var x = GradientCheck.Distinct(new Rng(17), (float)(3 * GradientCheck.Step), 2, height, width, channels);

        var report = GradientCheck.AssertLayer(layer, x);

        output.WriteLine(report.ToString());
        Assert.Empty(layer.Parameters);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void AveragePooling2D_input_gradient_matches_central_differences(int height, int width, int channels, int pool, int stride, Padding padding)
    {
        var layer = new AveragePooling2D(pool, stride, padding);
        layer.Build(new Shape(height, width, channels), new Rng(1));
        var x = GradientCheck.Uniform(new Rng(19), -1, 1, 2, height, width, channels);

        var report = GradientCheck.AssertLayer(layer, x);

        output.WriteLine(report.ToString());
    }

    [Fact]
    public void MaxPooling2D_sends_the_gradient_to_the_first_of_tied_maxima_only()
    {
        var layer = new MaxPooling2D(2);
        layer.Build(new Shape(2, 2, 1), new Rng(1));
        var x = Tensor.FromArray([3f, 7f, 7f, 1f], 1, 2, 2, 1);
        var y = new Tensor(1, 1, 1, 1);
        layer.Forward(x, y, training: true);
        var dx = new Tensor(x.Shape);

        layer.Backward(x, y, Tensor.FromArray([5f], 1, 1, 1, 1), dx);

        Assert.Equal([0f, 5f, 0f, 0f], dx.Data);
    }
}
