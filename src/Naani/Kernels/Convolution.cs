using System.Runtime.Intrinsics;

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
        fixed (float* pdx = dx) fixed (float* pc = dcols)
        {
            for (int oh = 0; oh < outH; oh++)
                for (int i = 0; i < kh; i++)
                {
                    int ih = oh * sh + i - pt;
                    if ((uint)ih >= (uint)inH) continue;
                    float* src = pc + (long)oh * outW * patch + i * rowRun;
                    float* row = pdx + (long)ih * inW * c;
                    for (int ow = 0; ow < outW; ow++, src += patch)
                    {
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
        if (Vector512.IsHardwareAccelerated)
            for (; t <= count - 16; t += 16) Vector512.Store(Vector512.Load(src + t), dst + t);
        for (; t <= count - 8; t += 8) Vector256.Store(Vector256.Load(src + t), dst + t);
        for (; t < count; t++) dst[t] = src[t];
    }

    static unsafe void Clear(float* dst, int count)
    {
        for (int t = 0; t < count; t++) dst[t] = 0;
    }

    // dst += src
    static unsafe void Add(float* src, float* dst, int count)
    {
        int t = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; t <= count - 16; t += 16) Vector512.Store(Vector512.Load(dst + t) + Vector512.Load(src + t), dst + t);
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
                if (!dKernel.IsEmpty && DirectKernelGradient(g, filters))
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

    /// Whether KernelGradientRows takes this layer: 9 values per kernel row (3x3 over RGB, a first layer) and filters
    /// in whole vectors.
    public static bool DirectKernelGradient(in ConvGeometry g, int filters) =>
        g.KernelWidth * g.Channels == 9 && (Vector512.IsHardwareAccelerated ? filters % 16 == 0 : Vector256.IsHardwareAccelerated && filters % 8 == 0);

    /// dK += im2col(x)^T dz over the output rows [r0, r1) of one image (dz holds those rows), without im2col rows: for
    /// each kernel row, the 9 values a pixel's patch takes from it lie side by side in x, and are broadcast against the
    /// pixel's dz (a vector of filters) into 9 accumulators that stay in registers for a row of pixels. Where im2col
    /// and a 27 x filters x pixels GEMM ran (its 27 x 16 result far too small for the micro-kernels), cats-dogs-150's
    /// first layer spent 2.3x its forward pass on it. With dBias, the bias gradient (dz summed over the rows) is added
    /// to it as well, in the pass of the first kernel row.
    public static unsafe void KernelGradientRows(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> dz, int r0, int r1, int filters,
        Span<float> dKernel, Span<float> dBias = default)
    {
        if (!DirectKernelGradient(g, filters))
            throw new ArgumentException($"KernelGradientRows needs 9 values per kernel row and filters in whole vectors; got {g.KernelWidth} x {g.Channels} and {filters}.");
        if (r0 < 0 || r1 > g.OutHeight || r0 > r1)
            throw new ArgumentOutOfRangeException(nameof(r0), $"Output rows [{r0}, {r1}) are outside 0..{g.OutHeight}.");
        if (x.Length < g.InputSize || dz.Length < (r1 - r0) * g.OutWidth * filters || dKernel.Length < g.PatchSize * filters
            || (!dBias.IsEmpty && dBias.Length < filters))
            throw new ArgumentException("KernelGradientRows: x, dz, dKernel or dBias is smaller than the geometry needs.");
        fixed (float* px = x) fixed (float* pz = dz) fixed (float* pk = dKernel) fixed (float* pb = dBias)
        {
            if (Vector512.IsHardwareAccelerated) KernelGradientRows<Vector512<float>, Lanes512>(g, px, pz, r0, r1, filters, pk, pb);
            else KernelGradientRows<Vector256<float>, Lanes256>(g, px, pz, r0, r1, filters, pk, pb);
        }
    }

    static unsafe void KernelGradientRows<TV, L>(in ConvGeometry g, float* x, float* dz, int r0, int r1, int filters, float* dK, float* dBias)
        where TV : unmanaged where L : ILanes<TV>
    {
        int c = g.Channels, sw = g.StrideWidth, inRow = g.InWidth * c;
        // The columns whose patches lie inside the image; the others (padding) are done value by value.
        int oxLo = Math.Min(g.OutWidth, (g.PadLeft + sw - 1) / sw);
        int oxHi = Math.Max(oxLo, Math.Min(g.OutWidth, (g.InWidth - g.KernelWidth + g.PadLeft) / sw + 1));
        for (int ky = 0; ky < g.KernelHeight; ky++)
            for (int f0 = 0; f0 < filters; f0 += L.Count)
            {
                float* k = dK + (long)ky * 9 * filters + f0;   // the 9 rows of dK this kernel row feeds, at filter f0
                float* bias = ky == 0 && dBias != null ? dBias + f0 : null;   // the first kernel row's pass sums dz too
                for (int oy = r0; oy < r1; oy++)
                {
                    int iy = oy * g.StrideHeight + ky - g.PadTop;
                    float* d = dz + (long)(oy - r0) * g.OutWidth * filters + f0;
                    if (iy < 0 || iy >= g.InHeight)
                    {
                        if (bias == null) continue;
                        TV sum = L.Load(bias);
                        for (int ox = 0; ox < g.OutWidth; ox++) sum = L.Add(sum, L.Load(d + (long)ox * filters));
                        L.Store(sum, bias);
                        continue;
                    }
                    float* xr = x + (long)iy * inRow - g.PadLeft * c;
                    TV ab = L.Zero, a0 = L.Load(k), a1 = L.Load(k + filters), a2 = L.Load(k + 2 * filters), a3 = L.Load(k + 3 * filters),
                        a4 = L.Load(k + 4 * filters), a5 = L.Load(k + 5 * filters), a6 = L.Load(k + 6 * filters),
                        a7 = L.Load(k + 7 * filters), a8 = L.Load(k + 8 * filters);
                    for (int ox = oxLo; ox < oxHi; ox++)
                    {
                        float* xs = xr + ox * sw * c;
                        TV dv = L.Load(d + (long)ox * filters);
                        ab = L.Add(ab, dv);
                        a0 = L.Fma(L.Broadcast(xs[0]), dv, a0); a1 = L.Fma(L.Broadcast(xs[1]), dv, a1); a2 = L.Fma(L.Broadcast(xs[2]), dv, a2);
                        a3 = L.Fma(L.Broadcast(xs[3]), dv, a3); a4 = L.Fma(L.Broadcast(xs[4]), dv, a4); a5 = L.Fma(L.Broadcast(xs[5]), dv, a5);
                        a6 = L.Fma(L.Broadcast(xs[6]), dv, a6); a7 = L.Fma(L.Broadcast(xs[7]), dv, a7); a8 = L.Fma(L.Broadcast(xs[8]), dv, a8);
                    }
                    L.Store(a0, k); L.Store(a1, k + filters); L.Store(a2, k + 2 * filters); L.Store(a3, k + 3 * filters);
                    L.Store(a4, k + 4 * filters); L.Store(a5, k + 5 * filters); L.Store(a6, k + 6 * filters);
                    L.Store(a7, k + 7 * filters); L.Store(a8, k + 8 * filters);
                    if (bias != null) L.Store(L.Add(L.Load(bias), ab), bias);
                    for (int ox = 0; ox < g.OutWidth; ox++)
                    {
                        if (ox == oxLo) ox = oxHi;
                        if (ox >= g.OutWidth) break;
                        TV dv = L.Load(d + (long)ox * filters);
                        if (bias != null) L.Store(L.Add(L.Load(bias), dv), bias);
                        for (int kx = 0; kx < g.KernelWidth; kx++)
                        {
                            int ix = ox * sw + kx - g.PadLeft;
                            if (ix < 0 || ix >= g.InWidth) continue;
                            for (int ch = 0; ch < c; ch++)
                            {
                                float* row = k + (long)(kx * c + ch) * filters;
                                L.Store(L.Fma(L.Broadcast(xr[(ox * sw + kx) * c + ch]), dv, L.Load(row)), row);
                            }
                        }
                    }
                }
            }
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
        else if (!g.IsPointwise)
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
