using Naani.Kernels;
using Naani.Layers;

namespace Naani.Tests.Kernels;

/// The counter-based dropout mask: the vector path gives the same bits as SplitMix64 written out,
/// any range can be made on its own, the kept fraction and its spread are those of a fair coin with
/// p = 1 - rate, and the layer's mask does not depend on the thread count.
[Collection(ThreadingCollection.Name)]
public sealed class DropoutMaskTests
{
    static ulong SplitMix(ulong state)
    {
        ulong z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    [Fact]
    public void The_mask_is_SplitMix64_from_the_key_and_any_range_is_the_same_alone()
    {
        const ulong key = 0x1234_5678_9ABC_DEF0UL;
        const int n = 1001;
        uint threshold = DropoutMask.Threshold(0.3);
        var x = Enumerable.Range(0, n).Select(i => i * 0.01f - 3f).ToArray();
        var mask = new float[n];
        var y = new float[n];
        DropoutMask.Apply(key, threshold, 2f, x, mask, y, 0, n);
        for (int i = 0; i < n; i++)
        {
            ulong h = SplitMix(key + (ulong)(i / 2 + 1) * 0x9E3779B97F4A7C15UL);
            uint u = i % 2 == 0 ? (uint)h : (uint)(h >> 32);
            Assert.Equal(u >= threshold ? 2f : 0f, mask[i]);
            Assert.Equal(x[i] * mask[i], y[i]);
        }
        var pieceMask = new float[n];
        var pieceY = new float[n];
        foreach (var (start, end) in new[] { (0, 34), (34, 500), (500, 502), (502, n) })
            DropoutMask.Apply(key, threshold, 2f, x, pieceMask, pieceY, start, end);
        Assert.Equal(mask, pieceMask);
        Assert.Throws<ArgumentException>(() => DropoutMask.Apply(key, threshold, 2f, x, mask, y, 3, 10));
    }

    [Theory]
    [InlineData(0.2)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    public void The_kept_fraction_is_one_minus_rate_within_five_standard_deviations(double rate)
    {
        const int n = 200_000;
        var x = new float[n];
        var mask = new float[n];
        DropoutMask.Apply(42, DropoutMask.Threshold(rate), 1f, x, mask, new float[n], 0, n);
        double kept = mask.Count(v => v != 0) / (double)n, sigma = Math.Sqrt(rate * (1 - rate) / n);
        Assert.InRange(kept, 1 - rate - 5 * sigma, 1 - rate + 5 * sigma);
        // Neighbours (the two halves of one SplitMix number, and consecutive numbers) are independent.
        int both = 0;
        for (int i = 0; i + 1 < n; i += 2) if (mask[i] != 0 && mask[i + 1] != 0) both++;
        double pairs = n / 2, p = (1 - rate) * (1 - rate), pairSigma = Math.Sqrt(p * (1 - p) / pairs);
        Assert.InRange(both / pairs, p - 5 * pairSigma, p + 5 * pairSigma);
    }

    [Fact]
    public void The_layer_makes_the_same_mask_on_one_thread_and_on_two()
    {
        Tensor Run(int threads)
        {
            var layer = new Dropout(0.5);
            layer.Build(new Shape(64, 64, 8), new Rng(7));
            var x = new Tensor(3, 64, 64, 8);
            x.Fill(1f);
            var y = new Tensor(x.Shape);
            ThreadingCollection.WithThreads(threads, () => layer.Forward(x, y, training: true));
            return y;
        }
        Assert.Equal(Run(1).Data, Run(2).Data);
    }
}
