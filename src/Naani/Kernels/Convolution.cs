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
                    if (jEnd > jStart)
                        x.Slice((ih * g.InWidth + iw0 + jStart) * c, (jEnd - jStart) * c).CopyTo(row.Slice(offset + jStart * c));
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

    /// Forward for one image: y_n = im2col(x_n) * K. cols must hold Patches * PatchSize values (unused when pointwise).
    public static void Forward(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters,
        Span<float> y, Span<float> cols)
    {
        ReadOnlySpan<float> a = x;
        if (!g.IsPointwise)
        {
            Im2Col(g, x, cols);
            a = cols;
        }
        Gemm.Multiply(false, false, g.Patches, filters, g.PatchSize, a, g.PatchSize, kernel, filters, y, filters, parallel: false);
    }

    /// Backward for one image. dK += cols^T dy_n; dx_n = col2im(dy_n K^T) (skipped when dx is empty).
    /// cols must still hold im2col(x_n) unless pointwise (it is recomputed here, so any buffer will do).
    public static void Backward(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> kernel, int filters,
        ReadOnlySpan<float> dy, Span<float> dKernel, Span<float> dx, Span<float> cols)
    {
        ReadOnlySpan<float> a = x;
        if (!g.IsPointwise)
        {
            Im2Col(g, x, cols);
            a = cols;
        }
        // in the forward pass: y = a K   so   dK += a^T dy   and   da = dy K^T
        Gemm.Multiply(true, false, g.PatchSize, filters, g.Patches, a, g.PatchSize, dy, filters, dKernel, filters, accumulate: true, parallel: false);
        if (dx.IsEmpty) return;
        if (g.IsPointwise)
        {
            Gemm.Multiply(false, true, g.Patches, g.PatchSize, filters, dy, filters, kernel, filters, dx, g.PatchSize, parallel: false);
            return;
        }
        Gemm.Multiply(false, true, g.Patches, g.PatchSize, filters, dy, filters, kernel, filters, cols, g.PatchSize, parallel: false);
        dx.Clear();
        Col2Im(g, cols, dx);
    }
}
