using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Naani.Kernels;

// y[oh,ow,o] = sum_p x[base(oh,ow) + off[p]] * k[p,o]   (NHWC, HWIO; one image)
//
// Implicit GEMM: the same product as im2col + GEMM, but the A operand is read straight from the
// image. For an output pixel whose receptive field lies inside the image, patch element
// p = (i*KW + j)*C + c sits at a fixed offset off[p] = (i*W + j)*C + c from the field's top-left
// corner, so a register-blocked micro-kernel over 8 neighbouring pixels only needs their 8 base
// pointers and the offset table: no im2col copy, no packing. Pixels whose field crosses the
// padding are gathered by im2col into a few rows and multiplied the ordinary way.
[SkipLocalsInit]
public static unsafe class ImplicitConvolution
{
    /// Whether the implicit path applies and pays: AVX-512, a real sliding window, patches of bounded
    /// size, and at least 3/4 of the output pixels in full runs of 8 inside the image (small feature
    /// maps are mostly border, where im2col + GEMM does better).
    public static bool Supports(in ConvGeometry g) =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported && !g.IsPointwise && g.PatchSize <= 8192
        && (4 * InteriorPixels(g) >= 3 * g.Patches || 4 * InteriorPixels(Padded(g)) >= 3 * g.Patches);

    /// Whether to copy each image into a zero-padded buffer first: for small maps, where most output
    /// pixels touch the padding, the copy is cheap and turns every pixel into an interior one.
    static bool PadFirst(in ConvGeometry g) =>
        (g.PadTop > 0 || g.PadLeft > 0 || PadBottom(g) > 0 || PadRight(g) > 0) && 4 * InteriorPixels(g) < 3 * g.Patches;

    static int PadBottom(in ConvGeometry g) => Math.Max(0, (g.OutHeight - 1) * g.StrideHeight + g.KernelHeight - g.InHeight - g.PadTop);
    static int PadRight(in ConvGeometry g) => Math.Max(0, (g.OutWidth - 1) * g.StrideWidth + g.KernelWidth - g.InWidth - g.PadLeft);

    /// The same convolution on the image with its padding made explicit: 'valid' on a larger input.
    static ConvGeometry Padded(in ConvGeometry g) => g with
    {
        InHeight = g.InHeight + g.PadTop + PadBottom(g),
        InWidth = g.InWidth + g.PadLeft + PadRight(g),
        PadTop = 0,
        PadLeft = 0,
    };

    /// Output pixels the micro-kernel computes straight from the image (the rest go through im2col).
    public static int InteriorPixels(in ConvGeometry g)
    {
        var (owLo, owHi) = InteriorColumns(g);
        int perRow = (owHi - owLo) / 8 * 8, rows = 0;
        for (int oh = 0; oh < g.OutHeight; oh++)
        {
            int ih0 = oh * g.StrideHeight - g.PadTop;
            if (ih0 >= 0 && ih0 + g.KernelHeight <= g.InHeight) rows++;
        }
        return rows * perRow;
    }

    // Output columns whose receptive field is inside the image horizontally: [lo, hi).
    static (int Lo, int Hi) InteriorColumns(in ConvGeometry g)
    {
        int lo = Math.Min(g.OutWidth, (g.PadLeft + g.StrideWidth - 1) / g.StrideWidth);
        int lastInside = g.InWidth - g.KernelWidth + g.PadLeft;   // ow is inside when ow * sw <= lastInside
        int hi = lastInside < 0 ? lo : Math.Max(lo, Math.Min(g.OutWidth, lastInside / g.StrideWidth + 1));
        return (lo, hi);
    }

    [ThreadStatic] static float[]? ownPacked, ownBias, borderRows, borderOut, paddedImage;

    // What the micro-kernels do on the way out: add the (panel-padded) bias, clamp at 0 when relu.
    readonly record struct Epilogue(float[] Bias, bool Relu);
    [ThreadStatic] static int[]? borderPixels;

    const int BorderBatch = 64;

    static int PanelWidth(int filters) => filters <= 16 ? 16 : 32;

    /// Values of the kernel as the micro-kernel reads it: NR-wide column panels, zero beyond the last filter.
    public static int PackedKernelSize(int patch, int filters)
    {
        int nr = PanelWidth(filters);
        return (filters + nr - 1) / nr * nr * patch;
    }

    /// packed[jp, p, j] = kernel[p, jp * NR + j] (0 past the last filter), for an HWIO kernel of patch x filters.
    public static void PackKernel(ReadOnlySpan<float> kernel, int patch, int filters, Span<float> packed)
    {
        int nr = PanelWidth(filters), panels = (filters + nr - 1) / nr;
        if (kernel.Length < patch * filters || packed.Length < PackedKernelSize(patch, filters))
            throw new ArgumentException("Implicit convolution: kernel or packed buffer too small.");
        for (int jp = 0; jp < panels; jp++)
            for (int p = 0; p < patch; p++)
                for (int j = 0; j < nr; j++)
                {
                    int o = jp * nr + j;
                    packed[(jp * patch + p) * nr + j] = o < filters ? kernel[p * filters + o] : 0;
                }
    }

    /// Forward for `images` consecutive images, y = conv(x, kernel) + bias, then max(y, 0) when relu: the
    /// bias and the ReLU are fused into the micro-kernel (the accumulators start at the bias; the clamp is
    /// applied on the way out), so the output is written once. An empty bias means none.
    /// With rowEnd >= 0, only output rows [rowStart, rowEnd) of a single image are computed (to split one image across threads).
    /// packedKernel, when given, is PackKernel's result, made once for many calls (a layer packs it once per batch).
    public static void Forward(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters, Span<float> y, int images,
        int rowStart = 0, int rowEnd = -1, ReadOnlySpan<float> packedKernel = default, ReadOnlySpan<float> bias = default, bool relu = false)
    {
        if (!bias.IsEmpty && bias.Length != filters)
            throw new ArgumentException($"Implicit convolution: the bias has {bias.Length} values for {filters} filters.");
        if (rowEnd < 0) rowEnd = g.OutHeight;
        if (images != 1 && (rowStart != 0 || rowEnd != g.OutHeight))
            throw new ArgumentException("A range of output rows can only be computed for one image at a time.");
        int patch = g.PatchSize, nr = PanelWidth(filters), panels = (filters + nr - 1) / nr;
        if (x.Length < images * g.InputSize || y.Length < images * g.Patches * filters || kernel.Length < patch * filters)
            throw new ArgumentException("Implicit convolution: buffer sizes do not match the geometry.");
        if (packedKernel.IsEmpty)
        {
            var own = ownPacked;
            if (own is null || own.Length < PackedKernelSize(patch, filters)) ownPacked = own = new float[PackedKernelSize(patch, filters)];
            PackKernel(kernel, patch, filters, own);
            packedKernel = own;
        }
        else if (packedKernel.Length < PackedKernelSize(patch, filters))
            throw new ArgumentException("Implicit convolution: the packed kernel is too small for this geometry.");
        bool padFirst = PadFirst(g);
        var run = padFirst ? Padded(g) : g;   // the geometry the micro-kernel sees
        Span<int> off = stackalloc int[patch];
        for (int i = 0, p = 0; i < g.KernelHeight; i++)
            for (int j = 0; j < g.KernelWidth; j++)
                for (int c = 0; c < g.Channels; c++, p++)
                    off[p] = (i * run.InWidth + j) * g.Channels + c;
        var padded = paddedImage;
        if (padFirst && (padded is null || padded.Length < run.InputSize)) paddedImage = padded = new float[run.InputSize];
        var rows = borderRows;
        if (rows is null || rows.Length < BorderBatch * patch) borderRows = rows = new float[BorderBatch * patch];
        var outRows = borderOut;
        if (outRows is null || outRows.Length < BorderBatch * filters) borderOut = outRows = new float[BorderBatch * filters];
        var pixels = borderPixels ??= new int[BorderBatch];
        // The bias as the micro-kernel reads it: whole panels, zero past the last filter (and everywhere without a bias).
        var paddedBias = ownBias;
        if (paddedBias is null || paddedBias.Length < panels * nr) ownBias = paddedBias = new float[panels * nr];
        paddedBias.AsSpan(0, panels * nr).Clear();
        bias.CopyTo(paddedBias);
        var epilogue = new Epilogue(paddedBias, relu);
        fixed (float* px = x) fixed (float* pkp = packedKernel) fixed (float* py = y) fixed (int* poff = off) fixed (float* ppad = padded)
            for (int n = 0; n < images; n++)
            {
                float* image = px + (long)n * g.InputSize;
                if (padFirst)
                {
                    CopyPadded(g, run, image, ppad);
                    image = ppad;
                }
                Image(run, image, pkp, poff, filters, nr, panels, py + (long)n * g.Patches * filters, rows, outRows, pixels, rowStart, rowEnd, epilogue);
            }
    }

    // The image inside a frame of zeros: rows of the padded buffer are the image's rows shifted by the padding.
    static void CopyPadded(in ConvGeometry g, in ConvGeometry padded, float* x, float* dst)
    {
        int c = g.Channels, row = g.InWidth * c, paddedRow = padded.InWidth * c;
        new Span<float>(dst, padded.InputSize).Clear();
        for (int ih = 0; ih < g.InHeight; ih++)
            new ReadOnlySpan<float>(x + (long)ih * row, row).CopyTo(new Span<float>(dst + ((long)(ih + g.PadTop) * padded.InWidth + g.PadLeft) * c, row));
    }

    static void Image(in ConvGeometry g, float* x, float* pk, int* off, int filters, int nr, int panels, float* y,
        float[] rows, float[] outRows, int[] pixels, int rowStart, int rowEnd, in Epilogue epilogue)
    {
        bool relu = epilogue.Relu;
        int patch = g.PatchSize, c = g.Channels, inW = g.InWidth, outW = g.OutWidth;
        int sh = g.StrideHeight, sw = g.StrideWidth, pt = g.PadTop, pl = g.PadLeft;
        var (owLo, owHi) = InteriorColumns(g);
        int border = 0;
        for (int oh = rowStart; oh < rowEnd; oh++)
        {
            int ih0 = oh * sh - pt;
            bool rowInside = ih0 >= 0 && ih0 + g.KernelHeight <= g.InHeight;
            int lo = rowInside ? owLo : outW, hi = rowInside ? owHi : outW;
            int full = lo + (hi - lo) / 8 * 8;
            for (int ow = 0; ow < outW; ow++)
            {
                if (ow >= lo && ow < full)
                {
                    // Eight neighbouring pixels, all inside: one micro-kernel call per NR-wide panel of filters.
                    float* b0 = x + ((long)ih0 * inW + ow * sw - pl) * c;
                    float* yo = y + ((long)oh * outW + ow) * filters;
                    fixed (float* pb = epilogue.Bias)
                        for (int jp = 0; jp < panels; jp++)
                        {
                            int width = Math.Min(nr, filters - jp * nr);
                            float* bp = pk + (long)jp * patch * nr;
                            if (nr == 32) Kernel8x32(patch, b0, sw * c, off, bp, yo + jp * nr, filters, width, pb + jp * nr, relu);
                            else Kernel8x16(patch, b0, sw * c, off, bp, yo + jp * nr, filters, width, pb + jp * nr, relu);
                        }
                    ow += 7;
                    continue;
                }
                pixels[border++] = oh * outW + ow;
                if (border == BorderBatch)
                {
                    Border(g, x, pk, filters, nr, panels, y, rows, outRows, pixels, border, epilogue);
                    border = 0;
                }
            }
        }
        if (border > 0) Border(g, x, pk, filters, nr, panels, y, rows, outRows, pixels, border, epilogue);
    }

    // Pixels whose field crosses the padding (or a ragged end of a row): im2col rows, then an ordinary GEMM.
    static void Border(in ConvGeometry g, float* x, float* pk, int filters, int nr, int panels, float* y,
        float[] rows, float[] outRows, int[] pixels, int count, in Epilogue epilogue)
    {
        int patch = g.PatchSize, c = g.Channels, kw = g.KernelWidth;
        fixed (float* pr = rows) fixed (float* po = outRows)
        {
            for (int r = 0; r < count; r++)
            {
                int oh = pixels[r] / g.OutWidth, ow = pixels[r] % g.OutWidth;
                float* dst = pr + (long)r * patch;
                for (int i = 0; i < g.KernelHeight; i++)
                {
                    int ih = oh * g.StrideHeight + i - g.PadTop;
                    for (int j = 0; j < kw; j++)
                    {
                        int iw = ow * g.StrideWidth + j - g.PadLeft;
                        float* d = dst + (i * kw + j) * c;
                        bool inside = (uint)ih < (uint)g.InHeight && (uint)iw < (uint)g.InWidth;
                        float* s = x + ((long)ih * g.InWidth + iw) * c;
                        for (int ch = 0; ch < c; ch++) d[ch] = inside ? s[ch] : 0;
                    }
                }
            }
            for (int jp = 0; jp < panels; jp++)
            {
                int width = Math.Min(nr, filters - jp * nr);
                Gemm.Multiply(false, false, count, width, patch, pr, patch, pk + (long)jp * patch * nr, nr, po + jp * nr, filters, false, false);
            }
            var bias = new ReadOnlySpan<float>(epilogue.Bias, 0, filters);
            for (int r = 0; r < count; r++)
            {
                float* src = po + (long)r * filters, dst = y + (long)pixels[r] * filters;
                for (int j = 0; j < filters; j++)
                {
                    float v = src[j] + bias[j];
                    dst[j] = epilogue.Relu && v < 0 ? 0 : v;
                }
            }
        }
    }

    // 8 pixels x 32 filters: per patch element, one offset, two loads of the kernel panel, eight broadcasts, 16 FMAs.
    // The accumulators start at the bias; ReLU clamps them on the way out; a panel narrower than 32 is stored masked.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x32(int patch, float* x0, int step, int* off, float* b, float* y, int ldy, int width, float* bias, bool relu)
    {
        var bias0 = Vector512.Load(bias);
        var bias1 = Vector512.Load(bias + 16);
        Vector512<float> c00 = bias0, c01 = bias1, c10 = bias0, c11 = bias1, c20 = bias0, c21 = bias1, c30 = bias0, c31 = bias1,
            c40 = bias0, c41 = bias1, c50 = bias0, c51 = bias1, c60 = bias0, c61 = bias1, c70 = bias0, c71 = bias1;
        float* x1 = x0 + step, x2 = x0 + 2 * step, x3 = x0 + 3 * step, x4 = x0 + 4 * step;
        float* x5 = x0 + 5 * step, x6 = x0 + 6 * step, x7 = x0 + 7 * step;
        for (int p = 0; p < patch; p++)
        {
            int o = off[p];
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var a = Vector512.Create(x0[o]); c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(x1[o]); c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(x2[o]); c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(x3[o]); c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(x4[o]); c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(x5[o]); c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(x6[o]); c60 = Vector512.FusedMultiplyAdd(a, b0, c60); c61 = Vector512.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(x7[o]); c70 = Vector512.FusedMultiplyAdd(a, b0, c70); c71 = Vector512.FusedMultiplyAdd(a, b1, c71);
            b += 32;
        }
        if (relu)
        {
            var z = Vector512<float>.Zero;
            c00 = Vector512.Max(c00, z); c01 = Vector512.Max(c01, z); c10 = Vector512.Max(c10, z); c11 = Vector512.Max(c11, z);
            c20 = Vector512.Max(c20, z); c21 = Vector512.Max(c21, z); c30 = Vector512.Max(c30, z); c31 = Vector512.Max(c31, z);
            c40 = Vector512.Max(c40, z); c41 = Vector512.Max(c41, z); c50 = Vector512.Max(c50, z); c51 = Vector512.Max(c51, z);
            c60 = Vector512.Max(c60, z); c61 = Vector512.Max(c61, z); c70 = Vector512.Max(c70, z); c71 = Vector512.Max(c71, z);
        }
        if (width == 32)
        {
            Store(y, c00, c01); Store(y + ldy, c10, c11); Store(y + 2L * ldy, c20, c21); Store(y + 3L * ldy, c30, c31);
            Store(y + 4L * ldy, c40, c41); Store(y + 5L * ldy, c50, c51); Store(y + 6L * ldy, c60, c61); Store(y + 7L * ldy, c70, c71);
            return;
        }
        var m0 = Mask(width);
        var m1 = Mask(width - 16);
        Store(y, c00, c01, m0, m1); Store(y + ldy, c10, c11, m0, m1); Store(y + 2L * ldy, c20, c21, m0, m1); Store(y + 3L * ldy, c30, c31, m0, m1);
        Store(y + 4L * ldy, c40, c41, m0, m1); Store(y + 5L * ldy, c50, c51, m0, m1); Store(y + 6L * ldy, c60, c61, m0, m1); Store(y + 7L * ldy, c70, c71, m0, m1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x16(int patch, float* x0, int step, int* off, float* b, float* y, int ldy, int width, float* bias, bool relu)
    {
        var bv = Vector512.Load(bias);
        Vector512<float> c0 = bv, c1 = bv, c2 = bv, c3 = bv, c4 = bv, c5 = bv, c6 = bv, c7 = bv;
        float* x1 = x0 + step, x2 = x0 + 2 * step, x3 = x0 + 3 * step, x4 = x0 + 4 * step;
        float* x5 = x0 + 5 * step, x6 = x0 + 6 * step, x7 = x0 + 7 * step;
        for (int p = 0; p < patch; p++)
        {
            int o = off[p];
            var b0 = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(x0[o]), b0, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(x1[o]), b0, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(x2[o]), b0, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(x3[o]), b0, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(x4[o]), b0, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(x5[o]), b0, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(x6[o]), b0, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(x7[o]), b0, c7);
            b += 16;
        }
        if (relu)
        {
            var z = Vector512<float>.Zero;
            c0 = Vector512.Max(c0, z); c1 = Vector512.Max(c1, z); c2 = Vector512.Max(c2, z); c3 = Vector512.Max(c3, z);
            c4 = Vector512.Max(c4, z); c5 = Vector512.Max(c5, z); c6 = Vector512.Max(c6, z); c7 = Vector512.Max(c7, z);
        }
        if (width == 16)
        {
            c0.Store(y); c1.Store(y + ldy); c2.Store(y + 2L * ldy); c3.Store(y + 3L * ldy);
            c4.Store(y + 4L * ldy); c5.Store(y + 5L * ldy); c6.Store(y + 6L * ldy); c7.Store(y + 7L * ldy);
            return;
        }
        var m = Mask(width);
        Avx512F.MaskStore(y, m, c0); Avx512F.MaskStore(y + ldy, m, c1); Avx512F.MaskStore(y + 2L * ldy, m, c2); Avx512F.MaskStore(y + 3L * ldy, m, c3);
        Avx512F.MaskStore(y + 4L * ldy, m, c4); Avx512F.MaskStore(y + 5L * ldy, m, c5); Avx512F.MaskStore(y + 6L * ldy, m, c6); Avx512F.MaskStore(y + 7L * ldy, m, c7);
    }

    // Lanes [0, count) set (all of them from 16 on, none at 0 or below): the store mask of a partial panel.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Mask(int count) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* y, Vector512<float> v0, Vector512<float> v1, Vector512<float> m0, Vector512<float> m1)
    {
        Avx512F.MaskStore(y, m0, v0);
        Avx512F.MaskStore(y + 16, m1, v1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* y, Vector512<float> v0, Vector512<float> v1)
    {
        v0.Store(y);
        v1.Store(y + 16);
    }
}
