using Naani.Kernels;
using Naani.Layers;
using Xunit;

namespace Naani.Tests.Seeds;

/// The worked examples of the seed texts, as exact tests through Naani's layers.
public sealed class SeedExampleTests
{
    /// A single-channel image from rows, as a batch of one (1, H, W, 1).
    static Tensor Image(float[,] rows)
    {
        int h = rows.GetLength(0), w = rows.GetLength(1);
        var t = new Tensor(1, h, w, 1);
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) t[0, i, j, 0] = rows[i, j];
        return t;
    }

    static float[,] Rows(Tensor t)
    {
        var rows = new float[t.Shape[1], t.Shape[2]];
        for (int i = 0; i < t.Shape[1]; i++)
            for (int j = 0; j < t.Shape[2]; j++) rows[i, j] = t[0, i, j, 0];
        return rows;
    }

    static float[,] Apply(Layer layer, float[,] image)
    {
        var x = Image(image);
        layer.Build(x.Shape.WithoutBatch(), new Rng(1));
        var y = new Tensor(layer.OutputShape.WithBatch(1));
        layer.Forward(x, y, training: false);
        return Rows(y);
    }

    static Conv2D Filter(float[,] kernel, int stride = 1, Padding padding = Padding.Valid)
    {
        int kh = kernel.GetLength(0), kw = kernel.GetLength(1);
        var conv = new Conv2D(1, (kh, kw), (stride, stride), padding);
        conv.Build(new Shape(kh, kw, 1), new Rng(1));   // any input: only the weights are set here
        return conv;
    }

    static float[,] Convolve(float[,] image, float[,] kernel, int stride = 1, Padding padding = Padding.Valid)
    {
        int kh = kernel.GetLength(0), kw = kernel.GetLength(1);
        var conv = new Conv2D(1, (kh, kw), (stride, stride), padding);
        conv.Build(new Shape(image.GetLength(0), image.GetLength(1), 1), new Rng(1));
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) conv.Kernel.Value[i, j, 0, 0] = kernel[i, j];
        Assert.All(conv.Bias!.Value.Data, b => Assert.Equal(0f, b));
        return Apply(conv, image);
    }

    [Fact]
    public void MaxPooling2D_2x2_on_the_seed_4x4_matrix_keeps_each_quadrants_maximum()
    {
        float[,] a = { { 1, 3, 5, 7 }, { 4, 5, 11, 3 }, { 4, 1, 21, 6 }, { 13, 15, 1, 2 } };

        var b = Apply(new MaxPooling2D(2), a);

        Assert.Equal(new float[,] { { 5, 11 }, { 15, 21 } }, b);
    }

    [Fact]
    public void MaxPooling2D_2x2_stride_2_on_the_seed_pooling_example()
    {
        float[,] a = { { 1, 8, 2, 6 }, { 2, 6, 0, 9 }, { 3, 5, 7, 8 }, { 0, 1, 2, 0 } };

        var b = Apply(new MaxPooling2D(2, 2), a);

        Assert.Equal(new float[,] { { 8, 9 }, { 5, 8 } }, b);
    }

    [Fact]
    public void Conv2D_with_the_seed_2x2_kernel_computes_the_cross_correlation_19_25_37_43()
    {
        float[,] data = { { 0, 1, 2 }, { 3, 4, 5 }, { 6, 7, 8 } };
        float[,] kernel = { { 0, 1 }, { 2, 3 } };

        var y = Convolve(data, kernel);

        // 0*0 + 1*1 + 3*2 + 4*3 = 19, and so on.
        Assert.Equal(new float[,] { { 19, 25 }, { 37, 43 } }, y);
    }

    [Theory]
    [InlineData(5, 3, 3, 1)]       // the seed's example: floor((5 - 3) / 3 + 1) = 1, a scalar
    [InlineData(5, 3, 1, 3)]       // 5x5 input, 3x3 filter, stride 1 -> 3x3
    [InlineData(5, 3, 2, 2)]       // the same with stride 2 -> 2x2
    [InlineData(128, 3, 1, 126)]
    [InlineData(227, 11, 4, 55)]
    [InlineData(28, 5, 1, 24)]
    [InlineData(4, 4, 1, 1)]
    [InlineData(3, 5, 1, 0)]       // does not fit
    public void Valid_output_size_is_floor_of_input_minus_kernel_over_stride_plus_one(int input, int kernel, int stride, int expected)
    {
        Assert.Equal(expected, ConvGeometry.OutputSize(input, kernel, stride, Padding.Valid));
        if (expected > 0) Assert.Equal(expected, (int)Math.Floor((input - kernel) / (double)stride + 1));
    }

    [Theory]
    [InlineData(128, 3, 1, 128)]
    [InlineData(128, 3, 2, 64)]
    [InlineData(32, 4, 2, 16)]
    [InlineData(7, 3, 2, 4)]
    [InlineData(5, 3, 3, 2)]
    [InlineData(1, 5, 1, 1)]
    public void Same_output_size_is_the_ceiling_of_input_over_stride(int input, int kernel, int stride, int expected)
    {
        Assert.Equal(expected, ConvGeometry.OutputSize(input, kernel, stride, Padding.Same));
        Assert.Equal(expected, (int)Math.Ceiling(input / (double)stride));
    }

    [Fact]
    public void Conv2D_of_90_11x11_filters_stride_4_on_227x227x3_gives_55x55x90_with_shared_weights()
    {
        var conv = new Conv2D(90, 11, strides: 4);

        conv.Build(new Shape(227, 227, 3), new Rng(1));

        Assert.Equal(new Shape(55, 55, 90), conv.OutputShape);
        Assert.Equal(new Shape(11, 11, 3, 90), conv.Kernel.Shape);
        Assert.Equal(90 * 11 * 11 * 3, conv.Kernel.Size);
        Assert.Equal(90, conv.Bias!.Size);
        Assert.Equal(90 * 11 * 11 * 3 + 90, conv.ParameterCount);
        // As a matrix product: 3,025 receptive fields of 363 values each, times a 363 x 90 filter matrix.
        Assert.Equal(3025, conv.Geometry.Patches);
        Assert.Equal(363, conv.Geometry.PatchSize);
    }

    [Fact]
    public void Conv2D_same_padding_with_stride_2_pads_bottom_right()
    {
        // Keras/TensorFlow: input 4, kernel 3, stride 2 -> output 2 with total padding
        // (2 - 1) * 2 + 3 - 4 = 1, all of it after the input (PyTorch's symmetric padding would differ).
        Assert.Equal(2, ConvGeometry.OutputSize(4, 3, 2, Padding.Same));
        Assert.Equal(0, ConvGeometry.PadBefore(4, 3, 2, Padding.Same));
        var geometry = ConvGeometry.Create(4, 4, 1, 3, 3, 2, 2, Padding.Same);
        Assert.Equal((0, 0, 2, 2), (geometry.PadTop, geometry.PadLeft, geometry.OutHeight, geometry.OutWidth));

        float[,] x = { { 1, 2, 3, 4 }, { 5, 6, 7, 8 }, { 9, 10, 11, 12 }, { 13, 14, 15, 16 } };
        var y = Convolve(x, new float[,] { { 1, 1, 1 }, { 1, 1, 1 }, { 1, 1, 1 } }, stride: 2, padding: Padding.Same);

        // Window (0,0) covers rows/cols 0..2; window (1,1) covers rows/cols 2..3 and one padded row/col.
        Assert.Equal(1 + 2 + 3 + 5 + 6 + 7 + 9 + 10 + 11, y[0, 0]);
        Assert.Equal(3 + 4 + 7 + 8 + 11 + 12, y[0, 1]);
        Assert.Equal(9 + 10 + 11 + 13 + 14 + 15, y[1, 0]);
        Assert.Equal(11 + 12 + 15 + 16, y[1, 1]);
    }

    [Fact]
    public void Same_padding_with_an_odd_total_puts_the_extra_pixel_after()
    {
        // kernel 4, stride 1: total 3 -> 1 before, 2 after;  kernel 4, stride 3 on 7: total 3 -> 1 before.
        Assert.Equal(1, ConvGeometry.PadBefore(6, 4, 1, Padding.Same));
        Assert.Equal(1, ConvGeometry.PadBefore(7, 4, 3, Padding.Same));
        Assert.Equal(1, ConvGeometry.PadBefore(5, 3, 1, Padding.Same));   // odd kernel, stride 1: symmetric
        Assert.Equal(0, ConvGeometry.PadBefore(6, 3, 2, Padding.Same));
        Assert.Equal(0, ConvGeometry.PadBefore(10, 5, 1, Padding.Valid));
    }

    // The seed's 8x8 image: a vertical band of 30s in columns 3-4 of rows 1-6.
    static readonly float[,] Band =
    {
        { 0, 0, 0, 0, 0, 0, 0, 0 },
        { 0, 0, 0, 30, 30, 0, 0, 0 },
        { 0, 0, 0, 30, 30, 0, 0, 0 },
        { 0, 0, 0, 30, 30, 0, 0, 0 },
        { 0, 0, 0, 30, 30, 0, 0, 0 },
        { 0, 0, 0, 30, 30, 0, 0, 0 },
        { 0, 0, 0, 30, 30, 0, 0, 0 },
        { 0, 0, 0, 0, 0, 0, 0, 0 },
    };

    [Fact]
    public void Horizontal_edge_filter_finds_the_top_and_bottom_of_the_band()
    {
        float[,] horizontal = { { 1, 1, 1 }, { 0, 0, 0 }, { -1, -1, -1 } };

        var y = Convolve(Band, horizontal);

        // Top edge: the window's first row is blank and its last row crosses the band (1 or 2 of 30).
        float[] top = [0, -30, -60, -60, -30, 0];
        float[] bottom = [0, 30, 60, 60, 30, 0];
        Assert.Equal(6, y.GetLength(0));
        for (int j = 0; j < 6; j++)
        {
            Assert.Equal(top[j], y[0, j]);
            Assert.Equal(bottom[j], y[5, j]);
            for (int i = 1; i < 5; i++) Assert.Equal(0f, y[i, j]);   // inside the band nothing changes vertically
        }
    }

    [Fact]
    public void Vertical_edge_filter_finds_the_left_and_right_sides_of_the_band()
    {
        float[,] vertical = { { 1, 0, -1 }, { 1, 0, -1 }, { 1, 0, -1 } };

        var y = Convolve(Band, vertical);

        // Rows 1-4 of the output see three rows of band: 0 - 30 three times at the left edge.
        Assert.Equal(-90f, y[2, 1]);
        Assert.Equal(-90f, y[2, 2]);
        Assert.Equal(90f, y[2, 3]);
        Assert.Equal(90f, y[2, 4]);
        Assert.Equal(0f, y[2, 0]);
        Assert.Equal(0f, y[2, 5]);
        // The first and last output rows see two rows of band.
        Assert.Equal(-60f, y[0, 1]);
        Assert.Equal(60f, y[5, 4]);
    }

    [Fact]
    public void Luminosity_filter_responds_at_the_bands_corners_and_not_on_flat_ground()
    {
        float[,] laplacian = { { -1, -1, -1 }, { -1, 8, -1 }, { -1, -1, -1 } };

        var y = Convolve(Band, laplacian);

        // Window at rows 0-2, columns 2-4: centre 30 * 8 minus its band neighbours (30 + 30 + 30).
        Assert.Equal(8 * 30 - 3 * 30, y[0, 2]);
        // Window at rows 1-3, columns 0-2: all zeros.
        Assert.Equal(0f, y[1, 0]);
        // Window at rows 2-4, columns 3-5: centre (3, 4) = 30 with neighbours 30 in column 3 (three) and (2,4),(4,4).
        Assert.Equal(8 * 30 - 5 * 30, y[2, 3]);
    }

    [Fact]
    public void Blur_filter_averages_the_neighbourhood()
    {
        float[,] blur = { { -1f / 9, -1f / 9, -1f / 9 }, { -1f / 9, -1f / 9, -1f / 9 }, { -1f / 9, -1f / 9, -1f / 9 } };

        var y = Convolve(Band, blur);

        // Window at rows 2-4, columns 2-4 holds six 30s: -180 / 9 = -20 (the seed's kernel carries a minus sign).
        Assert.Equal(-20f, y[2, 2], 1e-4);
        Assert.Equal(0f, y[2, 0], 1e-4);
    }

    [Fact]
    public void Conv2D_parameters_are_kernel_height_times_width_times_channels_times_filters_plus_biases()
    {
        var conv = Filter(new float[,] { { 0 } });
        Assert.Equal(2, conv.ParameterCount);

        var c = new Conv2D(32, 5);
        c.Build(new Shape(28, 28, 1), new Rng(1));
        Assert.Equal(5 * 5 * 1 * 32 + 32, c.ParameterCount);

        var noBias = new Conv2D(8, (3, 3), useBias: false);
        noBias.Build(new Shape(10, 10, 3), new Rng(1));
        Assert.Equal(3 * 3 * 3 * 8, noBias.ParameterCount);
    }
}
