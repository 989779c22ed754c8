using Naani.Kernels;

namespace Naani.Tests.Kernels;

/// Winograd F(2x2, 3x3) against a direct convolution computed in double: every geometry it accepts ('valid' and
/// 'same', odd and even sizes, ragged last tiles, partial row ranges), bias and activations, and its float32 error.
public sealed class WinogradTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static float[] Random(int n, ulong seed, float scale = 1f)
    {
        var rng = new Rng(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (rng.NextFloat() * 2 - 1) * scale;
        return a;
    }

    // y[oy, ox, f] = act(bias[f] + sum_{i,j,c} x[oy + i - pt, ox + j - pl, c] k[i, j, c, f]) in double.
    static double[] Direct(in ConvGeometry g, float[] x, float[] k, int filters, float[]? bias, Activation activation)
    {
        var y = new double[g.OutHeight * g.OutWidth * filters];
        for (int oy = 0; oy < g.OutHeight; oy++)
            for (int ox = 0; ox < g.OutWidth; ox++)
                for (int f = 0; f < filters; f++)
                {
                    double s = bias is null ? 0 : bias[f];
                    for (int i = 0; i < 3; i++)
                        for (int j = 0; j < 3; j++)
                        {
                            int iy = oy + i - g.PadTop, ix = ox + j - g.PadLeft;
                            if (iy < 0 || ix < 0 || iy >= g.InHeight || ix >= g.InWidth) continue;
                            for (int c = 0; c < g.Channels; c++)
                                s += (double)x[(iy * g.InWidth + ix) * g.Channels + c] * k[((i * 3 + j) * g.Channels + c) * filters + f];
                        }
                    y[(oy * g.OutWidth + ox) * filters + f] = activation switch
                    {
                        Activation.Relu => Math.Max(0, s),
                        Activation.Sigmoid => 1 / (1 + Math.Exp(-s)),
                        Activation.Tanh => Math.Tanh(s),
                        _ => s,
                    };
                }
        return y;
    }

    [Theory]
    [InlineData(8, 8, 8, 8, Padding.Same, Activation.Linear)]
    [InlineData(9, 7, 16, 24, Padding.Same, Activation.Relu)]      // odd sizes: ragged last tiles
    [InlineData(10, 11, 8, 16, Padding.Valid, Activation.Relu)]    // valid: 8 x 9 outputs
    [InlineData(5, 5, 32, 40, Padding.Valid, Activation.Sigmoid)]  // 3 x 3 outputs; an activation applied afterwards
    [InlineData(6, 40, 16, 8, Padding.Same, Activation.Tanh)]      // more tiles than one block
    [InlineData(3, 3, 8, 8, Padding.Valid, Activation.Linear)]     // a single output pixel
    public void Matches_the_direct_convolution(int h, int w, int channels, int filters, Padding padding, Activation activation)
    {
        var g = ConvGeometry.Create(h, w, channels, 3, 3, 1, 1, padding);
        Assert.True(Winograd.Supports(g, filters));
        var x = Random(g.InputSize, 1);
        var k = Random(9 * channels * filters, 2, 0.3f);
        var bias = activation == Activation.Linear ? null : Random(filters, 3);
        var u = new float[Winograd.TransformedKernelSize(channels, filters)];
        Winograd.TransformKernel(k, channels, filters, u);
        var y = new float[g.Patches * filters];
        var scratch = new float[Winograd.ScratchSize(channels, filters)];
        Winograd.ForwardRows(g, x, u, filters, y, scratch, 0, g.OutHeight, bias, activation);
        var expected = Direct(g, x, k, filters, bias, activation);
        double scale = 0.3 * Math.Sqrt(9 * channels);   // the size of a pre-activation value
        for (int i = 0; i < y.Length; i++)
            Assert.True(Math.Abs(y[i] - expected[i]) <= 2e-6 * scale + 1e-6, $"output {i}: {y[i]} vs {expected[i]}");
    }

    [Theory]
    [InlineData(8, 8, 8, 8, Padding.Same, Activation.Linear)]
    [InlineData(9, 7, 16, 24, Padding.Same, Activation.Relu)]      // ragged last tiles
    [InlineData(10, 11, 8, 16, Padding.Valid, Activation.Relu)]    // 8 x 9 outputs
    [InlineData(5, 5, 32, 40, Padding.Valid, Activation.Sigmoid)]  // one partial tile
    [InlineData(13, 40, 16, 8, Padding.Same, Activation.Tanh)]     // more tiles than one block
    [InlineData(18, 18, 64, 64, Padding.Same, Activation.Relu)]    // the size it is used at
    public void F4x4_matches_the_direct_convolution(int h, int w, int channels, int filters, Padding padding, Activation activation)
    {
        var g = ConvGeometry.Create(h, w, channels, 3, 3, 1, 1, padding);
        var x = Random(g.InputSize, 11);
        var k = Random(9 * channels * filters, 12, 0.3f);
        var bias = activation == Activation.Linear ? null : Random(filters, 13);
        var u = new float[Winograd4.TransformedKernelSize(channels, filters)];
        Winograd4.TransformKernel(k, channels, filters, u);
        var scratch = new float[Winograd4.ScratchSize(channels, filters)];
        var expected = Direct(g, x, k, filters, bias, activation);
        double scale = 0.3 * Math.Sqrt(9 * channels), worst = 0;
        // The whole image, and rows from an odd start (a fused pooling band may start anywhere).
        foreach (var (start, end) in new[] { (0, g.OutHeight), (g.OutHeight / 3, g.OutHeight) })
        {
            int row = g.OutWidth * filters;
            var y = new float[(end - start) * row];
            Winograd4.ForwardRows(g, x, u, filters, y, scratch, start, end, bias, activation);
            for (int i = 0; i < y.Length; i++)
            {
                double error = Math.Abs(y[i] - expected[start * row + i]);
                worst = Math.Max(worst, error / scale);
                Assert.True(error <= 1e-5 * scale + 1e-6, $"rows [{start}, {end}) output {i}: {y[i]} vs {expected[start * row + i]}");
            }
        }
        output.WriteLine($"F(4x4, 3x3) {h}x{w}x{channels} -> {filters}: largest error {worst:E2} of the pre-activation scale");
    }

    [Fact]
    public void Row_ranges_compute_exactly_the_rows_asked_for()
    {
        var g = ConvGeometry.Create(13, 9, 16, 3, 3, 1, 1, Padding.Same);
        const int filters = 16;
        var x = Random(g.InputSize, 4);
        var k = Random(9 * 16 * filters, 5, 0.3f);
        var u = new float[Winograd.TransformedKernelSize(16, filters)];
        Winograd.TransformKernel(k, 16, filters, u);
        var scratch = new float[Winograd.ScratchSize(16, filters)];
        var whole = new float[g.Patches * filters];
        Winograd.ForwardRows(g, x, u, filters, whole, scratch, 0, g.OutHeight, default, Activation.Linear);
        int row = g.OutWidth * filters;
        foreach (var (start, end) in new[] { (0, 2), (2, 7), (6, 13), (12, 13) })
        {
            var part = new float[(end - start) * row + 5];
            Array.Fill(part, 12345f);
            Winograd.ForwardRows(g, x, u, filters, part, scratch, start, end, default, Activation.Linear);
            Assert.Equal(whole.AsSpan(start * row, (end - start) * row).ToArray(), part.AsSpan(0, (end - start) * row).ToArray());
            Assert.All(part[^5..], v => Assert.Equal(12345f, v));   // nothing written past the rows asked for
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Winograd.ForwardRows(g, x, u, filters, whole, scratch, 1, 4, default, Activation.Linear));
    }

    [Fact]
    public void Refuses_what_it_does_not_compute()
    {
        Assert.False(Winograd.Supports(ConvGeometry.Create(8, 8, 8, 3, 3, 2, 2, Padding.Same), 8));   // stride 2
        Assert.False(Winograd.Supports(ConvGeometry.Create(8, 8, 3, 3, 3, 1, 1, Padding.Same), 8));   // 3 channels
        Assert.False(Winograd.Supports(ConvGeometry.Create(8, 8, 8, 5, 5, 1, 1, Padding.Same), 8));   // 5x5
        Assert.False(Winograd.Pays(ConvGeometry.Create(8, 8, 8, 3, 3, 1, 1, Padding.Same), 64));
        Assert.False(Winograd.Pays(ConvGeometry.Create(3, 3, 32, 3, 3, 1, 1, Padding.Same), 64));   // too small to pay
        Assert.True(Winograd.Pays(ConvGeometry.Create(74, 74, 16, 3, 3, 1, 1, Padding.Valid), 64));
        Assert.True(Winograd.Pays(ConvGeometry.Create(64, 64, 32, 3, 3, 1, 1, Padding.Same), 64));
    }
    [Theory]
    [InlineData(8, 8, 8, 8, Padding.Same)]
    [InlineData(9, 7, 16, 24, Padding.Same)]     // ragged last tiles
    [InlineData(10, 11, 8, 16, Padding.Valid)]
    [InlineData(6, 40, 16, 8, Padding.Same)]     // more tiles than one block
    [InlineData(18, 17, 32, 32, Padding.Same)]   // F(4x4): ragged last tile column
    public void Kernel_gradient_matches_the_direct_sum(int h, int w, int channels, int filters, Padding padding)
    {
        // dK[i, j, c, f] = sum_{oy, ox} x[oy + i - pt, ox + j - pl, c] dz[oy, ox, f], in double.
        var g = ConvGeometry.Create(h, w, channels, 3, 3, 1, 1, padding);
        var x = Random(g.InputSize, 6);
        var dz = Random(g.Patches * filters, 7);
        var expected = new double[9 * channels * filters];
        for (int oy = 0; oy < g.OutHeight; oy++)
            for (int ox = 0; ox < g.OutWidth; ox++)
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                    {
                        int iy = oy + i - g.PadTop, ix = ox + j - g.PadLeft;
                        if (iy < 0 || ix < 0 || iy >= g.InHeight || ix >= g.InWidth) continue;
                        for (int c = 0; c < channels; c++)
                            for (int f = 0; f < filters; f++)
                                expected[((i * 3 + j) * channels + c) * filters + f] +=
                                    (double)x[(iy * g.InWidth + ix) * channels + c] * dz[(oy * g.OutWidth + ox) * filters + f];
                    }
        double scale = Math.Sqrt(g.Patches);
        foreach (bool four in new[] { false, true })
        {
            var du = new float[four ? Winograd4.TransformedKernelSize(channels, filters) : Winograd.TransformedKernelSize(channels, filters)];
            var scratch = new float[four ? Winograd4.ScratchSize(channels, filters) : Winograd.ScratchSize(channels, filters)];
            // Scratch is reused between calls: whatever it holds (NaN here) must not reach the sum, such as the columns
            // past the filters in dM's last partial panel.
            Array.Fill(scratch, float.NaN);
            // Two row ranges accumulate into one sum, as threads' parts do.
            int split = g.OutHeight / 4 * 2;
            // The bias gradient comes with it (dBias += dz summed over the rows), onto what dBias holds.
            var dBias = Enumerable.Repeat(0.5f, filters).ToArray();
            void Accumulate(int start, int end) =>
                Winograd.AccumulateKernelGradient(g, x, dz, filters, du, scratch, start, end, four ? 4 : 2, dBias);
            if (split > 0) Accumulate(0, split);
            Accumulate(split, g.OutHeight);
            for (int f = 0; f < filters; f++)
            {
                double sum = 0;
                for (int p = 0; p < g.Patches; p++) sum += dz[p * filters + f];
                Assert.True(Math.Abs(dBias[f] - 0.5 - sum) <= 1e-5 * scale + 1e-5, $"F({(four ? 4 : 2)}) dBias {f}: {dBias[f] - 0.5} vs {sum}");
            }
            var dk = Enumerable.Repeat(0.25f, 9 * channels * filters).ToArray();   // KernelGradient adds to what is there
            if (four) Winograd4.KernelGradient(du, channels, filters, dk);
            else Winograd.KernelGradient(du, channels, filters, dk);
            double worst = 0;
            for (int i = 0; i < dk.Length; i++)
            {
                double error = Math.Abs(dk[i] - 0.25 - expected[i]);
                worst = Math.Max(worst, error / scale);
                Assert.True(error <= (four ? 1e-5 : 3e-6) * scale + 1e-5, $"F({(four ? 4 : 2)}) dK {i}: {dk[i] - 0.25} vs {expected[i]}");
            }
            output.WriteLine($"F({(four ? "4x4" : "2x2")}) kernel gradient {h}x{w}x{channels} -> {filters}: largest error {worst:E2} of sqrt(outputs)");
        }
    }
}
