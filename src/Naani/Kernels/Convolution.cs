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
    public static void Im2Col(in ConvGeometry g, ReadOnlySpan<float> x, Span<float> cols)
    {
        int c = g.Channels, rowLength = g.PatchSize;
        for (int oh = 0; oh < g.OutHeight; oh++)
        {
            for (int ow = 0; ow < g.OutWidth; ow++)
            {
                var row = cols.Slice((oh * g.OutWidth + ow) * rowLength, rowLength);
                int offset = 0;
                for (int i = 0; i < g.KernelHeight; i++)
                {
                    int ih = oh * g.StrideHeight + i - g.PadTop;
                    if ((uint)ih >= (uint)g.InHeight)
                    {
                        row.Slice(offset, g.KernelWidth * c).Clear();
                        offset += g.KernelWidth * c;
                        continue;
                    }
                    int iw0 = ow * g.StrideWidth - g.PadLeft;
                    // Copy the in-bounds run of this kernel row in one piece (it is contiguous in NHWC).
                    int jStart = Math.Max(0, -iw0), jEnd = Math.Min(g.KernelWidth, g.InWidth - iw0);
                    if (jStart > 0) row.Slice(offset, jStart * c).Clear();
                    int run = (jEnd - jStart) * c;
                    if (run >= 16)
                        x.Slice((ih * g.InWidth + iw0 + jStart) * c, run).CopyTo(row.Slice(offset + jStart * c));
                    else
                    {
                        // Few channels (e.g. a grayscale image): a plain loop beats a memmove call.
                        int src = (ih * g.InWidth + iw0 + jStart) * c, dst = offset + jStart * c;
                        for (int t = 0; t < run; t++) row[dst + t] = x[src + t];
                    }
                    int tail = g.KernelWidth - Math.Max(jEnd, jStart);
                    if (tail > 0) row.Slice(offset + Math.Max(jEnd, jStart) * c, tail * c).Clear();
                    offset += g.KernelWidth * c;
                }
            }
        }
    }

    // The adjoint of Im2Col: in the forward pass x[...] was copied into cols[p, ...], so now
    // dx[...] += dcols[p, ...]. Padding positions received no input and give nothing back.
    public static void Col2Im(in ConvGeometry g, ReadOnlySpan<float> dcols, Span<float> dx)
    {
        int c = g.Channels, rowLength = g.PatchSize;
        for (int oh = 0; oh < g.OutHeight; oh++)
        {
            for (int ow = 0; ow < g.OutWidth; ow++)
            {
                var row = dcols.Slice((oh * g.OutWidth + ow) * rowLength, rowLength);
                for (int i = 0; i < g.KernelHeight; i++)
                {
                    int ih = oh * g.StrideHeight + i - g.PadTop;
                    if ((uint)ih >= (uint)g.InHeight) continue;
                    int iw0 = ow * g.StrideWidth - g.PadLeft;
                    int jStart = Math.Max(0, -iw0), jEnd = Math.Min(g.KernelWidth, g.InWidth - iw0);
                    if (jEnd <= jStart) continue;
                    Activations.AddInPlace(
                        dx.Slice((ih * g.InWidth + iw0 + jStart) * c, (jEnd - jStart) * c),
                        row.Slice((i * g.KernelWidth + jStart) * c, (jEnd - jStart) * c));
                }
            }
        }
    }

    /// Forward for a run of consecutive images: y = im2col(x) * K, one GEMM with images * Patches rows.
    /// cols must hold images * Patches * PatchSize values (unused when pointwise).
    public static void Forward(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters,
        Span<float> y, Span<float> cols, int images = 1)
    {
        ReadOnlySpan<float> a = x;
        if (!g.IsPointwise)
        {
            for (int n = 0; n < images; n++)
                Im2Col(g, x.Slice(n * g.InputSize, g.InputSize), cols.Slice(n * g.Patches * g.PatchSize, g.Patches * g.PatchSize));
            a = cols;
        }
        Gemm.Multiply(false, false, images * g.Patches, filters, g.PatchSize, a, g.PatchSize, kernel, filters, y, filters, parallel: false);
    }

    /// Backward for a run of consecutive images. dK += cols^T dy; dx = col2im(dy K^T) (skipped when dx is empty).
    /// cols is scratch of the same size as in Forward (im2col is recomputed rather than kept).
    public static void Backward(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters,
        ReadOnlySpan<float> dy, Span<float> dKernel, Span<float> dx, Span<float> cols, int images = 1)
    {
        int rows = images * g.Patches, patchValues = g.Patches * g.PatchSize;
        ReadOnlySpan<float> a = x;
        if (!g.IsPointwise)
        {
            for (int n = 0; n < images; n++)
                Im2Col(g, x.Slice(n * g.InputSize, g.InputSize), cols.Slice(n * patchValues, patchValues));
            a = cols;
        }
        // in the forward pass: y = a K   so   dK += a^T dy   and   da = dy K^T
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
