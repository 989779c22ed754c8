using Naani.Kernels;

namespace Naani.Tests.Kernels;

/// The implicit-GEMM forward computes exactly what im2col + GEMM computes, with padding (the image in a
/// zero frame), runs of 8 pixels (6 without AVX-512: CI runs these tests both ways) that wrap across rows or end partial, strides, patches long enough to
/// be split into chunks; and for a range or band of rows.
public sealed class ImplicitConvolutionTests
{
    [Theory]
    [InlineData(28, 28, 1, 32, 5, 5, 1, 1, Padding.Valid)]
    [InlineData(40, 37, 3, 10, 3, 3, 1, 1, Padding.Same)]
    [InlineData(41, 40, 3, 20, 4, 4, 2, 2, Padding.Same)]
    [InlineData(33, 50, 17, 40, 3, 2, 1, 2, Padding.Same)]
    [InlineData(30, 30, 8, 64, 3, 3, 1, 1, Padding.Valid)]
    [InlineData(24, 60, 2, 16, 7, 5, 2, 1, Padding.Same)]
    [InlineData(64, 64, 3, 33, 11, 11, 4, 4, Padding.Valid)]
    [InlineData(32, 32, 3, 10, 4, 4, 2, 2, Padding.Same)]     // small-32's layers: padded copy first
    [InlineData(16, 16, 10, 20, 3, 3, 2, 2, Padding.Same)]
    [InlineData(9, 13, 4, 24, 3, 3, 1, 1, Padding.Same)]
    [InlineData(7, 9, 300, 40, 3, 3, 1, 1, Padding.Same)]      // a 2700-value patch: three chunks; 63 pixels
    [InlineData(5, 5, 129, 8, 3, 3, 1, 1, Padding.Valid)]      // 9 pixels: one run and a partial one
    public void Implicit_forward_equals_im2col_and_gemm(int h, int w, int c, int filters, int kh, int kw, int sh, int sw, Padding padding)
    {
        var g = ConvGeometry.Create(h, w, c, kh, kw, sh, sw, padding);
        var rng = new Rng(11);
        int images = 2;
        var x = new float[images * g.InputSize];
        var k = new float[g.PatchSize * filters];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextFloat() - 0.5f;
        for (int i = 0; i < k.Length; i++) k[i] = rng.NextFloat() - 0.5f;
        var expected = new float[images * g.Patches * filters];
        var cols = new float[images * g.Patches * g.PatchSize];
        for (int n = 0; n < images; n++)
            Convolution.Im2Col(g, x.AsSpan(n * g.InputSize, g.InputSize), cols.AsSpan(n * g.Patches * g.PatchSize));
        Gemm.Multiply(false, false, images * g.Patches, filters, g.PatchSize, cols, g.PatchSize, k, filters, expected, filters, parallel: false);

        var actual = new float[expected.Length];
        actual.AsSpan().Fill(float.NaN);
        Assert.True(ImplicitConvolution.Supports(g));   // AVX-512 or AVX2 with FMA
        ImplicitConvolution.Forward(g, x, k, filters, actual, images);   // the kernel read in place where its panels are whole
        var packed = new float[ImplicitConvolution.PackedKernelSize(g.PatchSize, filters)];
        ImplicitConvolution.PackKernel(k, g.PatchSize, filters, packed);
        var fromPacked = new float[expected.Length];
        ImplicitConvolution.Forward(g, x, k, filters, fromPacked, images, packedKernel: packed);

        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4f * (1 + Math.Abs(expected[i])), $"value {i}: {actual[i]} vs {expected[i]}");
            Assert.True(Math.Abs(expected[i] - fromPacked[i]) <= 1e-4f * (1 + Math.Abs(expected[i])), $"packed, value {i}: {fromPacked[i]} vs {expected[i]}");
        }
    }

    [Theory]
    [InlineData(32, 32, 3, 10, 4, 4, 2, 2, Padding.Same, true)]    // a 10-wide panel: masked stores
    [InlineData(16, 16, 10, 20, 3, 3, 2, 2, Padding.Same, true)]   // 20 filters: a partial second half of the 32-wide panel
    [InlineData(40, 37, 3, 40, 3, 3, 1, 1, Padding.Same, false)]   // 32 + 8: a full panel and a partial one, with padding
    [InlineData(6, 7, 250, 20, 3, 3, 1, 1, Padding.Same, true)]    // three chunks of the patch: masked loads of partial sums, ReLU after the last
    [InlineData(28, 28, 1, 32, 5, 5, 1, 1, Padding.Valid, true)]
    [InlineData(12, 12, 2, 7, 3, 3, 1, 1, Padding.Same, true)]
    public void Fused_bias_and_relu_equal_the_separate_passes(int h, int w, int c, int filters, int kh, int kw, int sh, int sw, Padding padding, bool relu)
    {
        var g = ConvGeometry.Create(h, w, c, kh, kw, sh, sw, padding);
        Assert.True(ImplicitConvolution.Supports(g));
        var rng = new Rng(5);
        int images = 2;
        var x = new float[images * g.InputSize];
        var k = new float[g.PatchSize * filters];
        var bias = new float[filters];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextFloat() - 0.5f;
        for (int i = 0; i < k.Length; i++) k[i] = rng.NextFloat() - 0.5f;
        for (int i = 0; i < bias.Length; i++) bias[i] = rng.NextFloat() - 0.5f;
        var expected = new float[images * g.Patches * filters];
        ImplicitConvolution.Forward(g, x, k, filters, expected, images);
        for (int i = 0; i < expected.Length; i++)
        {
            float v = expected[i] + bias[i % filters];
            expected[i] = relu ? Math.Max(v, 0) : v;
        }
        // One more value past the output: a partial panel's masked stores must not write beyond it.
        var actual = new float[expected.Length + 1];
        actual.AsSpan().Fill(float.NaN);
        ImplicitConvolution.Forward(g, x, k, filters, actual, images, bias: bias, relu: relu);

        Assert.True(relu ? expected.Any(v => v == 0) : expected.Any(v => v < 0));
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * (1 + Math.Abs(expected[i])), $"value {i}: {actual[i]} vs {expected[i]}");
        Assert.True(float.IsNaN(actual[^1]));
    }

    [Fact]
    public void The_image_is_copied_into_a_frame_only_for_padding()
    {
        Assert.False(ImplicitConvolution.CopiesImage(ConvGeometry.Create(28, 28, 1, 5, 5, 1, 1, Padding.Valid)));
        Assert.False(ImplicitConvolution.CopiesImage(ConvGeometry.Create(150, 150, 3, 3, 3, 1, 1, Padding.Valid)));  // runs of 8 wrap across rows
        Assert.True(ImplicitConvolution.CopiesImage(ConvGeometry.Create(32, 32, 3, 3, 3, 1, 1, Padding.Same)));
        Assert.True(ImplicitConvolution.CopiesImage(ConvGeometry.Create(16, 16, 10, 3, 3, 2, 2, Padding.Same)));
        Assert.False(ImplicitConvolution.Supports(ConvGeometry.Create(8, 8, 4, 1, 1, 1, 1, Padding.Valid)));     // 1x1: a plain GEMM
    }

    [Theory]
    [InlineData(40, 37, 3, 10, 3, 3, 1, 1, Padding.Same)]
    [InlineData(41, 40, 3, 40, 4, 4, 2, 2, Padding.Same)]
    [InlineData(28, 28, 1, 32, 5, 5, 1, 1, Padding.Valid)]
    public void Row_ranges_and_bands_equal_the_whole_image(int h, int w, int c, int filters, int kh, int kw, int sh, int sw, Padding padding)
    {
        var g = ConvGeometry.Create(h, w, c, kh, kw, sh, sw, padding);
        Assert.True(ImplicitConvolution.Supports(g));
        var rng = new Rng(8);
        var x = new float[g.InputSize];
        var k = new float[g.PatchSize * filters];
        var bias = new float[filters];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextFloat() - 0.5f;
        for (int i = 0; i < k.Length; i++) k[i] = rng.NextFloat() - 0.5f;
        for (int i = 0; i < bias.Length; i++) bias[i] = rng.NextFloat() - 0.5f;
        var whole = new float[g.Patches * filters];
        ImplicitConvolution.Forward(g, x, k, filters, whole, 1, bias: bias, relu: true);
        int row = g.OutWidth * filters;
        var pieces = new float[whole.Length];
        pieces.AsSpan().Fill(float.NaN);
        for (int r0 = 0; r0 < g.OutHeight; r0 += 3)
        {
            int r1 = Math.Min(g.OutHeight, r0 + 3);
            if (r0 % 2 == 0)
                ImplicitConvolution.Forward(g, x, k, filters, pieces, 1, r0, r1, bias: bias, relu: true);
            else
            {
                var band = new float[(r1 - r0) * row + 1];
                band[^1] = float.NaN;
                ImplicitConvolution.Forward(g, x, k, filters, band, 1, r0, r1, bias: bias, relu: true, yIsBand: true);
                Assert.True(float.IsNaN(band[^1]), "a band was written past its rows");
                band.AsSpan(0, (r1 - r0) * row).CopyTo(pieces.AsSpan(r0 * row));
            }
        }
        Assert.Equal(whole, pieces);
    }
}
