using Naani.Kernels;
using Xunit;

namespace Naani.Tests.Kernels;

public sealed class PoolingKernelTests
{
    // (height, width, channels, pool, stride, padding); 16+ channels take the SIMD path of max pooling.
    public static TheoryData<int, int, int, int, int, Padding> Geometries => new()
    {
        { 4, 4, 1, 2, 2, Padding.Valid },
        { 5, 5, 3, 2, 2, Padding.Valid },
        { 5, 5, 3, 2, 2, Padding.Same },
        { 6, 7, 2, 3, 2, Padding.Same },
        { 7, 7, 16, 3, 2, Padding.Same },
        { 6, 6, 19, 3, 1, Padding.Valid },
        { 5, 4, 35, 2, 1, Padding.Same },
        { 3, 3, 2, 3, 3, Padding.Valid },
    };

    /// The in-bounds window of output (oh, ow), with Keras's padding computed independently.
    static IEnumerable<(int H, int W)> Window(int h, int w, int pool, int stride, Padding padding, int oh, int ow)
    {
        int Before(int input)
        {
            if (padding == Padding.Valid) return 0;
            int output = (input + stride - 1) / stride;
            return Math.Max((output - 1) * stride + pool - input, 0) / 2;
        }
        for (int i = 0; i < pool; i++)
            for (int j = 0; j < pool; j++)
            {
                int ih = oh * stride + i - Before(h), iw = ow * stride + j - Before(w);
                if (ih >= 0 && ih < h && iw >= 0 && iw < w) yield return (ih, iw);
            }
    }

    /// Small integers: many ties, so the first-maximum rule matters.
    static float[] Integers(Rng rng, int length)
    {
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = rng.NextInt(7) - 3;
        return x;
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void MaxForward_takes_the_first_maximum_of_each_window_and_MaxBackward_routes_dy_there(int h, int w, int c, int pool, int stride, Padding padding)
    {
        var g = ConvGeometry.Create(h, w, c, pool, pool, stride, stride, padding);
        var rng = new Rng(1);
        var x = Integers(rng, g.InputSize);
        var y = new float[g.Patches * c];
        var argmax = new int[y.Length];
        var dy = new float[y.Length];
        for (int i = 0; i < dy.Length; i++) dy[i] = rng.Uniform(-1, 1);
        var expectedDx = new double[x.Length];

        Pooling.MaxForward(g, x, y, argmax);

        for (int oh = 0; oh < g.OutHeight; oh++)
            for (int ow = 0; ow < g.OutWidth; ow++)
                for (int ch = 0; ch < c; ch++)
                {
                    int o = (oh * g.OutWidth + ow) * c + ch, first = -1;
                    foreach (var (ih, iw) in Window(h, w, pool, stride, padding, oh, ow))
                    {
                        int at = (ih * w + iw) * c + ch;
                        if (first < 0 || x[at] > x[first]) first = at;
                    }
                    Assert.Equal(x[first], y[o]);
                    Assert.Equal(first, argmax[o]);
                    expectedDx[first] += dy[o];
                }

        var dx = new float[x.Length];
        Array.Fill(dx, float.NaN);
        Pooling.MaxBackward(argmax, dy, dx);
        for (int i = 0; i < x.Length; i++) Assert.Equal(expectedDx[i], dx[i], 1e-5);

        var untracked = new float[y.Length];
        Pooling.MaxForward(g, x, untracked);
        Assert.Equal(y, untracked);
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void AverageForward_divides_by_the_in_bounds_count_and_AverageBackward_is_its_adjoint(int h, int w, int c, int pool, int stride, Padding padding)
    {
        var g = ConvGeometry.Create(h, w, c, pool, pool, stride, stride, padding);
        var rng = new Rng(2);
        var x = new float[g.InputSize];
        for (int i = 0; i < x.Length; i++) x[i] = rng.Uniform(-1, 1);
        var dy = new float[g.Patches * c];
        for (int i = 0; i < dy.Length; i++) dy[i] = rng.Uniform(-1, 1);
        var y = new float[dy.Length];
        var expectedDx = new double[x.Length];

        Pooling.AverageForward(g, x, y);

        for (int oh = 0; oh < g.OutHeight; oh++)
            for (int ow = 0; ow < g.OutWidth; ow++)
            {
                var window = Window(h, w, pool, stride, padding, oh, ow).ToList();
                for (int ch = 0; ch < c; ch++)
                {
                    int o = (oh * g.OutWidth + ow) * c + ch;
                    double sum = window.Sum(p => (double)x[(p.H * w + p.W) * c + ch]);
                    Assert.Equal(sum / window.Count, y[o], 1e-6);
                    foreach (var (ih, iw) in window) expectedDx[(ih * w + iw) * c + ch] += dy[o] / window.Count;
                }
            }

        var dx = new float[x.Length];
        Array.Fill(dx, float.NaN);
        Pooling.AverageBackward(g, dy, dx);
        for (int i = 0; i < x.Length; i++) Assert.Equal(expectedDx[i], dx[i], 1e-5);
    }

    [Fact]
    public void Average_pooling_with_same_padding_ignores_the_padded_zeros()
    {
        // 3x3 windows, stride 2, on a 4x4 image of ones: corner windows hold 4 or 6 real pixels, never zeros.
        var g = ConvGeometry.Create(4, 4, 1, 3, 3, 2, 2, Padding.Same);
        var x = Enumerable.Repeat(1f, 16).ToArray();
        var y = new float[g.Patches];

        Pooling.AverageForward(g, x, y);

        Assert.All(y, v => Assert.Equal(1f, v));
    }
}
