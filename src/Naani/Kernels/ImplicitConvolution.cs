using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Naani.Kernels;

// y[oh,ow,o] = sum_p x[base(oh,ow) + off[p]] * k[p,o]   (NHWC, HWIO; one image)
//
// Implicit GEMM: the same product as im2col + GEMM, but the A operand is read straight from the
// image. Patch element p = (i*KW + j)*C + c of an output pixel sits at a fixed offset
// off[p] = (i*W + j)*C + c from its receptive field's top-left corner, so a register-blocked
// micro-kernel over 8 neighbouring pixels of a row (6 without AVX-512) only needs their base pointers
// and the offset table: no im2col copy, no packing.
//
// Every output pixel goes through the micro-kernel, in runs of 8 (or 6) consecutive pixels that may wrap
// from one output row to the next. Where the convolution pads (Keras 'same'), the rows of the image
// that are needed are first copied into a frame of zeros (a copy of C values per input pixel against
// KH*KW*C*filters multiply-adds per output pixel); otherwise the image is read in place.
[SkipLocalsInit]
public static unsafe class ImplicitConvolution
{
    /// Whether the implicit path applies: AVX-512 (8 pixels x 16 or 32 filters a micro-kernel) or AVX2 with FMA
    /// (6 pixels x 8 or 16 filters), a real sliding window (1x1 stride-1 kernels are a plain GEMM on the image),
    /// and patches of bounded size (the offset table lives on the stack).
    public static bool Supports(in ConvGeometry g) => (Wide || Narrow) && !g.IsPointwise && g.PatchSize <= 8192;

    /// Whether Forward can also max-pool the output 2x2 with stride 2 (pool2x2) in its micro-kernels: with AVX-512, whose
    /// 8 pixels a micro-kernel then are 2 rows x 4 columns, pooled to 2 pixels before they are stored; and patches short
    /// enough to go through the micro-kernel in one piece (up to MaxChunk values). The convolution's output is then never
    /// written: for mnist-baseline's first layer, 4 times as many values as the pooled output, written and read back.
    public static bool SupportsPooling2x2(in ConvGeometry g) => Wide && Supports(g) && g.PatchSize <= MaxChunk && g.OutHeight >= 2 && g.OutWidth >= 2;

    // The longest run of patch values a micro-kernel takes at once from a packed kernel: its panel of 32 filters, up to 128 KB, stays in L2.
    const int MaxChunk = 1024;

    static readonly bool Wide = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;
    static readonly bool Narrow = Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported;

    /// Output pixels per micro-kernel: its rows of accumulators.
    static int RunPixels => Wide ? 8 : 6;

    /// Whether the image is copied into a zero frame first: when the convolution pads it.
    public static bool CopiesImage(in ConvGeometry g) => g.PadTop > 0 || g.PadLeft > 0 || PadBottom(g) > 0 || PadRight(g) > 0;

    static int PadBottom(in ConvGeometry g) => Math.Max(0, (g.OutHeight - 1) * g.StrideHeight + g.KernelHeight - g.InHeight - g.PadTop);
    static int PadRight(in ConvGeometry g) => Math.Max(0, (g.OutWidth - 1) * g.StrideWidth + g.KernelWidth - g.InWidth - g.PadLeft);

    /// The geometry the micro-kernel runs on: 'valid' on the image in its zero frame.
    static ConvGeometry Framed(in ConvGeometry g) => g with
    {
        InHeight = g.InHeight + g.PadTop + PadBottom(g),
        InWidth = g.InWidth + g.PadLeft + PadRight(g),
        PadTop = 0,
        PadLeft = 0,
    };

    [ThreadStatic] static float[]? ownPacked, ownBias, frame;

    // What the micro-kernels do on the way out: add the (panel-padded) bias, clamp at 0 when relu.
    readonly record struct Epilogue(float[] Bias, bool Relu);

    static int PanelWidth(int filters) => Wide ? (filters <= 16 ? 16 : 32) : filters <= 8 ? 8 : 16;

    /// Whether the kernel must be packed for the micro-kernel: when the last panel of filters is partial
    /// (10, 20 or 40 filters). Otherwise it may be read in place, NR values of a row at a time with the
    /// kernel's row stride, which copies nothing (VGG16's 3x3x512x512 kernels are 9.4 MB each) but reads
    /// less well (the rows are 4 * filters bytes apart: more TLB misses, fewer cache sets). A caller that
    /// multiplies many pixels by the kernel packs it once (Conv2D does, per batch, from PackingPays).
    public static bool NeedsPacking(int filters) => filters % PanelWidth(filters) != 0;

    /// Whether packing the kernel pays for `pixels` output pixels computed with it (or is needed).
    public static bool PackingPays(int filters, long pixels) => NeedsPacking(filters) || pixels >= 512;

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
        {
            int width = Math.Min(nr, filters - jp * nr);
            for (int p = 0; p < patch; p++)
            {
                var dst = packed.Slice((jp * patch + p) * nr, nr);
                kernel.Slice(p * filters + jp * nr, width).CopyTo(dst);
                dst.Slice(width).Clear();
            }
        }
    }

    /// Forward for `images` consecutive images, y = conv(x, kernel) + bias, then max(y, 0) when relu: the
    /// bias and the ReLU are fused into the micro-kernel (the accumulators start at the bias; the clamp is
    /// applied on the way out), so the output is written once. An empty bias means none.
    /// With rowEnd >= 0, only output rows [rowStart, rowEnd) of a single image are computed (to split one image across threads);
    /// with yIsBand, y then holds only those rows rather than the whole image.
    /// packedKernel, when given, is PackKernel's result, made once for many calls (a layer packs it once per batch);
    /// without it, the kernel is packed here where NeedsPacking, else read in place.
    /// With pool2x2 (SupportsPooling2x2), y receives the output max-pooled 2x2 with stride 2 instead, and argmax, when not
    /// empty, each pooled value's place in the convolution's output image (after the ReLU: the first maximum in scan order,
    /// as Pooling.MaxForward records it), laid out as y.
    public static void Forward(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters, Span<float> y, int images,
        int rowStart = 0, int rowEnd = -1, ReadOnlySpan<float> packedKernel = default, ReadOnlySpan<float> bias = default, bool relu = false,
        bool yIsBand = false, bool pool2x2 = false, Span<int> argmax = default)
    {
        if (!Supports(g)) throw new ArgumentException("The implicit convolution does not support this geometry (see Supports).");
        if (pool2x2 && !SupportsPooling2x2(g))
            throw new ArgumentException("The implicit convolution cannot pool this geometry in its micro-kernels (see SupportsPooling2x2).");
        int lastRow = pool2x2 ? g.OutHeight / 2 * 2 : g.OutHeight;   // pooled, an odd last row is dropped
        if (rowEnd < 0) rowEnd = lastRow;
        if (rowStart < 0 || rowEnd > g.OutHeight || rowStart > rowEnd)
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"Output rows [{rowStart}, {rowEnd}) are outside 0..{g.OutHeight}.");
        if (!argmax.IsEmpty && !pool2x2) throw new ArgumentException("An argmax is recorded only with pool2x2.");
        if (pool2x2 && (rowStart % 2 != 0 || rowEnd % 2 != 0))
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"Pooled output rows [{rowStart}, {rowEnd}) must start and end on even rows.");
        if (images != 1 && (rowStart != 0 || rowEnd != lastRow || yIsBand))
            throw new ArgumentException("A range of output rows can only be computed for one image at a time.");
        if (!bias.IsEmpty && bias.Length != filters)
            throw new ArgumentException($"Implicit convolution: the bias has {bias.Length} values for {filters} filters.");
        int patch = g.PatchSize, nr = PanelWidth(filters), panels = (filters + nr - 1) / nr;
        // Pooled, y holds (OutHeight / 2) x (OutWidth / 2) pixels an image (or, as a band, rows [rowStart / 2, rowEnd / 2)).
        int pooledImage = g.OutHeight / 2 * (g.OutWidth / 2) * filters;
        long outputValues = pool2x2
            ? yIsBand ? (long)(rowEnd - rowStart) / 2 * (g.OutWidth / 2) * filters : (long)images * pooledImage
            : yIsBand ? (long)(rowEnd - rowStart) * g.OutWidth * filters : (long)images * g.Patches * filters;
        if (x.Length < (long)images * g.InputSize || y.Length < outputValues || kernel.Length < patch * filters || (!argmax.IsEmpty && argmax.Length < outputValues))
            throw new ArgumentException("Implicit convolution: buffer sizes do not match the geometry.");
        if (rowStart == rowEnd) return;
        bool packs = !packedKernel.IsEmpty || NeedsPacking(filters);
        if (!packs) packedKernel = kernel;
        else if (packedKernel.IsEmpty)
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
        fixed (float* px = x) fixed (float* pkp = packedKernel) fixed (float* py = y) fixed (int* poff = off) fixed (float* pframe = framed) fixed (int* parg = argmax)
            for (int n = 0; n < images; n++)
            {
                float* image = px + (long)n * g.InputSize;
                if (copy)
                {
                    CopyFramed(g, run, image, pframe, firstRow, endRow);
                    image = pframe - firstRow * frameRow;   // where the frame's row 0 would be: the loops index rows from there
                }
                // Likewise the output as the loops index it (row 0 first): for a band, where its row 0 would be.
                if (pool2x2)
                {
                    long at = yIsBand ? -(long)rowStart / 2 * (g.OutWidth / 2) * filters : (long)n * pooledImage;
                    ImagePooled2x2(run, g.OutWidth, image, pkp, packs, poff, filters, nr, panels, py + at, rowStart, rowEnd, epilogue, parg == null ? null : parg + at);
                    continue;
                }
                float* yImage = yIsBand ? py - (long)rowStart * g.OutWidth * filters : py + (long)n * g.Patches * filters;
                Image(run, g.OutWidth, image, pkp, packs, poff, filters, nr, panels, yImage, rowStart, rowEnd, epilogue);
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

    // Output rows [rowStart, rowEnd) of one image. The pixels are taken in order, in runs of 8 (6 without AVX-512) that may
    // wrap from one row to the next (each pixel of a run has its own base pointer), so only the very last
    // run can be partial: its missing pixels repeat the last one and are not stored.
    //
    // Loop nest, as a GEMM's: blocks of up to 32 runs (the image rows they read stay in L2); per block,
    // each NR-wide panel of filters; per panel, chunks of at most ~1024 patch elements (a chunk of the
    // kernel panel, up to 128 KB, stays in L2 while every run of the block uses it). The first chunk
    // starts from the bias, the next ones add to what is in y, the last one applies the ReLU.
    static void Image(in ConvGeometry g, int outW, float* x, float* pk, bool packed, int* off, int filters, int nr, int panels, float* y,
        int rowStart, int rowEnd, in Epilogue epilogue)
    {
        const int BlockRuns = 32;
        int rp = RunPixels;
        int patch = g.PatchSize, c = g.Channels, inW = g.InWidth, sh = g.StrideHeight, sw = g.StrideWidth;
        // A kernel read in place has its panel rows 4 * filters bytes apart, on more pages and fewer cache
        // sets than packed ones: it goes in shorter chunks.
        int maxChunk = packed ? MaxChunk : 192;
        int chunks = (patch + maxChunk - 1) / maxChunk, chunk = (patch + chunks - 1) / chunks;
        long q0 = (long)rowStart * outW, q1 = (long)rowEnd * outW;
        float** bases = stackalloc float*[BlockRuns * 8];   // 8: the longest run
        float* tile = stackalloc float[8 * 32];
        fixed (float* pb = epilogue.Bias)
            for (long block = q0; block < q1; block += BlockRuns * rp)
            {
                int runs = (int)Math.Min(BlockRuns, (q1 - block + rp - 1) / rp);
                // Pixel by pixel, without a division each (a 64-bit division costs as much as a short patch's FMAs).
                int real = (int)Math.Min((long)runs * rp, q1 - block), oh = (int)(block / outW), ow = (int)(block % outW);
                for (int t = 0; t < real; t++)
                {
                    bases[t] = x + ((long)oh * sh * inW + (long)ow * sw) * c;
                    if (++ow == outW) (ow, oh) = (0, oh + 1);
                }
                for (int t = real; t < runs * rp; t++) bases[t] = bases[real - 1];   // a partial last run repeats its last pixel
                int lastPixels = (int)Math.Min(rp, q1 - (block + (long)(runs - 1) * rp));
                for (int jp = 0; jp < panels; jp++)
                {
                    int width = Math.Min(nr, filters - jp * nr);
                    float* bias = pb + jp * nr;
                    for (int k0 = 0; k0 < patch; k0 += chunk)
                    {
                        int kc = Math.Min(chunk, patch - k0);
                        bool first = k0 == 0, last = k0 + kc == patch;
                        // Panel jp, from patch element k0: in the packed kernel, or in place (row stride = filters).
                        float* bp = packed ? pk + ((long)jp * patch + k0) * nr : pk + (long)k0 * filters + jp * nr;
                        int bStride = packed ? nr : filters;
                        for (int r = 0; r < runs; r++)
                        {
                            // A partial last run accumulates in the tile, which then goes to y for its real pixels.
                            bool partial = r == runs - 1 && lastPixels < rp;
                            float* dst = partial ? tile : y + (block + r * rp) * filters + jp * nr;
                            int ld = partial ? nr : filters, w = partial ? nr : width;
                            float** xs = bases + r * rp;
                            bool acc = !first, relu = last && epilogue.Relu;
                            if (!Wide)
                            {
                                if (nr == 16) Kernel6x16(kc, xs, off + k0, bp, bStride, dst, ld, w, bias, acc, relu);
                                else Kernel6x8(kc, xs, off + k0, bp, bStride, dst, ld, w, bias, acc, relu);
                            }
                            else if (nr == 32) Kernel8x32(kc, xs, off + k0, bp, bStride, dst, ld, w, bias, acc, relu);
                            else Kernel8x16(kc, xs, off + k0, bp, bStride, dst, ld, w, bias, acc, relu);
                            if (partial && last)
                                for (int i = 0; i < lastPixels; i++)
                                    new ReadOnlySpan<float>(tile + i * nr, width).CopyTo(new Span<float>(y + (block + (long)r * rp + i) * filters + jp * nr, width));
                        }
                    }
                }
            }
    }

    // Image with the 2x2 stride-2 max pooling in the micro-kernels: output rows [rowStart, rowEnd) (both even) of one image,
    // pooled into y (the pooled image, row 0 first). Each micro-kernel takes 2 rows x 4 columns of output pixels, the
    // windows of 2 pooled pixels; where a row has an odd number of pooled pixels, the last micro-kernel repeats its two
    // columns (a window's maximum is the same) and stores one. A pooled row's input rows, a few KB, stay in L1 across
    // the panels of filters; the whole patch goes through at once (SupportsPooling2x2).
    static void ImagePooled2x2(in ConvGeometry g, int outW, float* x, float* pk, bool packed, int* off, int filters, int nr, int panels, float* y,
        int rowStart, int rowEnd, in Epilogue epilogue, int* argmax)
    {
        PooledArgmax place = default;
        PooledArgmax* where = argmax == null ? null : &place;
        int patch = g.PatchSize, c = g.Channels, inW = g.InWidth, sh = g.StrideHeight, sw = g.StrideWidth, pooledW = outW / 2;
        int bStride = packed ? nr : filters;
        float** xs = stackalloc float*[8];
        fixed (float* pb = epilogue.Bias)
            for (int row = rowStart; row < rowEnd; row += 2)
            {
                float* top = x + (long)row * sh * inW * c, bottom = top + (long)sh * inW * c;
                float* yRow = y + (long)(row / 2) * pooledW * filters;
                for (int pc = 0; pc < pooledW; pc += 2)
                {
                    int count = Math.Min(2, pooledW - pc);
                    for (int i = 0; i < 4; i++)
                    {
                        int column = 2 * pc + (count == 2 ? i : i % 2);
                        xs[i] = top + (long)column * sw * c;
                        xs[4 + i] = bottom + (long)column * sw * c;
                    }
                    for (int jp = 0; jp < panels; jp++)
                    {
                        float* bp = packed ? pk + (long)jp * patch * nr : pk + jp * nr;
                        float* dst = yRow + (long)pc * filters + jp * nr;
                        int width = Math.Min(nr, filters - jp * nr);
                        if (where != null)
                            place = new PooledArgmax
                            {
                                Destination = argmax + (dst - y),
                                Index = (row * outW + 2 * pc) * filters + jp * nr,
                                Row = outW * filters,
                                Column = filters,
                            };
                        if (nr == 32) Kernel8x32(patch, xs, off, bp, bStride, dst, filters, width, pb + jp * nr, false, epilogue.Relu, count, where);
                        else Kernel8x16(patch, xs, off, bp, bStride, dst, filters, width, pb + jp * nr, false, epilogue.Relu, count, where);
                    }
                }
            }
    }

    // Where a pooling micro-kernel writes the argmax of its pooled pixels (training): Destination for the first, the
    // second ldy further; Index is the place of the window's top-left output value (filter 0 of the panel) in the
    // convolution's output image, Row and Column the steps to the values below and to the right. The window's maximum
    // is found as Pooling finds it (Pooling.FirstMaximum).
    struct PooledArgmax
    {
        public int* Destination;
        public int Index, Row, Column;
    }

    // 8 pixels x 32 filters: per patch element, one offset, two loads of the kernel panel, eight broadcasts, 16 FMAs.
    // The accumulators start at the bias (or at y's values, to add a further chunk of the patch); ReLU clamps
    // them on the way out; a panel narrower than 32 is loaded and stored masked.
    // With pooled (1 or 2), the 8 pixels are 2 rows x 4 columns (ImagePooled2x2): each 2x2 window's maximum is taken in
    // registers, and `pooled` pooled pixels are stored, at y and y + ldy. The maximum comes after the bias and before the
    // ReLU, which commutes with it: bit for bit what pooling the stored output would give.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x32(int patch, float** xs, int* off, float* b, int bStride, float* y, int ldy, int width, float* bias, bool accumulate, bool relu,
        int pooled = 0, PooledArgmax* argmax = null)
    {
        var m0 = Mask(width);
        var m1 = Mask(width - 16);
        Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (accumulate)
        {
            c00 = Load(y, m0); c01 = Load(y + 16, m1); c10 = Load(y + ldy, m0); c11 = Load(y + ldy + 16, m1);
            c20 = Load(y + 2L * ldy, m0); c21 = Load(y + 2L * ldy + 16, m1); c30 = Load(y + 3L * ldy, m0); c31 = Load(y + 3L * ldy + 16, m1);
            c40 = Load(y + 4L * ldy, m0); c41 = Load(y + 4L * ldy + 16, m1); c50 = Load(y + 5L * ldy, m0); c51 = Load(y + 5L * ldy + 16, m1);
            c60 = Load(y + 6L * ldy, m0); c61 = Load(y + 6L * ldy + 16, m1); c70 = Load(y + 7L * ldy, m0); c71 = Load(y + 7L * ldy + 16, m1);
        }
        else
        {
            var bias0 = Vector512.Load(bias);
            var bias1 = Vector512.Load(bias + 16);
            c00 = c10 = c20 = c30 = c40 = c50 = c60 = c70 = bias0;
            c01 = c11 = c21 = c31 = c41 = c51 = c61 = c71 = bias1;
        }
        float* x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3], x4 = xs[4], x5 = xs[5], x6 = xs[6], x7 = xs[7];
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
            b += bStride;
        }
        if (pooled != 0)
        {
            if (argmax != null && relu)
            {
                // Training: the maximum and its place among the outputs after the ReLU, as the pooling of the stored output.
                var z = Vector512<float>.Zero;
                c00 = Vector512.Max(c00, z); c01 = Vector512.Max(c01, z); c10 = Vector512.Max(c10, z); c11 = Vector512.Max(c11, z);
                c20 = Vector512.Max(c20, z); c21 = Vector512.Max(c21, z); c30 = Vector512.Max(c30, z); c31 = Vector512.Max(c31, z);
                c40 = Vector512.Max(c40, z); c41 = Vector512.Max(c41, z); c50 = Vector512.Max(c50, z); c51 = Vector512.Max(c51, z);
                c60 = Vector512.Max(c60, z); c61 = Vector512.Max(c61, z); c70 = Vector512.Max(c70, z); c71 = Vector512.Max(c71, z);
                relu = false;
            }
            // Pixels 0, 1, 4, 5 are the first window, 2, 3, 6, 7 the second; in the order of Pooling's maximum.
            var p00 = Vector512.Max(Vector512.Max(c00, c10), Vector512.Max(c40, c50));
            var p01 = Vector512.Max(Vector512.Max(c01, c11), Vector512.Max(c41, c51));
            var p10 = Vector512.Max(Vector512.Max(c20, c30), Vector512.Max(c60, c70));
            var p11 = Vector512.Max(Vector512.Max(c21, c31), Vector512.Max(c61, c71));
            if (relu)
            {
                var z = Vector512<float>.Zero;
                (p00, p01, p10, p11) = (Vector512.Max(p00, z), Vector512.Max(p01, z), Vector512.Max(p10, z), Vector512.Max(p11, z));
            }
            Store(y, p00, p01, m0, m1);
            if (pooled == 2) Store(y + ldy, p10, p11, m0, m1);
            if (argmax == null) return;
            int i = argmax->Index, r = argmax->Row, c = argmax->Column;
            int* a = argmax->Destination;
            Avx512F.MaskStore(a, m0.AsInt32(), Pooling.FirstMaximum(c00, c10, c40, c50, p00, i, i + c, i + r, i + r + c));
            Avx512F.MaskStore(a + 16, m1.AsInt32(), Pooling.FirstMaximum(c01, c11, c41, c51, p01, i + 16, i + c + 16, i + r + 16, i + r + c + 16));
            if (pooled == 1) return;
            i += 2 * c;
            Avx512F.MaskStore(a + ldy, m0.AsInt32(), Pooling.FirstMaximum(c20, c30, c60, c70, p10, i, i + c, i + r, i + r + c));
            Avx512F.MaskStore(a + ldy + 16, m1.AsInt32(), Pooling.FirstMaximum(c21, c31, c61, c71, p11, i + 16, i + c + 16, i + r + 16, i + r + c + 16));
            return;
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
        Store(y, c00, c01, m0, m1); Store(y + ldy, c10, c11, m0, m1); Store(y + 2L * ldy, c20, c21, m0, m1); Store(y + 3L * ldy, c30, c31, m0, m1);
        Store(y + 4L * ldy, c40, c41, m0, m1); Store(y + 5L * ldy, c50, c51, m0, m1); Store(y + 6L * ldy, c60, c61, m0, m1); Store(y + 7L * ldy, c70, c71, m0, m1);
    }

    // pooled: as Kernel8x32's.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x16(int patch, float** xs, int* off, float* b, int bStride, float* y, int ldy, int width, float* bias, bool accumulate, bool relu,
        int pooled = 0, PooledArgmax* argmax = null)
    {
        var m = Mask(width);
        Vector512<float> c0, c1, c2, c3, c4, c5, c6, c7;
        if (accumulate)
        {
            c0 = Load(y, m); c1 = Load(y + ldy, m); c2 = Load(y + 2L * ldy, m); c3 = Load(y + 3L * ldy, m);
            c4 = Load(y + 4L * ldy, m); c5 = Load(y + 5L * ldy, m); c6 = Load(y + 6L * ldy, m); c7 = Load(y + 7L * ldy, m);
        }
        else c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = Vector512.Load(bias);
        float* x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3], x4 = xs[4], x5 = xs[5], x6 = xs[6], x7 = xs[7];
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
            b += bStride;
        }
        if (pooled != 0)
        {
            if (argmax != null && relu)
            {
                var z = Vector512<float>.Zero;
                c0 = Vector512.Max(c0, z); c1 = Vector512.Max(c1, z); c2 = Vector512.Max(c2, z); c3 = Vector512.Max(c3, z);
                c4 = Vector512.Max(c4, z); c5 = Vector512.Max(c5, z); c6 = Vector512.Max(c6, z); c7 = Vector512.Max(c7, z);
                relu = false;
            }
            var p0 = Vector512.Max(Vector512.Max(c0, c1), Vector512.Max(c4, c5));
            var p1 = Vector512.Max(Vector512.Max(c2, c3), Vector512.Max(c6, c7));
            if (relu) (p0, p1) = (Vector512.Max(p0, Vector512<float>.Zero), Vector512.Max(p1, Vector512<float>.Zero));
            Avx512F.MaskStore(y, m, p0);
            if (pooled == 2) Avx512F.MaskStore(y + ldy, m, p1);
            if (argmax == null) return;
            int i = argmax->Index, r = argmax->Row, c = argmax->Column;
            Avx512F.MaskStore(argmax->Destination, m.AsInt32(), Pooling.FirstMaximum(c0, c1, c4, c5, p0, i, i + c, i + r, i + r + c));
            if (pooled == 1) return;
            i += 2 * c;
            Avx512F.MaskStore(argmax->Destination + ldy, m.AsInt32(), Pooling.FirstMaximum(c2, c3, c6, c7, p1, i, i + c, i + r, i + r + c));
            return;
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
        Avx512F.MaskStore(y, m, c0); Avx512F.MaskStore(y + ldy, m, c1); Avx512F.MaskStore(y + 2L * ldy, m, c2); Avx512F.MaskStore(y + 3L * ldy, m, c3);
        Avx512F.MaskStore(y + 4L * ldy, m, c4); Avx512F.MaskStore(y + 5L * ldy, m, c5); Avx512F.MaskStore(y + 6L * ldy, m, c6); Avx512F.MaskStore(y + 7L * ldy, m, c7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Load(float* p, Vector512<float> mask) => Avx512F.MaskLoad(p, mask, Vector512<float>.Zero);

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

    // Without AVX-512: 6 pixels x 16 filters in 12 ymm accumulators (the GEMM's 6 x 16 tile): per patch element,
    // one offset, two loads of the kernel panel, six broadcasts, 12 FMAs. Bias, accumulation, ReLU and the
    // masked loads and stores of a partial panel as in Kernel8x32.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6x16(int patch, float** xs, int* off, float* b, int bStride, float* y, int ldy, int width, float* bias, bool accumulate, bool relu)
    {
        var m0 = Mask256(width);
        var m1 = Mask256(width - 8);
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (accumulate)
        {
            c00 = Avx.MaskLoad(y, m0); c01 = Avx.MaskLoad(y + 8, m1); c10 = Avx.MaskLoad(y + ldy, m0); c11 = Avx.MaskLoad(y + ldy + 8, m1);
            c20 = Avx.MaskLoad(y + 2L * ldy, m0); c21 = Avx.MaskLoad(y + 2L * ldy + 8, m1); c30 = Avx.MaskLoad(y + 3L * ldy, m0); c31 = Avx.MaskLoad(y + 3L * ldy + 8, m1);
            c40 = Avx.MaskLoad(y + 4L * ldy, m0); c41 = Avx.MaskLoad(y + 4L * ldy + 8, m1); c50 = Avx.MaskLoad(y + 5L * ldy, m0); c51 = Avx.MaskLoad(y + 5L * ldy + 8, m1);
        }
        else
        {
            var bias0 = Vector256.Load(bias);
            var bias1 = Vector256.Load(bias + 8);
            c00 = c10 = c20 = c30 = c40 = c50 = bias0;
            c01 = c11 = c21 = c31 = c41 = c51 = bias1;
        }
        float* x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3], x4 = xs[4], x5 = xs[5];
        for (int p = 0; p < patch; p++)
        {
            int o = off[p];
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var a = Vector256.Create(x0[o]); c00 = Vector256.FusedMultiplyAdd(a, b0, c00); c01 = Vector256.FusedMultiplyAdd(a, b1, c01);
            a = Vector256.Create(x1[o]); c10 = Vector256.FusedMultiplyAdd(a, b0, c10); c11 = Vector256.FusedMultiplyAdd(a, b1, c11);
            a = Vector256.Create(x2[o]); c20 = Vector256.FusedMultiplyAdd(a, b0, c20); c21 = Vector256.FusedMultiplyAdd(a, b1, c21);
            a = Vector256.Create(x3[o]); c30 = Vector256.FusedMultiplyAdd(a, b0, c30); c31 = Vector256.FusedMultiplyAdd(a, b1, c31);
            a = Vector256.Create(x4[o]); c40 = Vector256.FusedMultiplyAdd(a, b0, c40); c41 = Vector256.FusedMultiplyAdd(a, b1, c41);
            a = Vector256.Create(x5[o]); c50 = Vector256.FusedMultiplyAdd(a, b0, c50); c51 = Vector256.FusedMultiplyAdd(a, b1, c51);
            b += bStride;
        }
        if (relu)
        {
            var z = Vector256<float>.Zero;
            c00 = Vector256.Max(c00, z); c01 = Vector256.Max(c01, z); c10 = Vector256.Max(c10, z); c11 = Vector256.Max(c11, z);
            c20 = Vector256.Max(c20, z); c21 = Vector256.Max(c21, z); c30 = Vector256.Max(c30, z); c31 = Vector256.Max(c31, z);
            c40 = Vector256.Max(c40, z); c41 = Vector256.Max(c41, z); c50 = Vector256.Max(c50, z); c51 = Vector256.Max(c51, z);
        }
        if (width == 16)
        {
            Store(y, c00, c01); Store(y + ldy, c10, c11); Store(y + 2L * ldy, c20, c21);
            Store(y + 3L * ldy, c30, c31); Store(y + 4L * ldy, c40, c41); Store(y + 5L * ldy, c50, c51);
            return;
        }
        Store(y, c00, c01, m0, m1); Store(y + ldy, c10, c11, m0, m1); Store(y + 2L * ldy, c20, c21, m0, m1);
        Store(y + 3L * ldy, c30, c31, m0, m1); Store(y + 4L * ldy, c40, c41, m0, m1); Store(y + 5L * ldy, c50, c51, m0, m1);
    }

    // Without AVX-512, for 8 filters or fewer: 6 pixels x 8 filters.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6x8(int patch, float** xs, int* off, float* b, int bStride, float* y, int ldy, int width, float* bias, bool accumulate, bool relu)
    {
        var m = Mask256(width);
        Vector256<float> c0, c1, c2, c3, c4, c5;
        if (accumulate)
        {
            c0 = Avx.MaskLoad(y, m); c1 = Avx.MaskLoad(y + ldy, m); c2 = Avx.MaskLoad(y + 2L * ldy, m);
            c3 = Avx.MaskLoad(y + 3L * ldy, m); c4 = Avx.MaskLoad(y + 4L * ldy, m); c5 = Avx.MaskLoad(y + 5L * ldy, m);
        }
        else c0 = c1 = c2 = c3 = c4 = c5 = Vector256.Load(bias);
        float* x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3], x4 = xs[4], x5 = xs[5];
        for (int p = 0; p < patch; p++)
        {
            int o = off[p];
            var b0 = Vector256.Load(b);
            c0 = Vector256.FusedMultiplyAdd(Vector256.Create(x0[o]), b0, c0);
            c1 = Vector256.FusedMultiplyAdd(Vector256.Create(x1[o]), b0, c1);
            c2 = Vector256.FusedMultiplyAdd(Vector256.Create(x2[o]), b0, c2);
            c3 = Vector256.FusedMultiplyAdd(Vector256.Create(x3[o]), b0, c3);
            c4 = Vector256.FusedMultiplyAdd(Vector256.Create(x4[o]), b0, c4);
            c5 = Vector256.FusedMultiplyAdd(Vector256.Create(x5[o]), b0, c5);
            b += bStride;
        }
        if (relu)
        {
            var z = Vector256<float>.Zero;
            c0 = Vector256.Max(c0, z); c1 = Vector256.Max(c1, z); c2 = Vector256.Max(c2, z);
            c3 = Vector256.Max(c3, z); c4 = Vector256.Max(c4, z); c5 = Vector256.Max(c5, z);
        }
        if (width == 8)
        {
            c0.Store(y); c1.Store(y + ldy); c2.Store(y + 2L * ldy); c3.Store(y + 3L * ldy); c4.Store(y + 4L * ldy); c5.Store(y + 5L * ldy);
            return;
        }
        Avx.MaskStore(y, m, c0); Avx.MaskStore(y + ldy, m, c1); Avx.MaskStore(y + 2L * ldy, m, c2);
        Avx.MaskStore(y + 3L * ldy, m, c3); Avx.MaskStore(y + 4L * ldy, m, c4); Avx.MaskStore(y + 5L * ldy, m, c5);
    }

    // Lanes [0, count) set, as Mask.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Mask256(int count) => Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* y, Vector256<float> v0, Vector256<float> v1, Vector256<float> m0, Vector256<float> m1)
    {
        Avx.MaskStore(y, m0, v0);
        Avx.MaskStore(y + 8, m1, v1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* y, Vector256<float> v0, Vector256<float> v1)
    {
        v0.Store(y);
        v1.Store(y + 8);
    }
}
