using Naani.Kernels;

namespace Naani.Tests.Kernels;

/// The vectorized 2x2 stride-2 max pooling gives the naive maxima and, for the backward pass,
/// the index of the first maximum in scan order, ties included.
public sealed class MaxPoolFastPathTests
{
    [Theory]
    [InlineData(24, 24, 32)]
    [InlineData(7, 9, 16)]
    [InlineData(4, 4, 48)]
    public void Two_by_two_pooling_matches_the_naive_maxima_and_first_argmax(int h, int w, int c)
    {
        var g = ConvGeometry.Create(h, w, c, 2, 2, 2, 2, Padding.Valid);
        var rng = new Rng(3);
        var x = new float[g.InputSize];
        // Few distinct values, so that windows often hold ties.
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextInt(4);
        var y = new float[g.Patches * c];
        var argmax = new int[y.Length];
        Pooling.MaxForward(g, x, y, argmax);
        for (int oh = 0; oh < g.OutHeight; oh++)
            for (int ow = 0; ow < g.OutWidth; ow++)
                for (int ch = 0; ch < c; ch++)
                {
                    float best = float.NegativeInfinity;
                    int at = -1;
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++)
                        {
                            int index = ((oh * 2 + i) * w + ow * 2 + j) * c + ch;
                            if (x[index] > best) { best = x[index]; at = index; }
                        }
                    int o = (oh * g.OutWidth + ow) * c + ch;
                    Assert.Equal(best, y[o]);
                    Assert.Equal(at, argmax[o]);
                }
    }
}

public sealed class MaxPoolFastBackwardTests
{
    [Theory]
    [InlineData(24, 24, 32)]
    [InlineData(7, 9, 16)]
    [InlineData(6, 8, 8)]
    [InlineData(5, 6, 3)]
    public void Tiled_backward_equals_the_scatter_of_dy_to_the_argmax(int h, int w, int c)
    {
        var g = ConvGeometry.Create(h, w, c, 2, 2, 2, 2, Padding.Valid);
        var rng = new Rng(4);
        var x = new float[g.InputSize];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextInt(3);
        var y = new float[g.Patches * c];
        var argmax = new int[y.Length];
        Pooling.MaxForward(g, x, y, argmax);
        var dy = new float[y.Length];
        for (int i = 0; i < dy.Length; i++) dy[i] = rng.NextFloat() - 0.5f;
        var expected = new float[x.Length];
        Pooling.MaxBackward(argmax, dy, expected);
        var actual = new float[x.Length];
        actual.AsSpan().Fill(float.NaN);
        Pooling.MaxBackward(g, argmax, dy, actual);
        Assert.Equal(expected, actual);

        // Through a ReLU before the pooling (the pooled outputs given): as zeroing dy where the output is not
        // positive first, on the tiled path, the scatter, and 8-channel vectors (3 channels: the scatter only).
        for (int i = 0; i < y.Length; i++) y[i] -= 1;   // outputs of -1, 0 and 1
        var masked = (float[])dy.Clone();
        Activations.ReluBackward(y, masked);
        Assert.Contains(masked, v => v == 0);
        Pooling.MaxBackward(argmax, masked, expected);
        actual.AsSpan().Fill(float.NaN);
        Pooling.MaxBackward(g, argmax, dy, actual, y);
        Assert.Equal(expected, actual);
        var scattered = new float[x.Length];
        Pooling.MaxBackward(argmax, dy, scattered, y);
        Assert.Equal(expected, scattered);

        // Fewer pooled outputs than gradient values: a clear error from either overload, not an index past the end.
        var tooFew = y.AsSpan(0, y.Length - 1).ToArray();
        var tiledError = Assert.Throws<ArgumentException>(() => Pooling.MaxBackward(g, argmax, dy, actual, tooFew));
        var scatterError = Assert.Throws<ArgumentException>(() => Pooling.MaxBackward(argmax, dy, scattered, tooFew));
        Assert.Contains("pooled outputs", tiledError.Message);
        Assert.Contains("pooled outputs", scatterError.Message);
    }
}
