using Naani.Kernels;
using Naani.Tests.Layers;
using Xunit;

namespace Naani.Tests.Kernels;

public sealed class ConvolutionKernelTests
{
    // (height, width, channels, kernel h, kernel w, stride h, stride w, padding)
    public static IEnumerable<object[]> Geometries =>
    [
        [5, 5, 1, 3, 3, 1, 1, Padding.Valid],
        [5, 5, 3, 3, 3, 1, 1, Padding.Same],
        [6, 6, 8, 3, 3, 2, 2, Padding.Same],    // runs of 3 * 8 = 24 values: the bulk-copy path
        [7, 6, 2, 4, 4, 2, 2, Padding.Same],
        [7, 7, 1, 4, 4, 3, 3, Padding.Same],
        [6, 7, 3, 2, 3, 2, 1, Padding.Valid],
        [4, 4, 5, 1, 1, 1, 1, Padding.Valid],   // pointwise
        [5, 4, 2, 1, 1, 2, 2, Padding.Same],
        [3, 3, 16, 5, 5, 1, 1, Padding.Same],   // kernel larger than the image
        [9, 5, 1, 5, 2, 3, 2, Padding.Valid],
    ];

    static ConvGeometry Geometry(int h, int w, int c, int kh, int kw, int sh, int sw, Padding padding) =>
        ConvGeometry.Create(h, w, c, kh, kw, sh, sw, padding);

    /// Keras's padding, computed here independently of ConvGeometry: out = ceil(in / s), total = max((out - 1) s + k - in, 0), before = total / 2.
    static (int Out, int Before) Axis(int input, int kernel, int stride, Padding padding)
    {
        if (padding == Padding.Valid) return ((input - kernel) / stride + 1, 0);
        int output = (input + stride - 1) / stride;
        return (output, Math.Max((output - 1) * stride + kernel - input, 0) / 2);
    }

    /// x[ih, iw, ch] or 0 outside the image.
    static float At(ReadOnlySpan<float> x, int h, int w, int c, int ih, int iw, int ch) =>
        ih < 0 || ih >= h || iw < 0 || iw >= w ? 0 : x[(ih * w + iw) * c + ch];

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Geometry_follows_Keras_output_sizes_and_padding(int h, int w, int c, int kh, int kw, int sh, int sw, Padding padding)
    {
        var g = Geometry(h, w, c, kh, kw, sh, sw, padding);
        var (oh, pt) = Axis(h, kh, sh, padding);
        var (ow, pl) = Axis(w, kw, sw, padding);

        Assert.Equal((oh, ow, pt, pl), (g.OutHeight, g.OutWidth, g.PadTop, g.PadLeft));
        Assert.Equal(oh * ow, g.Patches);
        Assert.Equal(kh * kw * c, g.PatchSize);
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Im2Col_gathers_every_receptive_field_in_HWC_order(int h, int w, int c, int kh, int kw, int sh, int sw, Padding padding)
    {
        var g = Geometry(h, w, c, kh, kw, sh, sw, padding);
        var x = GradientCheck.Uniform(new Rng(1), -1, 1, h * w * c).Data;
        var cols = new float[g.Patches * g.PatchSize];
        Array.Fill(cols, float.NaN);

        Convolution.Im2Col(g, x, cols);

        for (int oh = 0; oh < g.OutHeight; oh++)
            for (int ow = 0; ow < g.OutWidth; ow++)
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                        for (int ch = 0; ch < c; ch++)
                        {
                            float expected = At(x, h, w, c, oh * sh + i - g.PadTop, ow * sw + j - g.PadLeft, ch);
                            Assert.Equal(expected, cols[(oh * g.OutWidth + ow) * g.PatchSize + (i * kw + j) * c + ch]);
                        }
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Col2Im_is_the_adjoint_of_Im2Col(int h, int w, int c, int kh, int kw, int sh, int sw, Padding padding)
    {
        // <im2col(x), cols> = <x, col2im(cols)> for all x and cols: col2im sums each patch value back
        // to the pixel it came from, and drops the padding.
        var g = Geometry(h, w, c, kh, kw, sh, sw, padding);
        var rng = new Rng(2);
        var x = GradientCheck.Uniform(rng, -1, 1, g.InputSize).Data;
        var dcols = GradientCheck.Uniform(rng, -1, 1, g.Patches * g.PatchSize).Data;
        var cols = new float[dcols.Length];
        var dx = new float[x.Length];

        Convolution.Im2Col(g, x, cols);
        Convolution.Col2Im(g, dcols, dx);

        double left = 0, right = 0, scale = 0;
        for (int i = 0; i < cols.Length; i++) { left += (double)cols[i] * dcols[i]; scale += Math.Abs((double)cols[i] * dcols[i]); }
        for (int i = 0; i < x.Length; i++) right += (double)x[i] * dx[i];
        Assert.True(Math.Abs(left - right) <= 1e-6 * scale, $"<im2col(x), c> = {left}, <x, col2im(c)> = {right}");
    }

    [Fact]
    public void Col2Im_adds_into_dx()
    {
        var g = Geometry(3, 3, 1, 2, 2, 1, 1, Padding.Valid);
        var dcols = new float[g.Patches * g.PatchSize];
        Array.Fill(dcols, 1f);
        var dx = new float[9];
        Array.Fill(dx, 10f);

        Convolution.Col2Im(g, dcols, dx);

        // Each pixel receives one 1 per window that covers it: corners 1, edges 2, centre 4.
        Assert.Equal([11f, 12, 11, 12, 14, 12, 11, 12, 11], dx);
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Forward_and_Backward_match_a_direct_convolution(int h, int w, int c, int kh, int kw, int sh, int sw, Padding padding)
    {
        const int images = 3, filters = 5;
        var g = Geometry(h, w, c, kh, kw, sh, sw, padding);
        var rng = new Rng(3);
        var x = GradientCheck.Uniform(rng, -1, 1, images * g.InputSize).Data;
        var k = GradientCheck.Uniform(rng, -1, 1, g.PatchSize * filters).Data;
        var dy = GradientCheck.Uniform(rng, -1, 1, images * g.Patches * filters).Data;
        int outSize = g.Patches * filters;

        // Direct: y[n,oh,ow,o] = sum_{i,j,ch} x[n, oh*sh+i-pt, ow*sw+j-pl, ch] k[i,j,ch,o]; its transposes for dK and dx.
        var y = new double[images * outSize];
        var dk = new double[k.Length];
        var dx = new double[x.Length];
        for (int n = 0; n < images; n++)
            for (int oh = 0; oh < g.OutHeight; oh++)
                for (int ow = 0; ow < g.OutWidth; ow++)
                    for (int o = 0; o < filters; o++)
                    {
                        int yi = n * outSize + (oh * g.OutWidth + ow) * filters + o;
                        for (int i = 0; i < kh; i++)
                            for (int j = 0; j < kw; j++)
                                for (int ch = 0; ch < c; ch++)
                                {
                                    int ih = oh * sh + i - g.PadTop, iw = ow * sw + j - g.PadLeft;
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                                    int xi = n * g.InputSize + (ih * w + iw) * c + ch, ki = ((i * kw + j) * c + ch) * filters + o;
                                    y[yi] += (double)x[xi] * k[ki];
                                    dk[ki] += (double)x[xi] * dy[yi];
                                    dx[xi] += (double)k[ki] * dy[yi];
                                }
                    }

        var yActual = new float[images * outSize];
        var cols = new float[images * g.Patches * g.PatchSize];
        Convolution.Forward(g, x, k, filters, yActual, cols, images);
        var dkActual = new float[k.Length];
        Array.Fill(dkActual, 0.5f);   // Backward adds into dK
        var dxActual = new float[x.Length];
        Array.Fill(dxActual, float.NaN);   // and overwrites dx
        Convolution.Backward(g, x, k, filters, dy, dkActual, dxActual, cols, images);

        AssertClose(y, yActual, 0);
        AssertClose(dk, dkActual, 0.5);
        AssertClose(dx, dxActual, 0);
    }

    static void AssertClose(double[] expected, float[] actual, double offset)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - offset - expected[i]) <= 1e-5 * (1 + Math.Abs(expected[i])),
                $"[{i}]: {actual[i] - offset} vs {expected[i]}");
    }

    [Theory]
    [InlineData(40, 38, 3, 16, 3, 1, Padding.Same)]    // blocks of rows: 65536 / (38 * 27) = 63 rows, one block
    [InlineData(150, 150, 3, 32, 3, 1, Padding.Valid)] // several blocks per image
    [InlineData(28, 28, 1, 32, 5, 2, Padding.Same)]
    // Nine values per kernel row (KernelGradientRows, straight from the image): strided with padding on both sides,
    // 48 filters, a 9-wide kernel over one channel (four padded columns each side), a stride past the kernel.
    [InlineData(33, 31, 3, 16, 3, 2, Padding.Same)]
    [InlineData(17, 20, 3, 48, 3, 1, Padding.Same)]
    [InlineData(12, 14, 1, 16, 9, 1, Padding.Same)]
    [InlineData(13, 14, 3, 32, 3, 4, Padding.Valid)]
    // Other widths of kernel row, and filters short of a whole vector (masked): small-32's first layer (4x4 over RGB, 10
    // filters), 20 filters, 7x7 over RGB (21 values: two passes), 5x5 over 9 channels (45: three passes with AVX-512,
    // past AVX2's 33), and past the limit (5x5 over 10 channels: im2col and the GEMM).
    [InlineData(32, 32, 3, 10, 4, 2, Padding.Same)]
    [InlineData(19, 23, 3, 20, 5, 1, Padding.Same)]
    [InlineData(30, 29, 3, 24, 7, 2, Padding.Same)]
    [InlineData(11, 12, 9, 8, 5, 1, Padding.Same)]
    [InlineData(11, 12, 10, 8, 5, 1, Padding.Valid)]
    public void Kernel_gradient_only_equals_the_separate_passes(int h, int w, int c, int filters, int k, int s, Padding padding)
    {
        var g = ConvGeometry.Create(h, w, c, k, k, s, s, padding);
        Assert.Equal(k * c <= (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? 45 : 33) && System.Runtime.Intrinsics.X86.Avx2.IsSupported, Convolution.DirectKernelGradient(g));
        var rng = new Rng(21);
        int images = 2;
        var x = new float[images * g.InputSize];
        var y = new float[images * g.Patches * filters];
        var dy = new float[y.Length];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextFloat() - 0.5f;
        for (int i = 0; i < y.Length; i++) y[i] = Math.Max(0, rng.NextFloat() - 0.5f);   // a ReLU output: about half zeros
        for (int i = 0; i < dy.Length; i++) dy[i] = rng.NextFloat() - 0.5f;
        var kernel = new float[g.PatchSize * filters];

        var dz = (float[])dy.Clone();
        Activations.Backward(y, dz, filters, Activation.Relu);
        var expectedBias = new float[filters];
        Activations.SumRows(dz, filters, expectedBias, accumulate: false);
        var expectedKernel = new float[kernel.Length];
        var cols = new float[images * g.Patches * g.PatchSize];
        Convolution.Backward(g, x, kernel, filters, dz, expectedKernel, default, cols, images);

        // Scratch for one image (blocks of rows, or one image per block) and for all (small images share a block).
        foreach (int scratchImages in new[] { 1, images })
        {
            var dKernel = new float[kernel.Length];
            var dBias = new float[filters];
            var actualDy = (float[])dy.Clone();
            Convolution.KernelGradientOnly(g, x, y, Activation.Relu, filters, actualDy, dKernel, dBias, new float[scratchImages * g.Patches * g.PatchSize], images);

            Assert.Equal(dz, actualDy);   // dy became dz in place
            for (int i = 0; i < dKernel.Length; i++)
                Assert.True(Math.Abs(expectedKernel[i] - dKernel[i]) <= 1e-3f * (1 + Math.Abs(expectedKernel[i])), $"dK[{i}]: {dKernel[i]} vs {expectedKernel[i]}");
            for (int i = 0; i < filters; i++)
                Assert.True(Math.Abs(expectedBias[i] - dBias[i]) <= 1e-3f * (1 + Math.Abs(expectedBias[i])), $"dBias[{i}]: {dBias[i]} vs {expectedBias[i]}");
        }
        Assert.Throws<ArgumentException>(() => Convolution.KernelGradientOnly(g, x, y, Activation.Relu, filters, dy, new float[kernel.Length], default, new float[7], images));
    }
}
