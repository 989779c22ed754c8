using System.Numerics;

namespace Naani.Kernels;

// Average: y[c] = (1/P) sum_p x[p, c];   Max: y[c] = max_p x[p, c]   (one NHWC image as (P = H*W, C))
public static class GlobalPooling
{
    public static void AverageForward(ReadOnlySpan<float> x, int channels, Span<float> y)
    {
        y = y[..channels];
        y.Clear();
        int pixels = x.Length / channels;
        for (int p = 0; p < pixels; p++) Activations.AddInPlace(y, x.Slice(p * channels, channels));
        float inv = 1f / pixels;
        for (int c = 0; c < channels; c++) y[c] *= inv;
    }

    // in the forward pass y[c] = (1/P) sum_p x[p, c], so dx[p, c] = dy[c] / P. Overwrites dx.
    public static void AverageBackward(ReadOnlySpan<float> dy, int channels, Span<float> dx)
    {
        int pixels = dx.Length / channels, w = Vector<float>.Count;
        float inv = 1f / pixels;
        for (int p = 0; p < pixels; p++)
        {
            var row = dx.Slice(p * channels, channels);
            int c = 0;
            for (; c <= channels - w; c += w) (new Vector<float>(dy[c..]) * inv).CopyTo(row[c..]);
            for (; c < channels; c++) row[c] = dy[c] * inv;
        }
    }

    /// Max over the pixels of each channel. When argmax is not empty it receives, per channel, the pixel the
    /// maximum came from: the first one in scan order.
    public static void MaxForward(ReadOnlySpan<float> x, int channels, Span<float> y, Span<int> argmax = default)
    {
        int pixels = x.Length / channels, w = Vector<float>.Count, c = 0;
        bool track = !argmax.IsEmpty;
        for (; c <= channels - w; c += w)
        {
            var max = new Vector<float>(x[c..]);
            var arg = Vector<int>.Zero;
            for (int p = 1; p < pixels; p++)
            {
                var v = new Vector<float>(x[(p * channels + c)..]);
                var greater = Vector.GreaterThan(v, max);
                max = Vector.ConditionalSelect(greater, v, max);
                if (track) arg = Vector.ConditionalSelect(greater, new Vector<int>(p), arg);
            }
            max.CopyTo(y[c..]);
            if (track) arg.CopyTo(argmax[c..]);
        }
        for (; c < channels; c++)
        {
            float max = x[c];
            int arg = 0;
            for (int p = 1; p < pixels; p++)
                if (x[p * channels + c] > max)
                {
                    max = x[p * channels + c];
                    arg = p;
                }
            y[c] = max;
            if (track) argmax[c] = arg;
        }
    }

    // in the forward pass y[c] = x[argmax[c], c], so the gradient goes to that pixel alone. Overwrites dx.
    public static void MaxBackward(ReadOnlySpan<int> argmax, ReadOnlySpan<float> dy, int channels, Span<float> dx)
    {
        dx.Clear();
        for (int c = 0; c < channels; c++) dx[argmax[c] * channels + c] = dy[c];
    }
}
