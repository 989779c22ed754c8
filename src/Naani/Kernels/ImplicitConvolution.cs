using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Naani.Kernels;

// y[oh,ow,o] = sum_p x[base(oh,ow) + off[p]] * k[p,o]   (NHWC, HWIO; one image)
//
// Implicit GEMM: the same product as im2col + GEMM, but the A operand is read straight from the
// image. Patch element p = (i*KW + j)*C + c of an output pixel sits at a fixed offset
// off[p] = (i*W + j)*C + c from its receptive field's top-left corner, so a register-blocked
// micro-kernel over 8 neighbouring pixels of a row only needs their 8 base pointers and the offset
// table: no im2col copy, no packing.
//
// Every output pixel goes through the micro-kernel. Where the convolution pads (Keras 'same'), or a
// row of outputs is not a whole number of runs of 8, the rows of the image that are needed are first
// copied into a frame of zeros wide enough for the last run (a copy of C values per input pixel
// against KH*KW*C*filters multiply-adds per output pixel); the last run of a row then computes a few
// pixels too many and stores only the real ones. Otherwise the image is read in place.
[SkipLocalsInit]
public static unsafe class ImplicitConvolution
{
    /// Whether the implicit path applies: AVX-512, a real sliding window (1x1 stride-1 kernels are a plain
    /// GEMM on the image), and patches of bounded size (the offset table lives on the stack).
    public static bool Supports(in ConvGeometry g) =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported && !g.IsPointwise && g.PatchSize <= 8192;

    /// Whether the image is copied into a zero frame first (padding, or a row of outputs that ends in a partial run of 8).
    public static bool CopiesImage(in ConvGeometry g) =>
        g.PadTop > 0 || g.PadLeft > 0 || PadBottom(g) > 0 || PadRight(g) > 0 || g.OutWidth % 8 != 0;

    static int PadBottom(in ConvGeometry g) => Math.Max(0, (g.OutHeight - 1) * g.StrideHeight + g.KernelHeight - g.InHeight - g.PadTop);
    static int PadRight(in ConvGeometry g) => Math.Max(0, (g.OutWidth - 1) * g.StrideWidth + g.KernelWidth - g.InWidth - g.PadLeft);

    /// The geometry the micro-kernel runs on: 'valid' on the image in its zero frame, wide enough that
    /// the last run of 8 pixels of a row reads inside the frame.
    static ConvGeometry Framed(in ConvGeometry g)
    {
        int runs = (g.OutWidth + 7) / 8;
        int width = Math.Max(g.InWidth + g.PadLeft + PadRight(g), (runs * 8 - 1) * g.StrideWidth + g.KernelWidth);
        return g with { InHeight = g.InHeight + g.PadTop + PadBottom(g), InWidth = width, PadTop = 0, PadLeft = 0 };
    }

    [ThreadStatic] static float[]? ownPacked, ownBias, frame;

    // What the micro-kernels do on the way out: add the (panel-padded) bias, clamp at 0 when relu.
    readonly record struct Epilogue(float[] Bias, bool Relu);

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
    /// With rowEnd >= 0, only output rows [rowStart, rowEnd) of a single image are computed (to split one image across threads);
    /// with yIsBand, y then holds only those rows rather than the whole image.
    /// packedKernel, when given, is PackKernel's result, made once for many calls (a layer packs it once per batch).
    public static void Forward(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters, Span<float> y, int images,
        int rowStart = 0, int rowEnd = -1, ReadOnlySpan<float> packedKernel = default, ReadOnlySpan<float> bias = default, bool relu = false,
        bool yIsBand = false)
    {
        if (!Supports(g)) throw new ArgumentException("The implicit convolution does not support this geometry (see Supports).");
        if (rowEnd < 0) rowEnd = g.OutHeight;
        if (rowStart < 0 || rowEnd > g.OutHeight || rowStart > rowEnd)
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"Output rows [{rowStart}, {rowEnd}) are outside 0..{g.OutHeight}.");
        if (images != 1 && (rowStart != 0 || rowEnd != g.OutHeight || yIsBand))
            throw new ArgumentException("A range of output rows can only be computed for one image at a time.");
        if (!bias.IsEmpty && bias.Length != filters)
            throw new ArgumentException($"Implicit convolution: the bias has {bias.Length} values for {filters} filters.");
        int patch = g.PatchSize, nr = PanelWidth(filters), panels = (filters + nr - 1) / nr;
        long outputValues = yIsBand ? (long)(rowEnd - rowStart) * g.OutWidth * filters : (long)images * g.Patches * filters;
        if (x.Length < (long)images * g.InputSize || y.Length < outputValues || kernel.Length < patch * filters)
            throw new ArgumentException("Implicit convolution: buffer sizes do not match the geometry.");
        if (rowStart == rowEnd) return;
        if (packedKernel.IsEmpty)
        {
            var own = ownPacked;
            if (own is null || own.Length < PackedKernelSize(patch, filters)) ownPacked = own = new float[PackedKernelSize(patch, filters)];
            PackKernel(kernel, patch, filters, own);
            packedKernel = own;
        }
        else if (packedKernel.Length < PackedKernelSize(patch, filters))
            throw new ArgumentException("Implicit convolution: the packed kernel is too small for this geometry.");
        bool copy = CopiesImage(g);
        var run = copy ? Framed(g) : g;   // the geometry the micro-kernel sees
        Span<int> off = stackalloc int[patch];
        for (int i = 0, p = 0; i < g.KernelHeight; i++)
            for (int j = 0; j < g.KernelWidth; j++)
                for (int c = 0; c < g.Channels; c++, p++)
                    off[p] = (i * run.InWidth + j) * g.Channels + c;
        // The framed rows that output rows [rowStart, rowEnd) read: the frame buffer holds only these.
        int firstRow = rowStart * g.StrideHeight, endRow = (rowEnd - 1) * g.StrideHeight + g.KernelHeight;
        long frameRow = (long)run.InWidth * g.Channels;
        var framed = frame;
        if (copy && (framed is null || framed.Length < (endRow - firstRow) * frameRow)) frame = framed = new float[(endRow - firstRow) * frameRow];
        // The bias as the micro-kernel reads it: whole panels, zero past the last filter (and everywhere without a bias).
        var paddedBias = ownBias;
        if (paddedBias is null || paddedBias.Length < panels * nr) ownBias = paddedBias = new float[panels * nr];
        paddedBias.AsSpan(0, panels * nr).Clear();
        bias.CopyTo(paddedBias);
        var epilogue = new Epilogue(paddedBias, relu);
        fixed (float* px = x) fixed (float* pkp = packedKernel) fixed (float* py = y) fixed (int* poff = off) fixed (float* pframe = framed)
            for (int n = 0; n < images; n++)
            {
                float* image = px + (long)n * g.InputSize;
                if (copy)
                {
                    CopyFramed(g, run, image, pframe, firstRow, endRow);
                    image = pframe - firstRow * frameRow;   // where the frame's row 0 would be: the loops index rows from there
                }
                // Likewise the output as the loops index it (row 0 first): for a band, where its row 0 would be.
                float* yImage = yIsBand ? py - (long)rowStart * g.OutWidth * filters : py + (long)n * g.Patches * filters;
                Image(run, g.OutWidth, image, pkp, poff, filters, nr, panels, yImage, rowStart, rowEnd, epilogue);
            }
    }

    // Rows [first, end) of the image in its zero frame (frame row r is image row r - PadTop, shifted right
    // by PadLeft), written to dst from its start.
    static void CopyFramed(in ConvGeometry g, in ConvGeometry framed, float* x, float* dst, int first, int end)
    {
        int c = g.Channels, row = g.InWidth * c, frameRow = framed.InWidth * c, left = g.PadLeft * c;
        for (int r = first; r < end; r++)
        {
            float* d = dst + (long)(r - first) * frameRow;
            int ih = r - g.PadTop;
            if ((uint)ih >= (uint)g.InHeight)
            {
                new Span<float>(d, frameRow).Clear();
                continue;
            }
            new Span<float>(d, left).Clear();
            new ReadOnlySpan<float>(x + (long)ih * row, row).CopyTo(new Span<float>(d + left, row));
            new Span<float>(d + left + row, frameRow - left - row).Clear();
        }
    }

    // Output rows [rowStart, rowEnd) of one image in runs of 8 pixels; the last run of a row may be partial
    // (computed in full on the zero frame, stored for its real pixels only).
    static void Image(in ConvGeometry g, int outW, float* x, float* pk, int* off, int filters, int nr, int panels, float* y,
        int rowStart, int rowEnd, in Epilogue epilogue)
    {
        int patch = g.PatchSize, c = g.Channels, inW = g.InWidth, sh = g.StrideHeight, sw = g.StrideWidth;
        bool relu = epilogue.Relu;
        float* tile = stackalloc float[8 * 32];
        fixed (float* pb = epilogue.Bias)
            for (int oh = rowStart; oh < rowEnd; oh++)
                for (int ow = 0; ow < outW; ow += 8)
                {
                    int pixels = Math.Min(8, outW - ow);
                    float* b0 = x + ((long)oh * sh * inW + ow * sw) * c;
                    float* yo = y + ((long)oh * outW + ow) * filters;
                    for (int jp = 0; jp < panels; jp++)
                    {
                        int width = Math.Min(nr, filters - jp * nr);
                        float* bp = pk + (long)jp * patch * nr;
                        // A partial run goes to a tile first, then its real pixels to y.
                        float* dst = pixels == 8 ? yo + jp * nr : tile;
                        int ld = pixels == 8 ? filters : nr;
                        if (nr == 32) Kernel8x32(patch, b0, sw * c, off, bp, dst, ld, pixels == 8 ? width : nr, pb + jp * nr, relu);
                        else Kernel8x16(patch, b0, sw * c, off, bp, dst, ld, pixels == 8 ? width : nr, pb + jp * nr, relu);
                        if (pixels < 8)
                            for (int r = 0; r < pixels; r++)
                                new ReadOnlySpan<float>(tile + r * nr, width).CopyTo(new Span<float>(yo + (long)r * filters + jp * nr, width));
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
