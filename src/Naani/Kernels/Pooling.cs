namespace Naani.Kernels;

// Max:     y[oh,ow,c] = max over the window of x[oh*sh + i - pt, ow*sw + j - pl, c]   (NHWC, one image)
// Average: y[oh,ow,c] = mean over the in-bounds part of that window (Keras/TensorFlow exclude padding).
public static class Pooling
{
    public static void MaxForward(in ConvGeometry g, ReadOnlySpan<float> x, Span<float> y)
    {
        int c = g.Channels;
        for (int oh = 0; oh < g.OutHeight; oh++)
            for (int ow = 0; ow < g.OutWidth; ow++)
            {
                var o = y.Slice((oh * g.OutWidth + ow) * c, c);
                o.Fill(float.NegativeInfinity);
                Window(g, oh, ow, out int i0, out int i1, out int j0, out int j1);
                for (int ih = i0; ih < i1; ih++)
                    for (int iw = j0; iw < j1; iw++)
                    {
                        var xs = x.Slice((ih * g.InWidth + iw) * c, c);
                        for (int ch = 0; ch < c; ch++) o[ch] = MathF.Max(o[ch], xs[ch]);
                    }
            }
    }

    // in the forward pass y took the value of one x in the window (the first maximum in scan
    // order), so the gradient flows to that x alone: dx[argmax] += dy. Overwrites dx.
    public static void MaxBackward(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int c = g.Channels;
        dx.Clear();
        for (int oh = 0; oh < g.OutHeight; oh++)
            for (int ow = 0; ow < g.OutWidth; ow++)
            {
                int o = (oh * g.OutWidth + ow) * c;
                Window(g, oh, ow, out int i0, out int i1, out int j0, out int j1);
                for (int ch = 0; ch < c; ch++)
                {
                    float max = y[o + ch];
                    for (int ih = i0; ih < i1; ih++)
                        for (int iw = j0; iw < j1; iw++)
                        {
                            int at = (ih * g.InWidth + iw) * c + ch;
                            if (x[at] == max)
                            {
                                dx[at] += dy[o + ch];
                                goto next;
                            }
                        }
                    next:;
                }
            }
    }

    public static void AverageForward(in ConvGeometry g, ReadOnlySpan<float> x, Span<float> y)
    {
        int c = g.Channels;
        for (int oh = 0; oh < g.OutHeight; oh++)
            for (int ow = 0; ow < g.OutWidth; ow++)
            {
                var o = y.Slice((oh * g.OutWidth + ow) * c, c);
                o.Clear();
                Window(g, oh, ow, out int i0, out int i1, out int j0, out int j1);
                for (int ih = i0; ih < i1; ih++)
                    for (int iw = j0; iw < j1; iw++)
                        Activations.AddInPlace(o, x.Slice((ih * g.InWidth + iw) * c, c));
                float inv = 1f / ((i1 - i0) * (j1 - j0));
                for (int ch = 0; ch < c; ch++) o[ch] *= inv;
            }
    }

    // in the forward pass y = (1/count) sum of the window, so each x in it gets dy / count. Overwrites dx.
    public static void AverageBackward(in ConvGeometry g, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int c = g.Channels;
        dx.Clear();
        for (int oh = 0; oh < g.OutHeight; oh++)
            for (int ow = 0; ow < g.OutWidth; ow++)
            {
                var d = dy.Slice((oh * g.OutWidth + ow) * c, c);
                Window(g, oh, ow, out int i0, out int i1, out int j0, out int j1);
                float inv = 1f / ((i1 - i0) * (j1 - j0));
                for (int ih = i0; ih < i1; ih++)
                    for (int iw = j0; iw < j1; iw++)
                    {
                        var dxs = dx.Slice((ih * g.InWidth + iw) * c, c);
                        for (int ch = 0; ch < c; ch++) dxs[ch] += d[ch] * inv;
                    }
            }
    }

    /// The in-bounds rows [i0, i1) and columns [j0, j1) of the window of output (oh, ow).
    static void Window(in ConvGeometry g, int oh, int ow, out int i0, out int i1, out int j0, out int j1)
    {
        int h = oh * g.StrideHeight - g.PadTop, w = ow * g.StrideWidth - g.PadLeft;
        i0 = Math.Max(h, 0); i1 = Math.Min(h + g.KernelHeight, g.InHeight);
        j0 = Math.Max(w, 0); j1 = Math.Min(w + g.KernelWidth, g.InWidth);
    }
}
