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
                if (!dBias.IsEmpty) Activations.SumRows(dz, filters, dBias, accumulate: true);
                if (dKernel.IsEmpty) continue;
                int rowValues = (r1 - r0) * g.OutWidth * g.PatchSize;
                for (int n = 0; n < count; n++)
                    Im2Col(g, x.Slice((n0 + n) * g.InputSize, g.InputSize), cols.Slice(n * rowValues, rowValues), r0, r1);
                Gemm.Multiply(true, false, g.PatchSize, filters, pixels, cols, g.PatchSize, dz, filters, dKernel, filters, accumulate: true, parallel: false);
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
