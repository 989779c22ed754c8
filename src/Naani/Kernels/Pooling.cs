using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Naani.Kernels;

// Max:     y[oh,ow,c] = max over the window of x[oh*sh + i - pt, ow*sw + j - pl, c]   (NHWC, one image)
// Average: y[oh,ow,c] = mean over the in-bounds part of that window (Keras/TensorFlow exclude padding).
public static class Pooling
{
    /// Max pooling of one image. When argmax is not empty, it receives for every output value the
    /// index (within the image) of the input it came from: the first maximum in scan order.
    public static void MaxForward(in ConvGeometry g, ReadOnlySpan<float> x, Span<float> y, Span<int> argmax = default)
    {
        if (Tiles2x2(g) && x.Length >= g.InputSize && y.Length >= g.Patches * g.Channels && (argmax.IsEmpty || argmax.Length >= y.Length))
        {
            if (Vector512.IsHardwareAccelerated && g.Channels % 16 == 0) Max2x2(g, x, y, argmax);
            else Max2x2Narrow(g, x, y, argmax);
            return;
        }
        int c = g.Channels;
        bool track = !argmax.IsEmpty;
        for (int oh = 0; oh < g.OutHeight; oh++)
            for (int ow = 0; ow < g.OutWidth; ow++)
            {
                int o = (oh * g.OutWidth + ow) * c;
                Window(g, oh, ow, out int i0, out int i1, out int j0, out int j1);
                int ch = 0;
                if (Vector512.IsHardwareAccelerated)
                    for (; ch <= c - 16; ch += 16)
                    {
                        var max = Vector512.Create(float.NegativeInfinity);
                        var arg = Vector512<int>.Zero;
                        var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                        for (int ih = i0; ih < i1; ih++)
                            for (int iw = j0; iw < j1; iw++)
                            {
                                int at = (ih * g.InWidth + iw) * c + ch;
                                var v = Vector512.Create(x.Slice(at, 16));
                                var greater = Vector512.GreaterThan(v, max);
                                max = Vector512.Max(max, v);
                                if (track) arg = Vector512.ConditionalSelect(greater.AsInt32(), lane + Vector512.Create(at), arg);
                            }
                        max.CopyTo(y.Slice(o + ch, 16));
                        if (track) arg.CopyTo(argmax.Slice(o + ch, 16));
                    }
                if (Vector256.IsHardwareAccelerated)
                    for (; ch <= c - 8; ch += 8)
                    {
                        var max = Vector256.Create(float.NegativeInfinity);
                        var arg = Vector256<int>.Zero;
                        var lane = Vector256<int>.Indices;
                        for (int ih = i0; ih < i1; ih++)
                            for (int iw = j0; iw < j1; iw++)
                            {
                                int at = (ih * g.InWidth + iw) * c + ch;
                                var v = Vector256.Create(x.Slice(at, 8));
                                var greater = Vector256.GreaterThan(v, max);
                                max = Vector256.Max(max, v);
                                if (track) arg = Vector256.ConditionalSelect(greater.AsInt32(), lane + Vector256.Create(at), arg);
                            }
                        max.CopyTo(y.Slice(o + ch, 8));
                        if (track) arg.CopyTo(argmax.Slice(o + ch, 8));
                    }
                for (; ch < c; ch++)
                {
                    float max = float.NegativeInfinity;
                    int arg = 0;
                    for (int ih = i0; ih < i1; ih++)
                        for (int iw = j0; iw < j1; iw++)
                        {
                            int at = (ih * g.InWidth + iw) * c + ch;
                            if (x[at] > max)
                            {
                                max = x[at];
                                arg = at;
                            }
                        }
                    y[o + ch] = max;
                    if (track) argmax[o + ch] = arg;
                }
            }
    }

    // The common 2x2 stride-2 window without padding, 16 channels at a time: four loads, three maxima.
    static unsafe void Max2x2(in ConvGeometry g, ReadOnlySpan<float> x, Span<float> y, Span<int> argmax)
    {
        int c = g.Channels, inW = g.InWidth, outH = g.OutHeight, outW = g.OutWidth, rowStride = inW * c;
        bool track = !argmax.IsEmpty;
        fixed (float* px = x) fixed (float* py = y) fixed (int* pa = argmax)
        {
            for (int oh = 0; oh < outH; oh++)
                for (int ow = 0; ow < outW; ow++)
                {
                    int at = (oh * 2 * inW + ow * 2) * c, o = (oh * outW + ow) * c;
                    for (int ch = 0; ch < c; ch += 16)
                    {
                        int a0 = at + ch, a1 = a0 + c, a2 = a0 + rowStride, a3 = a2 + c;
                        var v0 = Vector512.Load(px + a0);
                        var v1 = Vector512.Load(px + a1);
                        var v2 = Vector512.Load(px + a2);
                        var v3 = Vector512.Load(px + a3);
                        var max = Vector512.Max(Vector512.Max(v0, v1), Vector512.Max(v2, v3));
                        max.Store(py + o + ch);
                        if (track) FirstMaximum(v0, v1, v2, v3, max, a0, a1, a2, a3).Store(pa + o + ch);
                    }
                }
        }
    }

    /// Where a 2x2 window's maximum came from, 16 channels at a time: the first of its values in scan order (v0, v1, v2, v3:
    /// the top row, then the bottom one) equal to max, as the general loop picks; i0..i3 are the places of the four
    /// values' channel 0. Shared with the implicit convolution's pooling micro-kernels, so both record the same argmax.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<int> FirstMaximum(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3, Vector512<float> max,
        int i0, int i1, int i2, int i3)
    {
        var lane = Vector512<int>.Indices;
        var arg = Vector512.ConditionalSelect(Vector512.Equals(v2, max).AsInt32(), lane + Vector512.Create(i2), lane + Vector512.Create(i3));
        arg = Vector512.ConditionalSelect(Vector512.Equals(v1, max).AsInt32(), lane + Vector512.Create(i1), arg);
        return Vector512.ConditionalSelect(Vector512.Equals(v0, max).AsInt32(), lane + Vector512.Create(i0), arg);
    }

    /// The 2x2 stride-2 window without padding, which the vectorized paths take (channels a multiple of 8).
    static bool Tiles2x2(in ConvGeometry g) =>
        Vector256.IsHardwareAccelerated && g.Channels % 8 == 0 && g.PadTop == 0 && g.PadLeft == 0
        && g.KernelHeight == 2 && g.KernelWidth == 2 && g.StrideHeight == 2 && g.StrideWidth == 2;

    // Max2x2 8 channels at a time, where AVX-512 is absent or the channels are not a multiple of 16.
    static unsafe void Max2x2Narrow(in ConvGeometry g, ReadOnlySpan<float> x, Span<float> y, Span<int> argmax)
    {
        int c = g.Channels, inW = g.InWidth, outH = g.OutHeight, outW = g.OutWidth, rowStride = inW * c;
        bool track = !argmax.IsEmpty;
        var lane = Vector256<int>.Indices;
        fixed (float* px = x) fixed (float* py = y) fixed (int* pa = argmax)
        {
            for (int oh = 0; oh < outH; oh++)
                for (int ow = 0; ow < outW; ow++)
                {
                    int at = (oh * 2 * inW + ow * 2) * c, o = (oh * outW + ow) * c;
                    for (int ch = 0; ch < c; ch += 8)
                    {
                        int a0 = at + ch, a1 = a0 + c, a2 = a0 + rowStride, a3 = a2 + c;
                        var v0 = Vector256.Load(px + a0);
                        var v1 = Vector256.Load(px + a1);
                        var v2 = Vector256.Load(px + a2);
                        var v3 = Vector256.Load(px + a3);
                        var max = Vector256.Max(Vector256.Max(v0, v1), Vector256.Max(v2, v3));
                        max.Store(py + o + ch);
                        if (!track) continue;
                        var arg = Vector256.ConditionalSelect(Vector256.Equals(v2, max).AsInt32(), lane + Vector256.Create(a2), lane + Vector256.Create(a3));
                        arg = Vector256.ConditionalSelect(Vector256.Equals(v1, max).AsInt32(), lane + Vector256.Create(a1), arg);
                        arg = Vector256.ConditionalSelect(Vector256.Equals(v0, max).AsInt32(), lane + Vector256.Create(a0), arg);
                        arg.Store(pa + o + ch);
                    }
                }
        }
    }

    // in the forward pass y[o] = x[argmax[o]], so the gradient flows to that input alone:
    // dx[argmax[o]] += dy[o]. Overwrites dx.
    /// With outputs (the pooled values), the gradient passes only where the output is positive: the derivative of a
    /// ReLU before the pooling, at the windows' maxima.
    public static void MaxBackward(ReadOnlySpan<int> argmax, ReadOnlySpan<float> dy, Span<float> dx, ReadOnlySpan<float> outputs = default)
    {
        bool masked = CheckOutputs(outputs, dy);
        dx.Clear();
        for (int o = 0; o < dy.Length; o++)
            if (!masked || outputs[o] > 0) dx[argmax[o]] += dy[o];
    }

    // Whether MaxBackward was given the pooled outputs (a ReLU's derivative to apply), one per gradient value.
    static bool CheckOutputs(ReadOnlySpan<float> outputs, ReadOnlySpan<float> dy)
    {
        if (outputs.IsEmpty) return false;
        if (outputs.Length < dy.Length)
            throw new ArgumentException($"MaxBackward: {outputs.Length} pooled outputs for {dy.Length} gradient values.");
        return true;
    }

    /// MaxBackward for the 2x2 stride-2 window without padding: the windows tile the input, so every
    /// input value is written once (dy where it was the maximum, else 0) instead of clearing dx first.
    /// With outputs, as the overload above: a ReLU's derivative applied in the same pass.
    public static unsafe void MaxBackward(in ConvGeometry g, ReadOnlySpan<int> argmax, ReadOnlySpan<float> dy, Span<float> dx, ReadOnlySpan<float> outputs = default)
    {
        bool masked = CheckOutputs(outputs, dy);
        bool tiled = Tiles2x2(g) && dx.Length >= g.InputSize && dy.Length >= g.Patches * g.Channels && argmax.Length >= dy.Length;
        if (!tiled)
        {
            MaxBackward(argmax, dy, dx, outputs);
            return;
        }
        int c = g.Channels, inW = g.InWidth, outH = g.OutHeight, outW = g.OutWidth, rowStride = inW * c;
        // An odd last row or column belongs to no window: its gradient is 0.
        if (g.InHeight > 2 * outH) dx.Slice(2 * outH * rowStride, rowStride).Clear();
        if (inW > 2 * outW)
            for (int ih = 0; ih < 2 * outH; ih++) dx.Slice(ih * rowStride + 2 * outW * c, c).Clear();
        bool wide = Vector512.IsHardwareAccelerated && c % 16 == 0;
        var lane = Vector512<int>.Indices;
        fixed (float* pdx = dx) fixed (float* pdy = dy) fixed (int* pa = argmax) fixed (float* py = outputs)
        {
            for (int oh = 0; oh < outH; oh++)
                for (int ow = 0; ow < outW; ow++)
                {
                    int at = (oh * 2 * inW + ow * 2) * c, o = (oh * outW + ow) * c;
                    if (!wide)
                    {
                        for (int ch = 0; ch < c; ch += 8)
                        {
                            int a0 = at + ch, a1 = a0 + c, a2 = a0 + rowStride, a3 = a2 + c;
                            var d = Vector256.Load(pdy + o + ch);
                            if (masked) d = Vector256.ConditionalSelect(Vector256.GreaterThan(Vector256.Load(py + o + ch), Vector256<float>.Zero), d, Vector256<float>.Zero);
                            var arg = Vector256.Load(pa + o + ch);
                            var lane8 = Vector256<int>.Indices;
                            Vector256.ConditionalSelect(Vector256.Equals(arg, lane8 + Vector256.Create(a0)).AsSingle(), d, Vector256<float>.Zero).Store(pdx + a0);
                            Vector256.ConditionalSelect(Vector256.Equals(arg, lane8 + Vector256.Create(a1)).AsSingle(), d, Vector256<float>.Zero).Store(pdx + a1);
                            Vector256.ConditionalSelect(Vector256.Equals(arg, lane8 + Vector256.Create(a2)).AsSingle(), d, Vector256<float>.Zero).Store(pdx + a2);
                            Vector256.ConditionalSelect(Vector256.Equals(arg, lane8 + Vector256.Create(a3)).AsSingle(), d, Vector256<float>.Zero).Store(pdx + a3);
                        }
                        continue;
                    }
                    for (int ch = 0; ch < c; ch += 16)
                    {
                        int a0 = at + ch, a1 = a0 + c, a2 = a0 + rowStride, a3 = a2 + c;
                        var d = Vector512.Load(pdy + o + ch);
                        if (masked) d = Vector512.ConditionalSelect(Vector512.GreaterThan(Vector512.Load(py + o + ch), Vector512<float>.Zero), d, Vector512<float>.Zero);
                        var arg = Vector512.Load(pa + o + ch);
                        Vector512.ConditionalSelect(Vector512.Equals(arg, lane + Vector512.Create(a0)).AsSingle(), d, Vector512<float>.Zero).Store(pdx + a0);
                        Vector512.ConditionalSelect(Vector512.Equals(arg, lane + Vector512.Create(a1)).AsSingle(), d, Vector512<float>.Zero).Store(pdx + a1);
                        Vector512.ConditionalSelect(Vector512.Equals(arg, lane + Vector512.Create(a2)).AsSingle(), d, Vector512<float>.Zero).Store(pdx + a2);
                        Vector512.ConditionalSelect(Vector512.Equals(arg, lane + Vector512.Create(a3)).AsSingle(), d, Vector512<float>.Zero).Store(pdx + a3);
                    }
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
