using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Naani.Kernels;

// y[n,oh,ow,o] = sum_{i,j,c} x[n, oh*sh + i - pt, ow*sw + j - pl, c] * k[i,j,c,o]   (NHWC, HWIO)
//
// Lowered to a matrix product per image: im2col gathers every receptive field of x into a row of
// cols (Patches x PatchSize); then y_n (Patches x O) = cols (Patches x PatchSize) * K (PatchSize x O),
// because an HWIO kernel flattened row-major is exactly that PatchSize x O matrix.
// The seed "Convolutional Neural Networks" does the same for the 227x227x3 image: 3025 x 363 times 363 x 90.
public static class Convolution
{
    /// cols[p, (i*KW + j)*C + c] = x[oh*sh + i - pt, ow*sw + j - pl, c] for p = oh*OW + ow, or 0 in the padding.
    public static void Im2Col(in ConvGeometry g, ReadOnlySpan<float> x, Span<float> cols) => Im2Col(g, x, cols, 0, g.OutHeight);

    /// Im2Col for the output rows [rowStart, rowEnd) only; their patches start at cols[0].
    public static unsafe void Im2Col(in ConvGeometry g, ReadOnlySpan<float> x, Span<float> cols, int rowStart, int rowEnd)
    {
        if (rowStart < 0 || rowEnd > g.OutHeight || rowStart > rowEnd)
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"Output rows [{rowStart}, {rowEnd}) are outside 0..{g.OutHeight}.");
        if (x.Length < g.InputSize || cols.Length < (rowEnd - rowStart) * g.OutWidth * g.PatchSize)
            throw new ArgumentException($"Im2Col needs {g.InputSize} input and {g.Patches * g.PatchSize} column values; got {x.Length} and {cols.Length}.");
        // Locals, not g's fields: stores through float* could alias g, which would force reloads.
        int c = g.Channels, kw = g.KernelWidth, kh = g.KernelHeight, rowRun = kw * c, patch = g.PatchSize;
        int inH = g.InHeight, inW = g.InWidth, outH = g.OutHeight, outW = g.OutWidth;
        int sh = g.StrideHeight, sw = g.StrideWidth, pt = g.PadTop, pl = g.PadLeft;
        fixed (float* px = x) fixed (float* pc = cols)
        {
            // Loop order oh, kernel row i, ow: one source row serves a whole row of patches.
            for (int oh = rowStart; oh < rowEnd; oh++)
                for (int i = 0; i < kh; i++)
                {
                    int ih = oh * sh + i - pt;
                    float* dst = pc + (long)(oh - rowStart) * outW * patch + i * rowRun;
                    if ((uint)ih >= (uint)inH)
                    {
                        for (int ow = 0; ow < outW; ow++, dst += patch) Clear(dst, rowRun);
                        continue;
                    }
                    float* row = px + (long)ih * inW * c;
                    for (int ow = 0; ow < outW; ow++, dst += patch)
                    {
                        int iw0 = ow * sw - pl;
                        if (iw0 >= 0 && iw0 + kw <= inW)
                        {
                            Copy(row + iw0 * c, dst, rowRun);   // the whole kernel row is inside the image
                            continue;
                        }
                        for (int j = 0; j < kw; j++)
                        {
                            int iw = iw0 + j;
                            if ((uint)iw < (uint)inW) Copy(row + iw * c, dst + j * c, c);
                            else Clear(dst + j * c, c);
                        }
                    }
                }
        }
    }

    // The adjoint of Im2Col: in the forward pass x[...] was copied into cols[p, ...], so now
    // dx[...] += dcols[p, ...]. Padding positions received no input and give nothing back.
    public static unsafe void Col2Im(in ConvGeometry g, ReadOnlySpan<float> dcols, Span<float> dx)
    {
        if (dx.Length < g.InputSize || dcols.Length < g.Patches * g.PatchSize)
            throw new ArgumentException($"Col2Im needs {g.InputSize} input and {g.Patches * g.PatchSize} column values; got {dx.Length} and {dcols.Length}.");
        int c = g.Channels, kw = g.KernelWidth, kh = g.KernelHeight, rowRun = kw * c, patch = g.PatchSize;
        int inH = g.InHeight, inW = g.InWidth, outH = g.OutHeight, outW = g.OutWidth;
        int sh = g.StrideHeight, sw = g.StrideWidth, pt = g.PadTop, pl = g.PadLeft;
        // Where the kernel is wider than the stride, neighbouring patches overlap in dx: each add would read values the one
        // before it has just stored, in part, which the store buffer cannot forward (a stall per patch). The columns go in
        // ceil(kw / sw) interleaved passes instead, whose patches do not overlap within a pass (small-32's second layer:
        // 3 wide, stride 2: even columns, then odd ones).
        int phases = (kw + sw - 1) / sw;
        fixed (float* pdx = dx) fixed (float* pc = dcols)
        {
            for (int oh = 0; oh < outH; oh++)
                for (int i = 0; i < kh; i++)
                {
                    int ih = oh * sh + i - pt;
                    if ((uint)ih >= (uint)inH) continue;
                    float* row = pdx + (long)ih * inW * c;
                    for (int phase = 0; phase < phases; phase++)
                        for (int ow = phase; ow < outW; ow += phases)
                        {
                            float* src = pc + ((long)oh * outW + ow) * patch + i * rowRun;
                            int iw0 = ow * sw - pl;
                            if (iw0 >= 0 && iw0 + kw <= inW)
                            {
                                Add(src, row + iw0 * c, rowRun);
                                continue;
                            }
                            for (int j = 0; j < kw; j++)
                            {
                                int iw = iw0 + j;
                                if ((uint)iw < (uint)inW) Add(src + j * c, row + iw * c, c);
                            }
                        }
                }
        }
    }

    static unsafe void Copy(float* src, float* dst, int count)
    {
        int t = 0;
        if (Wide)
        {
            for (; t <= count - 16; t += 16) Vector512.Store(Vector512.Load(src + t), dst + t);
            if (t == count) return;
            var mask = Lanes512.Mask(count - t);
            Lanes512.StoreMasked(Lanes512.LoadMasked(src + t, mask), dst + t, mask);
            return;
        }
        for (; t <= count - 8; t += 8) Vector256.Store(Vector256.Load(src + t), dst + t);
        for (; t < count; t++) dst[t] = src[t];
    }

    static unsafe void Clear(float* dst, int count)
    {
        for (int t = 0; t < count; t++) dst[t] = 0;
    }

    // dst += src; with AVX-512 the last values (a patch row of 3 x 10 channels ends in 14) in one masked vector.
    static unsafe void Add(float* src, float* dst, int count)
    {
        int t = 0;
        if (Wide)
        {
            for (; t <= count - 16; t += 16) Vector512.Store(Vector512.Load(dst + t) + Vector512.Load(src + t), dst + t);
            if (t == count) return;
            var mask = Lanes512.Mask(count - t);
            Lanes512.StoreMasked(Lanes512.LoadMasked(dst + t, mask) + Lanes512.LoadMasked(src + t, mask), dst + t, mask);
            return;
        }
        for (; t <= count - 8; t += 8) Vector256.Store(Vector256.Load(dst + t) + Vector256.Load(src + t), dst + t);
        for (; t < count; t++) dst[t] += src[t];
    }

    /// Forward for a run of consecutive images: y = activation(im2col(x) * K + bias), one GEMM with images * Patches
    /// rows (or the implicit GEMM, see ImplicitConvolution, which fuses bias and ReLU into its micro-kernel;
    /// packedKernel optionally brings its kernel already packed). An empty bias means none.
    /// cols must hold images * Patches * PatchSize values (unused when pointwise or implicit).
    public static void Forward(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters,
        Span<float> y, Span<float> cols, int images = 1, ReadOnlySpan<float> packedKernel = default,
        ReadOnlySpan<float> bias = default, Activation activation = Activation.Linear)
    {
        var output = y.Slice(0, images * g.Patches * filters);
        if (ImplicitConvolution.Supports(g))
        {
            ImplicitConvolution.Forward(g, x, kernel, filters, y, images, packedKernel: packedKernel, bias: bias, relu: activation == Activation.Relu);
            if (activation is not (Activation.Relu or Activation.Linear)) Activations.Apply(output, filters, activation);
            return;
        }
        ReadOnlySpan<float> a = x;
        if (!g.IsPointwise)
        {
            for (int n = 0; n < images; n++)
                Im2Col(g, x.Slice(n * g.InputSize, g.InputSize), cols.Slice(n * g.Patches * g.PatchSize, g.Patches * g.PatchSize));
            a = cols;
        }
        Gemm.Multiply(false, false, images * g.Patches, filters, g.PatchSize, a, g.PatchSize, kernel, filters, y, filters, parallel: false);
        Activations.AddBiasAndApply(output, filters, bias, activation);
    }

    /// Forward for output rows [rowStart, rowEnd) of one image, with bias and activation as Forward: lets several threads share a single image.
    public static void ForwardRows(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters,
        Span<float> y, Span<float> cols, int rowStart, int rowEnd, ReadOnlySpan<float> packedKernel = default,
        ReadOnlySpan<float> bias = default, Activation activation = Activation.Linear) =>
        ForwardBand(g, x, kernel, filters, y.Slice(rowStart * g.OutWidth * filters), cols, rowStart, rowEnd, packedKernel, bias, activation);

    /// ForwardRows into a buffer that holds only the band of output rows [rowStart, rowEnd) (band[0] is row rowStart's first value).
    public static void ForwardBand(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters,
        Span<float> band, Span<float> cols, int rowStart, int rowEnd, ReadOnlySpan<float> packedKernel = default,
        ReadOnlySpan<float> bias = default, Activation activation = Activation.Linear)
    {
        int rows = (rowEnd - rowStart) * g.OutWidth;
        var output = band.Slice(0, rows * filters);
        if (ImplicitConvolution.Supports(g))
        {
            ImplicitConvolution.Forward(g, x, kernel, filters, band, 1, rowStart, rowEnd, packedKernel, bias, activation == Activation.Relu, yIsBand: true);
            if (activation is not (Activation.Relu or Activation.Linear)) Activations.Apply(output, filters, activation);
            return;
        }
        if (g.IsPointwise)
            Gemm.Multiply(false, false, rows, filters, g.PatchSize, x.Slice(rowStart * g.OutWidth * g.PatchSize), g.PatchSize, kernel, filters, output, filters, parallel: false);
        else
        {
            Im2Col(g, x, cols, rowStart, rowEnd);
            Gemm.Multiply(false, false, rows, filters, g.PatchSize, cols, g.PatchSize, kernel, filters, output, filters, parallel: false);
        }
        Activations.AddBiasAndApply(output, filters, bias, activation);
    }

    /// The backward pass of a layer whose input needs no gradient (a first layer): dK += im2col(x)^T dz and
    /// dBias += the column sums of dz, where dz = dy * f'(y) is made in place from the layer's output y
    /// (skipped for Linear, or when dy is already that). It runs a few output rows at a time, so each
    /// block of dy, y and im2col rows is used while it is in cache: for naani-128's first layer, dy is
    /// 2 MB per image, and separate passes (activation, bias, im2col, GEMM) would each go to memory.
    /// cols is im2col scratch: blocks are sized to fit it (one image's rows are enough).
    public static void KernelGradientOnly(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Activation activation,
        int filters, Span<float> dy, Span<float> dKernel, Span<float> dBias, Span<float> cols, int images)
    {
        if (g.IsPointwise) throw new ArgumentException("A pointwise convolution has no im2col rows; use Backward.");
        const int Budget = 65536;   // values of im2col rows per block: with dz's, they stay in L2
        int imageValues = g.Patches * g.PatchSize;
        // Small images (mnist's 24x24 outputs of 5x5 patches) go several whole images per block, large
        // ones a band of output rows at a time.
        if (cols.Length < Math.Min(imageValues, g.OutWidth * g.PatchSize))
            throw new ArgumentException($"KernelGradientOnly needs im2col scratch for at least a row of outputs ({g.OutWidth * g.PatchSize} values); got {cols.Length}.");
        int imagesPerBlock = imageValues <= Budget / 2 ? Math.Max(1, Math.Min(images, Math.Min(Budget, cols.Length) / imageValues)) : 1;
        int rowsPerBlock = imagesPerBlock > 1 ? g.OutHeight : Math.Clamp(Budget / (g.OutWidth * g.PatchSize), 1, g.OutHeight);
        for (int n0 = 0; n0 < images; n0 += imagesPerBlock)
        {
            int count = Math.Min(imagesPerBlock, images - n0);
            for (int r0 = 0; r0 < g.OutHeight; r0 += rowsPerBlock)
            {
                int r1 = Math.Min(g.OutHeight, r0 + rowsPerBlock), pixels = count * (r1 - r0) * g.OutWidth;
                int at = (n0 * g.Patches + r0 * g.OutWidth) * filters;   // the block's dy rows are consecutive
                var dz = dy.Slice(at, pixels * filters);
                if (activation != Activation.Linear) Activations.Backward(y.Slice(at, pixels * filters), dz, filters, activation);
                if (!dKernel.IsEmpty && DirectKernelGradient(g))
                {
                    // The bias gradient comes with it, from the dz vectors it loads anyway.
                    int dzValues = (r1 - r0) * g.OutWidth * filters;   // per image: with several images, r0 = 0 and r1 = OutHeight
                    for (int n = 0; n < count; n++)
                        KernelGradientRows(g, x.Slice((n0 + n) * g.InputSize, g.InputSize), dz.Slice(n * dzValues, dzValues), r0, r1, filters, dKernel, dBias);
                    continue;
                }
                if (!dBias.IsEmpty) Activations.SumRows(dz, filters, dBias, accumulate: true);
                if (dKernel.IsEmpty) continue;
                int rowValues = (r1 - r0) * g.OutWidth * g.PatchSize;
                for (int n = 0; n < count; n++)
                    Im2Col(g, x.Slice((n0 + n) * g.InputSize, g.InputSize), cols.Slice(n * rowValues, rowValues), r0, r1);
                Gemm.Multiply(true, false, g.PatchSize, filters, pixels, cols, g.PatchSize, dz, filters, dKernel, filters, accumulate: true, parallel: false);
            }
        }
    }

    /// Whether KernelGradientRows takes this layer: at most 45 values per kernel row (KernelWidth x Channels: a first layer's
    /// 3x3, 4x4 or 5x5 over RGB or gray, 7x7 over RGB), with AVX-512 or AVX2 (a last group of filters short of a whole
    /// vector is loaded and stored masked).
    public static bool DirectKernelGradient(in ConvGeometry g) =>
        g.KernelWidth * g.Channels <= 3 * MaxRowValues && (Wide || Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported);

    static readonly bool Wide = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    // The values of a kernel row KernelGradientRows takes in one pass, each an accumulator in a register beside the dz
    // vector, its broadcast and the bias's: 15 of AVX-512's 32 registers, 11 of AVX2's 16.
    static int MaxRowValues => Wide ? 15 : 11;

    /// dK += im2col(x)^T dz over the output rows [r0, r1) of one image (dz holds those rows), without im2col rows: for
    /// each kernel row, the values a pixel's patch takes from it (KernelWidth x Channels) lie side by side in x, and are
    /// broadcast against the pixel's dz (a vector of filters) into as many accumulators, which stay in registers for a
    /// row of pixels (a row of more values than MaxRowValues goes in two or three passes). Where im2col and a patch x
    /// filters x pixels GEMM ran (its 27 x 16 result far too small for the micro-kernels), cats-dogs-150's first layer
    /// spent 2.3x its forward pass on it. With dBias, the bias gradient (dz summed over the rows) is added to it as well,
    /// in the first pass.
    public static unsafe void KernelGradientRows(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> dz, int r0, int r1, int filters,
        Span<float> dKernel, Span<float> dBias = default)
    {
        if (!DirectKernelGradient(g))
            throw new ArgumentException($"KernelGradientRows needs at most {3 * MaxRowValues} values per kernel row and AVX2 or AVX-512; got {g.KernelWidth} x {g.Channels}.");
        if (r0 < 0 || r1 > g.OutHeight || r0 > r1)
            throw new ArgumentOutOfRangeException(nameof(r0), $"Output rows [{r0}, {r1}) are outside 0..{g.OutHeight}.");
        if (x.Length < g.InputSize || dz.Length < (r1 - r0) * g.OutWidth * filters || dKernel.Length < g.PatchSize * filters
            || (!dBias.IsEmpty && dBias.Length < filters))
            throw new ArgumentException("KernelGradientRows: x, dz, dKernel or dBias is smaller than the geometry needs.");
        int values = g.KernelWidth * g.Channels, passes = (values + MaxRowValues - 1) / MaxRowValues, size = (values + passes - 1) / passes;
        if (r0 == r1) return;
        // Padded left or right, the input rows the output rows read are first copied into a frame of zero columns, so that
        // every pixel's patch row lies side by side in memory (a pixel at the edge, value by value, cost as much as the
        // 14 inside it on small-32's 16-pixel rows). The frame's rows keep the image's numbering: row iy at frame + (iy - first) * width.
        var run = g;
        int first = Math.Max(0, r0 * g.StrideHeight - g.PadTop), end = Math.Min(g.InHeight, (r1 - 1) * g.StrideHeight + g.KernelHeight - g.PadTop);
        int frameWidth = (g.OutWidth - 1) * g.StrideWidth + g.KernelWidth;
        bool framed = g.PadLeft > 0 || frameWidth > g.InWidth;
        if (framed)
        {
            int c = g.Channels, rowValues = frameWidth * c, left = g.PadLeft * c, copied = Math.Min(g.InWidth * c, rowValues - left);
            var frame = kernelGradientFrame;
            if (frame is null || frame.Length < Math.Max(1, end - first) * rowValues) kernelGradientFrame = frame = new float[Math.Max(1, end - first) * rowValues];
            for (int iy = first; iy < end; iy++)
            {
                var row = frame.AsSpan((iy - first) * rowValues, rowValues);
                row.Slice(0, left).Clear();
                x.Slice(iy * g.InWidth * c, copied).CopyTo(row.Slice(left));
                row.Slice(left + copied).Clear();
            }
            run = g with { InWidth = frameWidth, PadLeft = 0 };
        }
        fixed (float* px = x) fixed (float* pf = kernelGradientFrame) fixed (float* pz = dz) fixed (float* pk = dKernel) fixed (float* pb = dBias)
        {
            float* image = framed ? pf - (long)first * frameWidth * g.Channels : px;
            for (int v0 = 0; v0 < values; v0 += size)
            {
                int count = Math.Min(size, values - v0);
                float* bias = v0 == 0 ? pb : null;
                if (Wide) KernelGradientRows<Vector512<float>, Lanes512>(count, run, image, pz, r0, r1, filters, pk, bias, v0);
                else KernelGradientRows<Vector256<float>, Lanes256>(count, run, image, pz, r0, r1, filters, pk, bias, v0);
            }
        }
    }

    [ThreadStatic] static float[]? kernelGradientFrame;

    // One pass of `count` values of each kernel row, from value v0, compiled for each count (N) with just its accumulators.
    static unsafe void KernelGradientRows<TV, L>(int count, in ConvGeometry g, float* x, float* dz, int r0, int r1, int filters, float* dK, float* dBias, int v0)
        where TV : unmanaged where L : ILanes<TV>
    {
        switch (count)
        {
            case 1: KernelGradientRows<TV, L, V1>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 2: KernelGradientRows<TV, L, V2>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 3: KernelGradientRows<TV, L, V3>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 4: KernelGradientRows<TV, L, V4>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 5: KernelGradientRows<TV, L, V5>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 6: KernelGradientRows<TV, L, V6>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 7: KernelGradientRows<TV, L, V7>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 8: KernelGradientRows<TV, L, V8>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 9: KernelGradientRows<TV, L, V9>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 10: KernelGradientRows<TV, L, V10>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 11: KernelGradientRows<TV, L, V11>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 12: KernelGradientRows<TV, L, V12>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 13: KernelGradientRows<TV, L, V13>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 14: KernelGradientRows<TV, L, V14>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            case 15: KernelGradientRows<TV, L, V15>(g, x, dz, r0, r1, filters, dK, dBias, v0); break;
            default: throw new ArgumentOutOfRangeException(nameof(count), $"KernelGradientRows takes 1 to 15 values of a kernel row at a time; got {count}.");
        }
    }

    interface IValueCount
    {
        static abstract int Count { get; }
    }

    readonly struct V1 : IValueCount { public static int Count => 1; }
    readonly struct V2 : IValueCount { public static int Count => 2; }
    readonly struct V3 : IValueCount { public static int Count => 3; }
    readonly struct V4 : IValueCount { public static int Count => 4; }
    readonly struct V5 : IValueCount { public static int Count => 5; }
    readonly struct V6 : IValueCount { public static int Count => 6; }
    readonly struct V7 : IValueCount { public static int Count => 7; }
    readonly struct V8 : IValueCount { public static int Count => 8; }
    readonly struct V9 : IValueCount { public static int Count => 9; }
    readonly struct V10 : IValueCount { public static int Count => 10; }
    readonly struct V11 : IValueCount { public static int Count => 11; }
    readonly struct V12 : IValueCount { public static int Count => 12; }
    readonly struct V13 : IValueCount { public static int Count => 13; }
    readonly struct V14 : IValueCount { public static int Count => 14; }
    readonly struct V15 : IValueCount { public static int Count => 15; }

    static unsafe void KernelGradientRows<TV, L, N>(in ConvGeometry g, float* x, float* dz, int r0, int r1, int filters, float* dK, float* dBias, int v0)
        where TV : unmanaged where L : ILanes<TV> where N : IValueCount
    {
        // No padding left or right here: KernelGradientRows framed the rows, so every pixel's patch row lies inside them.
        int c = g.Channels, inRow = g.InWidth * c, rowValues = g.KernelWidth * c, step = g.StrideWidth * c, outW = g.OutWidth;
        float* dzEnd = dz + (long)(r1 - r0) * outW * filters;
        // A second set of accumulators (b), where the registers hold both (with two dz vectors and the bias's sums): up to
        // 14 values a pass with AVX-512, 6 with AVX2. It takes the next group of filters where there is a whole one, so that
        // each value of x is broadcast once for two FMAs (one Zen 5 core, 64 images: mnist-baseline's 5x5x1x32 0.44 -> 0.26
        // ms, cats-dogs-150's 3x3x3x32 18 -> 13.6); else every second pixel, which covers the FMAs' latency where a pass has
        // few values (5x5 or 3x3 over one channel).
        // (A constant for each compiled width: without a second set, its accumulators are never live, which matters with
        // AVX2's 16 registers.)
        bool second = 2 * N.Count + 4 <= (L.Count == 16 ? 32 : 16);
        for (int ky = 0; ky < g.KernelHeight; ky++)
            for (int f0 = 0; f0 < filters;)
            {
                bool two = second && filters - f0 >= 2 * L.Count;
                // A last group of fewer filters than lanes (small-32's 10) is loaded and stored masked.
                bool part = filters - f0 < L.Count;
                TV m = L.Mask(filters - f0);
                float* k = dK + ((long)ky * rowValues + v0) * filters + f0;   // the rows of dK this pass feeds, at filter f0
                float* bias = ky == 0 && dBias != null ? dBias + f0 : null;   // the first kernel row's pass sums dz too
                // The sums over all the rows stay in registers, added to dK (and dBias) once at the end (dK's rows
                // loaded and stored as they came, masked for a partial group, cost a store-forwarding stall each).
                TV ab = L.Zero, ab2 = L.Zero, a0 = L.Zero, a1 = L.Zero, a2 = L.Zero, a3 = L.Zero, a4 = L.Zero, a5 = L.Zero, a6 = L.Zero, a7 = L.Zero, a8 = L.Zero, a9 = L.Zero, a10 = L.Zero, a11 = L.Zero, a12 = L.Zero, a13 = L.Zero, a14 = L.Zero;
                TV b0 = L.Zero, b1 = L.Zero, b2 = L.Zero, b3 = L.Zero, b4 = L.Zero, b5 = L.Zero, b6 = L.Zero, b7 = L.Zero, b8 = L.Zero, b9 = L.Zero, b10 = L.Zero, b11 = L.Zero, b12 = L.Zero, b13 = L.Zero, b14 = L.Zero;
                for (int oy = r0; oy < r1; oy++)
                {
                    int iy = oy * g.StrideHeight + ky - g.PadTop;
                    float* d = dz + (long)(oy - r0) * outW * filters + f0;
                    if (iy < 0 || iy >= g.InHeight)
                    {
                        if (bias == null) continue;
                        for (int o = 0; o < outW; o++)
                        {
                            ab = L.Add(ab, GetDz<TV, L>(part, m, d + (long)o * filters, dzEnd));
                            if (two) ab2 = L.Add(ab2, L.Load(d + (long)o * filters + L.Count));
                        }
                        continue;
                    }
                    // The pixels whose dz vector lies wholly inside dz (with a partial group, its lanes past the group read the
                    // next pixel's values, which land in lanes never stored); the last pixel of dz may not (GetDz, below).
                    int safeEnd = part && d + (long)(outW - 1) * filters + L.Count > dzEnd ? outW - 1 : outW;
                    float* xs = x + (long)iy * inRow + v0, dp = d;
                    int ox = 0;
                    if (two)
                        for (; ox < safeEnd; ox++, xs += step, dp += filters)
                        {
                            TV dv = L.Load(dp), dw = L.Load(dp + L.Count);
                            ab = L.Add(ab, dv);
                            ab2 = L.Add(ab2, dw);
                            if (N.Count > 0) { TV t = L.Broadcast(xs[0]); a0 = L.Fma(t, dv, a0); b0 = L.Fma(t, dw, b0); }
                            if (N.Count > 1) { TV t = L.Broadcast(xs[1]); a1 = L.Fma(t, dv, a1); b1 = L.Fma(t, dw, b1); }
                            if (N.Count > 2) { TV t = L.Broadcast(xs[2]); a2 = L.Fma(t, dv, a2); b2 = L.Fma(t, dw, b2); }
                            if (N.Count > 3) { TV t = L.Broadcast(xs[3]); a3 = L.Fma(t, dv, a3); b3 = L.Fma(t, dw, b3); }
                            if (N.Count > 4) { TV t = L.Broadcast(xs[4]); a4 = L.Fma(t, dv, a4); b4 = L.Fma(t, dw, b4); }
                            if (N.Count > 5) { TV t = L.Broadcast(xs[5]); a5 = L.Fma(t, dv, a5); b5 = L.Fma(t, dw, b5); }
                            if (N.Count > 6) { TV t = L.Broadcast(xs[6]); a6 = L.Fma(t, dv, a6); b6 = L.Fma(t, dw, b6); }
                            if (N.Count > 7) { TV t = L.Broadcast(xs[7]); a7 = L.Fma(t, dv, a7); b7 = L.Fma(t, dw, b7); }
                            if (N.Count > 8) { TV t = L.Broadcast(xs[8]); a8 = L.Fma(t, dv, a8); b8 = L.Fma(t, dw, b8); }
                            if (N.Count > 9) { TV t = L.Broadcast(xs[9]); a9 = L.Fma(t, dv, a9); b9 = L.Fma(t, dw, b9); }
                            if (N.Count > 10) { TV t = L.Broadcast(xs[10]); a10 = L.Fma(t, dv, a10); b10 = L.Fma(t, dw, b10); }
                            if (N.Count > 11) { TV t = L.Broadcast(xs[11]); a11 = L.Fma(t, dv, a11); b11 = L.Fma(t, dw, b11); }
                            if (N.Count > 12) { TV t = L.Broadcast(xs[12]); a12 = L.Fma(t, dv, a12); b12 = L.Fma(t, dw, b12); }
                            if (N.Count > 13) { TV t = L.Broadcast(xs[13]); a13 = L.Fma(t, dv, a13); b13 = L.Fma(t, dw, b13); }
                        }
                    else if (second)
                        for (; ox + 1 < safeEnd; ox += 2, xs += 2 * step, dp += 2 * filters)
                        {
                            TV dv = L.Load(dp), dw = L.Load(dp + filters);
                            ab = L.Add(ab, L.Add(dv, dw));
                            Pixel<TV, L, N>(xs, dv, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11, ref a12, ref a13, ref a14);
                            Pixel<TV, L, N>(xs + step, dw, ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, ref b12, ref b13, ref b14);
                        }
                    for (; ox < outW; ox++, xs += step, dp += filters)
                    {
                        TV dv = ox < safeEnd ? L.Load(dp) : GetDz<TV, L>(part, m, dp, dzEnd);   // the last pixel of dz masked
                        ab = L.Add(ab, dv);
                        Pixel<TV, L, N>(xs, dv, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11, ref a12, ref a13, ref a14);
                    }
                }
                if (N.Count > 0) Flush<TV, L>(part, m, two, second, k + 0 * filters, a0, b0);
                if (N.Count > 1) Flush<TV, L>(part, m, two, second, k + 1 * filters, a1, b1);
                if (N.Count > 2) Flush<TV, L>(part, m, two, second, k + 2 * filters, a2, b2);
                if (N.Count > 3) Flush<TV, L>(part, m, two, second, k + 3 * filters, a3, b3);
                if (N.Count > 4) Flush<TV, L>(part, m, two, second, k + 4 * filters, a4, b4);
                if (N.Count > 5) Flush<TV, L>(part, m, two, second, k + 5 * filters, a5, b5);
                if (N.Count > 6) Flush<TV, L>(part, m, two, second, k + 6 * filters, a6, b6);
                if (N.Count > 7) Flush<TV, L>(part, m, two, second, k + 7 * filters, a7, b7);
                if (N.Count > 8) Flush<TV, L>(part, m, two, second, k + 8 * filters, a8, b8);
                if (N.Count > 9) Flush<TV, L>(part, m, two, second, k + 9 * filters, a9, b9);
                if (N.Count > 10) Flush<TV, L>(part, m, two, second, k + 10 * filters, a10, b10);
                if (N.Count > 11) Flush<TV, L>(part, m, two, second, k + 11 * filters, a11, b11);
                if (N.Count > 12) Flush<TV, L>(part, m, two, second, k + 12 * filters, a12, b12);
                if (N.Count > 13) Flush<TV, L>(part, m, two, second, k + 13 * filters, a13, b13);
                if (N.Count > 14) Flush<TV, L>(part, m, two, second, k + 14 * filters, a14, b14);
                if (bias != null)
                {
                    Put<TV, L>(part, m, L.Add(Get<TV, L>(part, m, bias), ab), bias);
                    if (two) L.Store(L.Add(L.Load(bias + L.Count), ab2), bias + L.Count);
                }
                f0 += two ? 2 * L.Count : L.Count;
            }
    }

    // dK's row += the pass's sums: a for the group at `row`; with two groups, b for the next one; with the pixels in pairs,
    // a + b. (A kernel row's 15th value never has a second set: b14 stays 0.)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Flush<TV, L>(bool part, TV mask, bool two, bool second, float* row, TV a, TV b) where TV : unmanaged where L : ILanes<TV>
    {
        if (two) L.Store(L.Add(L.Load(row + L.Count), b), row + L.Count);
        else if (second) a = L.Add(a, b);
        Put<TV, L>(part, mask, L.Add(Get<TV, L>(part, mask, row), a), row);
    }

    // One pixel into a set of accumulators: a[v] += x[v] dz for the pass's N values.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Pixel<TV, L, N>(float* xs, TV dv, ref TV a0, ref TV a1, ref TV a2, ref TV a3, ref TV a4, ref TV a5, ref TV a6, ref TV a7, ref TV a8, ref TV a9, ref TV a10, ref TV a11, ref TV a12, ref TV a13, ref TV a14)
        where TV : unmanaged where L : ILanes<TV> where N : IValueCount
    {
        if (N.Count > 0) a0 = L.Fma(L.Broadcast(xs[0]), dv, a0);
        if (N.Count > 1) a1 = L.Fma(L.Broadcast(xs[1]), dv, a1);
        if (N.Count > 2) a2 = L.Fma(L.Broadcast(xs[2]), dv, a2);
        if (N.Count > 3) a3 = L.Fma(L.Broadcast(xs[3]), dv, a3);
        if (N.Count > 4) a4 = L.Fma(L.Broadcast(xs[4]), dv, a4);
        if (N.Count > 5) a5 = L.Fma(L.Broadcast(xs[5]), dv, a5);
        if (N.Count > 6) a6 = L.Fma(L.Broadcast(xs[6]), dv, a6);
        if (N.Count > 7) a7 = L.Fma(L.Broadcast(xs[7]), dv, a7);
        if (N.Count > 8) a8 = L.Fma(L.Broadcast(xs[8]), dv, a8);
        if (N.Count > 9) a9 = L.Fma(L.Broadcast(xs[9]), dv, a9);
        if (N.Count > 10) a10 = L.Fma(L.Broadcast(xs[10]), dv, a10);
        if (N.Count > 11) a11 = L.Fma(L.Broadcast(xs[11]), dv, a11);
        if (N.Count > 12) a12 = L.Fma(L.Broadcast(xs[12]), dv, a12);
        if (N.Count > 13) a13 = L.Fma(L.Broadcast(xs[13]), dv, a13);
        if (N.Count > 14) a14 = L.Fma(L.Broadcast(xs[14]), dv, a14);
    }

    // A pixel's dz: with a partial group of filters, its vector runs into the next pixel's values, which land in lanes that
    // are never stored; only a vector that would run past the end of dz is loaded masked (a masked load costs twice a
    // plain one here: small-32's first layer, 10 filters, took 0.44 ms per 64 images masked throughout).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe TV GetDz<TV, L>(bool part, TV mask, float* p, float* end) where TV : unmanaged where L : ILanes<TV> =>
        part && p + L.Count > end ? L.LoadMasked(p, mask) : L.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe TV Get<TV, L>(bool part, TV mask, float* p) where TV : unmanaged where L : ILanes<TV> => part ? L.LoadMasked(p, mask) : L.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Put<TV, L>(bool part, TV mask, TV v, float* p) where TV : unmanaged where L : ILanes<TV>
    {
        if (part) L.StoreMasked(v, p, mask);
        else L.Store(v, p);
    }

    /// Backward for a run of consecutive images. dK += cols^T dy (skipped when dKernel is empty); dx = col2im(dy K^T) (skipped when dx is empty).
    /// cols is scratch of the same size as in Forward; when colsHoldIm2Col, it still holds im2col(x) from the
    /// forward pass and is not recomputed. Either way it is overwritten.
    public static void Backward(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters,
        ReadOnlySpan<float> dy, Span<float> dKernel, Span<float> dx, Span<float> cols, int images = 1, bool colsHoldIm2Col = false)
    {
        int rows = images * g.Patches, patchValues = g.Patches * g.PatchSize;
        ReadOnlySpan<float> a = x;
        if (!g.IsPointwise && colsHoldIm2Col) a = cols;
        else if (!g.IsPointwise && !dKernel.IsEmpty)   // only the kernel gradient reads im2col(x)
        {
            for (int n = 0; n < images; n++)
                Im2Col(g, x.Slice(n * g.InputSize, g.InputSize), cols.Slice(n * patchValues, patchValues));
            a = cols;
        }
        // in the forward pass: y = a K   so   dK += a^T dy   and   da = dy K^T
        if (!dKernel.IsEmpty)   // empty when the layer is frozen: its kernel gradient would go unused
            Gemm.Multiply(true, false, g.PatchSize, filters, rows, a, g.PatchSize, dy, filters, dKernel, filters, accumulate: true, parallel: false);
        if (dx.IsEmpty) return;
        if (g.IsPointwise)
        {
            Gemm.Multiply(false, true, rows, g.PatchSize, filters, dy, filters, kernel, filters, dx, g.PatchSize, parallel: false);
            return;
        }
        Gemm.Multiply(false, true, rows, g.PatchSize, filters, dy, filters, kernel, filters, cols, g.PatchSize, parallel: false);
        dx.Slice(0, images * g.InputSize).Clear();
        for (int n = 0; n < images; n++)
            Col2Im(g, cols.Slice(n * patchValues, patchValues), dx.Slice(n * g.InputSize, g.InputSize));
    }
}
