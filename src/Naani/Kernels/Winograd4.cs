using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Naani.Kernels;

// Winograd F(4x4, 3x3): 6x6 input tiles give 4x4 outputs with 36 multiply-adds per channel and filter instead of
// 144 (4x fewer; F(2x2, 3x3) in Winograd.cs saves 2.25x). Same structure as Winograd.cs: transforms vectorized over
// channels or filters (16 at a time with AVX-512 where the count allows, else 8; written once over ILanes), the 36
// elementwise stages as GEMMs on blocks of tiles; the kernel gradient accumulates V^T (A dY A^T) and ends with
// G^T dU G, as in Winograd.cs. The interpolation points
// 0, +-1, +-2 put 4, 5 and 8 in the transforms and 1/6, 1/24 in G, so the float32 error is larger than F(2x2)'s
// (measured in WinogradTests: a few 1e-6 of the pre-activation scale, against 1e-6 for F(2x2)):
//
//   B^T = | 4  0 -5  0  1  0 |   G = |  1/4     0     0  |   A^T = | 1  1  1  1  1  0 |
//         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |         | 0  1 -1  2 -2  0 |
//         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |         | 0  1  1  4  4  0 |
//         | 0 -2 -1  2  1  0 |       |  1/24  1/12  1/6  |         | 0  1 -1  8 -8  1 |
//         | 0  2 -1 -2  1  0 |       |  1/24 -1/12  1/6  |
//         | 0  4  0 -5  0  1 |       |  0     0     1    |
[SkipLocalsInit]
public static unsafe class Winograd4
{
    /// Whether F(4x4, 3x3) pays over F(2x2, 3x3) here: outputs at least 16 x 16 (few ragged tiles, and enough tiles
    /// per image to read each of the 36 transformed kernel matrices once for many), on top of Winograd.Pays.
    /// NAANI_WINOGRAD=2 keeps every layer on F(2x2, 3x3).
    public static bool Pays(in ConvGeometry g, int filters) =>
        Winograd.Pays(g, filters) && !OnlyTwo && g.OutHeight >= 16 && g.OutWidth >= 16;

    static readonly bool OnlyTwo = Environment.GetEnvironmentVariable("NAANI_WINOGRAD") == "2";

    /// Values of the transformed kernel: 36 matrices of C x filters, each laid out as Gemm.PackB packs it (see Winograd).
    public static int TransformedKernelSize(int channels, int filters) => (int)(36 * Gemm.PackedSize(channels, filters));


    /// Tiles per block: V (36 x tiles x C) and M (36 x tiles x filters) within about 1 MB, 32 to 128 tiles, in whole
    /// tiles of the GEMM's rows (Gemm.RowMultiple): 36 rather than 32 for 64 channels and 128 filters with 6-row tiles,
    /// where 32 left a 2-row tile in every product.
    public static int TilesPerBlock(int channels, int filters) => Winograd.RoundTiles(7168 / (channels + filters), 32, 128);

    /// Scratch values ForwardRows and AccumulateKernelGradient need per thread: V's 36 matrices, then M's (dM's are
    /// stored as packed panels, whose last may be partial: room for whole panels).
    public static int ScratchSize(int channels, int filters) =>
        (int)(36 * (Winograd.MatrixStride(TilesPerBlock(channels, filters), channels) + GradientMatrixStride(TilesPerBlock(channels, filters), filters)));

    /// Values from one of dM's matrices to the next: tb rows of the filters in whole panels (a packed row of B).
    static long GradientMatrixStride(int tb, int filters) => Winograd.MatrixStride(tb, (int)Gemm.PackedSize(1, filters));

    /// U[xi][c][f] = (G g G^T)[xi] for the HWIO 3x3 kernel, 8 filters at a time.
    public static void TransformKernel(ReadOnlySpan<float> kernel, int channels, int filters, Span<float> transformed)
    {
        if (filters % 8 != 0) throw new ArgumentException($"Winograd takes filters in whole vectors of 8; got {filters}.", nameof(filters));
        if (kernel.Length < 9 * channels * filters) throw new ArgumentException($"A 3x3 kernel of {channels} channels and {filters} filters has {9 * channels * filters} values; got {kernel.Length}.", nameof(kernel));
        if (transformed.Length < TransformedKernelSize(channels, filters)) throw new ArgumentException($"The transformed kernel needs {TransformedKernelSize(channels, filters)} values; got {transformed.Length}.", nameof(transformed));
        // The 36 matrices of C x filters are made row by row, then each packed as the GEMM's micro-kernels read it.
        var u = Winograd.Unpacked(36 * channels * filters);
        Transform(kernel, channels, filters, u);
        Winograd.PackMatrices(36, u, channels, filters, transformed);
    }

    // U[xi][c][f], row-major (C x filters per matrix).
    static void Transform(ReadOnlySpan<float> kernel, int channels, int filters, Span<float> transformed)
    {
        long plane = (long)channels * filters;
        Span<Vector256<float>> t = stackalloc Vector256<float>[18];   // G g: 6 rows of 3
        fixed (float* pk = kernel) fixed (float* pt = transformed)
            for (int c = 0; c < channels; c++)
                for (int f = 0; f < filters; f += 8)
                {
                    float* k = pk + (long)c * filters + f;
                    for (int j = 0; j < 3; j++)
                    {
                        var g0 = Vector256.Load(k + j * plane); var g1 = Vector256.Load(k + (3 + j) * plane); var g2 = Vector256.Load(k + (6 + j) * plane);
                        KernelColumn(g0, g1, g2, out t[j], out t[3 + j], out t[6 + j], out t[9 + j], out t[12 + j], out t[15 + j]);
                    }
                    float* u = pt + (long)c * filters + f;
                    for (int i = 0; i < 6; i++)
                    {
                        KernelColumn(t[3 * i], t[3 * i + 1], t[3 * i + 2], out var u0, out var u1, out var u2, out var u3, out var u4, out var u5);
                        float* row = u + 6 * i * plane;
                        u0.Store(row); u1.Store(row + plane); u2.Store(row + 2 * plane);
                        u3.Store(row + 3 * plane); u4.Store(row + 4 * plane); u5.Store(row + 5 * plane);
                    }
                }
    }

    // G applied to (g0, g1, g2).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void KernelColumn(Vector256<float> g0, Vector256<float> g1, Vector256<float> g2,
        out Vector256<float> u0, out Vector256<float> u1, out Vector256<float> u2, out Vector256<float> u3, out Vector256<float> u4, out Vector256<float> u5)
    {
        var even = g0 + g2;
        u0 = g0 * Vector256.Create(0.25f);
        u1 = (even + g1) * Vector256.Create(-1f / 6);
        u2 = (even - g1) * Vector256.Create(-1f / 6);
        var a = g0 * Vector256.Create(1f / 24) + g2 * Vector256.Create(1f / 6);
        var b = g1 * Vector256.Create(1f / 12);
        u3 = a + b;
        u4 = a - b;
        u5 = g2;
    }

    /// Output rows [rowStart, rowEnd) of one image, with the bias added and the activation applied, into y, which
    /// holds those rows (row rowStart first); as Winograd.ForwardRows, but 4x4 outputs per tile.
    public static void ForwardRows(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, int filters,
        Span<float> y, Span<float> scratch, int rowStart, int rowEnd, ReadOnlySpan<float> bias, Activation activation)
    {
        if (!Winograd.Supports(g, filters)) throw new ArgumentException($"Winograd F(4x4, 3x3) does not apply to {g} with {filters} filters.");
        if (rowStart < 0 || rowEnd > g.OutHeight || rowEnd <= rowStart)
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"Rows [{rowStart}, {rowEnd}) of {g.OutHeight}: the range must be non-empty.");
        int channels = g.Channels, tb = TilesPerBlock(channels, filters);
        Winograd.CheckForward(g, filters, x.Length, transformed.Length, TransformedKernelSize(channels, filters), y.Length, rowStart, rowEnd,
            scratch.Length, ScratchSize(channels, filters), bias.Length);

        bool wideIn = Vector512.IsHardwareAccelerated && channels % 16 == 0, wideOut = Vector512.IsHardwareAccelerated && filters % 16 == 0;
        fixed (float* px = x) fixed (float* pu = transformed) fixed (float* py = y) fixed (float* ps = scratch) fixed (float* pb = bias)
            Blocks(g, px, pu, filters, py, ps, tb, rowStart, rowEnd, pb, activation == Activation.Relu, wideIn, wideOut);
        if (activation is not (Activation.Linear or Activation.Relu))
            Activations.Apply(y[..((rowEnd - rowStart) * g.OutWidth * filters)], filters, activation);
    }

    static void Blocks(in ConvGeometry g, float* x, float* u, int filters, float* y, float* scratch, int tb, int rowStart, int rowEnd,
        float* bias, bool relu, bool wideIn, bool wideOut)
    {
        int channels = g.Channels, tilesWide = (g.OutWidth + 3) / 4, tiles = (rowEnd - rowStart + 3) / 4 * tilesWide;
        // Scratch for the transforms: 36 + 6 vectors of either width.
        Vector512<float>* temp = stackalloc Vector512<float>[42];
        float* v = scratch, m = scratch + 36 * Winograd.MatrixStride(tb, channels);
        for (int t0 = 0; t0 < tiles; t0 += tb)
        {
            int count = Math.Min(tb, tiles - t0);
            for (int t = 0; t < count; t++)
            {
                int tile = t0 + t, oy = rowStart + tile / tilesWide * 4, ox = tile % tilesWide * 4;
                InputTile(wideIn, g, x, oy, ox, v + (long)t * channels, Winograd.MatrixStride(tb, channels), temp);
            }
            Winograd.Products(36, count, tb, channels, filters, v, u, m);
            for (int t = 0; t < count; t++)
            {
                int tile = t0 + t, oy = rowStart + tile / tilesWide * 4, ox = tile % tilesWide * 4;
                float* to = y + ((long)(oy - rowStart) * g.OutWidth + ox) * filters;
                int rows = Math.Min(4, rowEnd - oy), cols = Math.Min(4, g.OutWidth - ox);
                if (wideOut) OutputTile<Vector512<float>, Lanes512>(m + (long)t * filters, Winograd.MatrixStride(tb, filters), filters, bias, relu, to, (long)g.OutWidth * filters, rows, cols, temp, temp + 36);
                else OutputTile<Vector256<float>, Lanes256>(m + (long)t * filters, Winograd.MatrixStride(tb, filters), filters, bias, relu, to, (long)g.OutWidth * filters, rows, cols, (Vector256<float>*)temp, (Vector256<float>*)temp + 36);
            }
        }
    }

    // V = B^T d B for the tile whose output starts at (oy, ox), 16 channels at a time where wide, else 8; temp holds
    // 42 vectors of scratch (either width fits).
    static void InputTile(bool wide, in ConvGeometry g, float* x, int oy, int ox, float* v, long stride, Vector512<float>* temp)
    {
        if (wide) InputTile<Vector512<float>, Lanes512>(g, x, oy - g.PadTop, ox - g.PadLeft, v, stride, temp, temp + 36);
        else InputTile<Vector256<float>, Lanes256>(g, x, oy - g.PadTop, ox - g.PadLeft, v, stride, (Vector256<float>*)temp, (Vector256<float>*)temp + 36);
    }

    /// The kernel gradient in the transformed domain, as Winograd.AccumulateKernelGradient but by F(4x4, 3x3):
    /// dU[xi] (C x filters, 36 of them) += sum over the tiles of output rows [rowStart, rowEnd) of one image of
    /// V[xi]^T dM[xi], with V = B^T d B (the forward pass's input transform) and dM = A dY A^T (dY: the tile's 4x4
    /// output gradient, zero beyond the output). KernelGradient turns the sum into the 3x3 kernel's gradient.
    /// With dBias (filters values), the bias gradient is added to it too: the sum of dY over those rows, taken from the
    /// values the gradient transform loads anyway (instead of a pass of its own over dY).
    public static void AccumulateKernelGradient(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> dz, int filters,
        Span<float> dU, Span<float> scratch, int rowStart, int rowEnd, Span<float> dBias = default)
    {
        if (!Winograd.Supports(g, filters)) throw new ArgumentException($"Winograd F(4x4, 3x3) does not apply to {g} with {filters} filters.");
        if (rowStart < 0 || rowEnd > g.OutHeight || rowEnd <= rowStart)
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"Rows [{rowStart}, {rowEnd}) of {g.OutHeight}: the range must be non-empty.");
        int channels = g.Channels, tb = TilesPerBlock(channels, filters);
        Winograd.CheckAccumulate(g, filters, x.Length, dz.Length, dU.Length, TransformedKernelSize(channels, filters), scratch.Length, ScratchSize(channels, filters));
        if (!dBias.IsEmpty && dBias.Length < filters) throw new ArgumentException($"The bias gradient needs {filters} values; got {dBias.Length}.", nameof(dBias));
        bool wideIn = Vector512.IsHardwareAccelerated && channels % 16 == 0, wideOut = Vector512.IsHardwareAccelerated && filters % 16 == 0;
        int tilesWide = (g.OutWidth + 3) / 4, tiles = (rowEnd - rowStart + 3) / 4 * tilesWide;
        Vector512<float>* temp = stackalloc Vector512<float>[42];
        fixed (float* px = x) fixed (float* pz = dz) fixed (float* pu = dU) fixed (float* ps = scratch) fixed (float* pb = dBias)
        {
            // dM's matrices are written as packed panels of nr filters (count rows each), so that its products read them
            // as they are: stored plainly, rows `filters` apart fall into few L1 sets and the GEMM copied every one.
            float* v = ps, m = ps + 36 * Winograd.MatrixStride(tb, channels);
            int nr = Gemm.PanelWidth(filters);
            long mStride = GradientMatrixStride(tb, filters);
            for (int t0 = 0; t0 < tiles; t0 += tb)
            {
                int count = Math.Min(tb, tiles - t0);
                for (int t = 0; t < count; t++)
                {
                    int tile = t0 + t, oy = rowStart + tile / tilesWide * 4, ox = tile % tilesWide * 4;
                    InputTile(wideIn, g, px, oy, ox, v + (long)t * channels, Winograd.MatrixStride(tb, channels), temp);
                    float* from = pz + ((long)oy * g.OutWidth + ox) * filters;
                    int rows = Math.Min(4, rowEnd - oy), cols = Math.Min(4, g.OutWidth - ox);
                    float* to = m + (long)t * nr;
                    if (wideOut) GradientTile<Vector512<float>, Lanes512>(from, (long)g.OutWidth * filters, filters, rows, cols, to, mStride, nr, (long)count * nr, pb, temp);
                    else GradientTile<Vector256<float>, Lanes256>(from, (long)g.OutWidth * filters, filters, rows, cols, to, mStride, nr, (long)count * nr, pb, (Vector256<float>*)temp);
                }
                // dU[xi] += V[xi]^T dM[xi]: V (count x C) read in place, dM as Gemm.PackB lays out a count x filters B.
                long vStride = Winograd.MatrixStride(tb, channels);
                for (int xi = 0; xi < 36; xi++)
                    Gemm.MultiplyPacked(true, channels, filters, count, v + xi * vStride, channels, m + xi * mStride, pu + (long)xi * channels * filters, filters, accumulate: true);
            }
        }
    }

    /// dKernel (HWIO 3x3 x channels x filters) += G^T dU G: the kernel gradient from AccumulateKernelGradient's sum.
    public static void KernelGradient(ReadOnlySpan<float> dU, int channels, int filters, Span<float> dKernel)
    {
        Winograd.CheckKernelGradient(dU.Length, TransformedKernelSize(channels, filters), channels, filters, dKernel.Length);
        long plane = (long)channels * filters;
        Vector256<float>* t = stackalloc Vector256<float>[18];   // G^T dU: 3 rows of 6
        Vector256<float>* h = stackalloc Vector256<float>[3];
        fixed (float* pu = dU) fixed (float* pk = dKernel)
            for (int c = 0; c < channels; c++)
                for (int f = 0; f < filters; f += 8)
                {
                    float* u = pu + (long)c * filters + f;
                    for (int b = 0; b < 6; b++)
                        KernelGradientColumn(Vector256.Load(u + b * plane), Vector256.Load(u + (6 + b) * plane), Vector256.Load(u + (12 + b) * plane),
                            Vector256.Load(u + (18 + b) * plane), Vector256.Load(u + (24 + b) * plane), Vector256.Load(u + (30 + b) * plane), t + b, 6);
                    float* k = pk + (long)c * filters + f;
                    for (int i = 0; i < 3; i++)
                    {
                        var r = t + 6 * i;
                        KernelGradientColumn(r[0], r[1], r[2], r[3], r[4], r[5], h, 1);
                        for (int j = 0; j < 3; j++)
                        {
                            float* at = k + (3 * i + j) * plane;
                            (Vector256.Load(at) + h[j]).Store(at);
                        }
                    }
                }
    }

    // G^T applied to (u0, ..., u5): three values.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void KernelGradientColumn(Vector256<float> u0, Vector256<float> u1, Vector256<float> u2, Vector256<float> u3, Vector256<float> u4, Vector256<float> u5,
        Vector256<float>* o, int step)
    {
        var sum12 = u1 + u2;
        var sum34 = u3 + u4;
        o[0] = u0 * Vector256.Create(0.25f) - sum12 * Vector256.Create(1f / 6) + sum34 * Vector256.Create(1f / 24);
        o[step] = (u2 - u1) * Vector256.Create(1f / 6) + (u3 - u4) * Vector256.Create(1f / 12);
        o[2 * step] = (sum34 - sum12) * Vector256.Create(1f / 6) + u5;
    }

    // A applied to (y0, y1, y2, y3): six values.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void GradientColumn<TV, L>(TV y0, TV y1, TV y2, TV y3, TV* o, int step) where TV : unmanaged where L : ILanes<TV>
    {
        var even = L.Add(y0, y2);
        var odd = L.Add(y1, y3);
        var even4 = L.Add(y0, L.Scale(y2, 4f));
        var odd4 = L.Add(L.Scale(y1, 2f), L.Scale(y3, 8f));
        o[0] = y0;
        o[step] = L.Add(even, odd);
        o[2 * step] = L.Sub(even, odd);
        o[3 * step] = L.Add(even4, odd4);
        o[4 * step] = L.Sub(even4, odd4);
        o[5 * step] = y3;
    }

    // dM = A dY A^T for one tile's output gradient (rows x cols of its 4x4 exist; the rest reads as zero), L.Count
    // filters at a time, into the 36 matrices stride values apart.
    static void GradientTile<TV, L>(float* dz, long rowStride, int filters, int rows, int cols, float* dm, long stride, int nr, long panelStride,
        float* biasSum, TV* temp)
        where TV : unmanaged where L : ILanes<TV>
    {
        System.Diagnostics.Debug.Assert(stride % L.Count == 0);
        for (int f = 0; f < filters; f += L.Count)
        {
            // Columns first: temp[6 a + j] = (A dY)[a][j], j < 4. The tile's dY values summed on the way (the bias
            // gradient), zeros beyond the output included.
            var sum = L.Zero;
            for (int j = 0; j < 4; j++)
            {
                float* p = dz + j * filters + f;
                bool inColumn = j < cols;
                var y0 = inColumn ? L.Load(p) : L.Zero;
                var y1 = inColumn && rows > 1 ? L.Load(p + rowStride) : L.Zero;
                var y2 = inColumn && rows > 2 ? L.Load(p + 2 * rowStride) : L.Zero;
                var y3 = inColumn && rows > 3 ? L.Load(p + 3 * rowStride) : L.Zero;
                if (biasSum != null) sum = L.Add(sum, L.Add(L.Add(y0, y1), L.Add(y2, y3)));
                GradientColumn<TV, L>(y0, y1, y2, y3, temp + j, 6);
            }
            if (biasSum != null) L.Store(L.Add(L.Load(biasSum + f), sum), biasSum + f);
            // Then rows: dM[6 a + b] = ((A dY) A^T)[a][b], stored straight into the matrices (stride is a whole number
            // of vectors: Winograd.MatrixStride).
            for (int a = 0; a < 6; a++)
            {
                var r = temp + 6 * a;
                GradientColumn<TV, L>(r[0], r[1], r[2], r[3], (TV*)(dm + 6 * a * stride + f / nr * panelStride + f % nr), (int)(stride / L.Count));
            }
        }
    }

    // B^T applied to (d0, ..., d5).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void InputColumn<TV, L>(TV d0, TV d1, TV d2, TV d3, TV d4, TV d5, TV* o, int step) where TV : unmanaged where L : ILanes<TV>
    {
        var t1 = L.Sub(d4, L.Scale(d2, 4f));
        var t2 = L.Sub(d3, L.Scale(d1, 4f));
        var t3 = L.Sub(d4, d2);
        var t4 = L.Scale(L.Sub(d3, d1), 2f);
        o[0] = L.Add(L.Sub(L.Scale(d0, 4f), L.Scale(d2, 5f)), d4);
        o[step] = L.Add(t1, t2);
        o[2 * step] = L.Sub(t1, t2);
        o[3 * step] = L.Add(t3, t4);
        o[4 * step] = L.Sub(t3, t4);
        o[5 * step] = L.Add(L.Sub(L.Scale(d1, 4f), L.Scale(d3, 5f)), d5);
    }

    // V[6i + j] for one tile whose window starts at input (iy, ix), L.Count channels at a time; zeros outside the image.
    static void InputTile<TV, L>(in ConvGeometry g, float* x, int iy, int ix, float* v, long stride, TV* temp, TV* d)
        where TV : unmanaged where L : ILanes<TV>
    {
        int channels = g.Channels, w = g.InWidth, h = g.InHeight;
        bool inside = iy >= 0 && ix >= 0 && iy + 6 <= h && ix + 6 <= w;
        long rowStep = (long)w * channels;
        System.Diagnostics.Debug.Assert(stride % L.Count == 0);
        for (int c = 0; c < channels; c += L.Count)
        {
            // Columns first: temp[6 i + j] = (B^T d)[i][j]; inside the image straight from six loads, at its edges
            // through d (zeros outside).
            for (int j = 0; j < 6; j++)
            {
                if (inside)
                {
                    float* p = x + ((long)iy * w + ix + j) * channels + c;
                    InputColumn<TV, L>(L.Load(p), L.Load(p + rowStep), L.Load(p + 2 * rowStep), L.Load(p + 3 * rowStep),
                        L.Load(p + 4 * rowStep), L.Load(p + 5 * rowStep), temp + j, 6);
                    continue;
                }
                for (int i = 0; i < 6; i++)
                {
                    int row = iy + i, col = ix + j;
                    d[i] = row >= 0 && col >= 0 && row < h && col < w ? L.Load(x + ((long)row * w + col) * channels + c) : L.Zero;
                }
                InputColumn<TV, L>(d[0], d[1], d[2], d[3], d[4], d[5], temp + j, 6);
            }
            // Then rows: V[6 i + j] = ((B^T d) B)[i][j], stored straight into the matrices (stride is a whole number of
            // vectors: Winograd.MatrixStride).
            for (int i = 0; i < 6; i++)
            {
                var r = temp + 6 * i;
                InputColumn<TV, L>(r[0], r[1], r[2], r[3], r[4], r[5], (TV*)(v + 6 * i * stride + c), (int)(stride / L.Count));
            }
        }
    }

    // A^T applied to (m0, ..., m5).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void OutputColumn<TV, L>(TV m0, TV m1, TV m2, TV m3, TV m4, TV m5, TV* o, int step) where TV : unmanaged where L : ILanes<TV>
    {
        var a = L.Add(m1, m2);
        var b = L.Sub(m1, m2);
        var c = L.Add(m3, m4);
        var d = L.Sub(m3, m4);
        o[0] = L.Add(L.Add(m0, a), c);
        o[step] = L.Add(b, L.Scale(d, 2f));
        o[2 * step] = L.Add(a, L.Scale(c, 4f));
        o[3 * step] = L.Add(L.Add(b, L.Scale(d, 8f)), m5);
    }

    // Y = A^T M A for one tile, L.Count filters at a time, plus the bias, clamped at 0 when relu; writes rows x cols
    // of the 4x4 outputs (fewer at the bottom and right edges).
    static void OutputTile<TV, L>(float* m, long stride, int filters, float* bias, bool relu, float* y, long rowStride, int rows, int cols, TV* temp, TV* r)
        where TV : unmanaged where L : ILanes<TV>
    {
        for (int f = 0; f < filters; f += L.Count)
        {
            float* p = m + f;
            // Columns first: temp[6 i + j] = (A^T M)[i][j], i < 4.
            for (int j = 0; j < 6; j++)
                OutputColumn<TV, L>(L.Load(p + j * stride), L.Load(p + (6 + j) * stride), L.Load(p + (12 + j) * stride),
                    L.Load(p + (18 + j) * stride), L.Load(p + (24 + j) * stride), L.Load(p + (30 + j) * stride), temp + j, 6);
            var b = bias is null ? L.Zero : L.Load(bias + f);
            for (int i = 0; i < rows; i++)
            {
                var t = temp + 6 * i;
                OutputColumn<TV, L>(t[0], t[1], t[2], t[3], t[4], t[5], r, 1);
                float* o = y + i * rowStride + f;
                for (int j = 0; j < cols; j++)
                {
                    var value = L.Add(r[j], b);
                    L.Store(relu ? L.Max0(value) : value, o + j * filters);
                }
            }
        }
    }
}

/// The vector operations the Winograd transforms and the few-rows GEMM use, on 8 floats (Vector256) or 16 (Vector512): generic code over
/// this interface is compiled apart for each width, so the transforms are written once and run 16 lanes wide where
/// AVX-512 is there and the channel or filter count allows.
internal unsafe interface ILanes<TV> where TV : unmanaged
{
    static abstract int Count { get; }
    static abstract TV Zero { get; }
    static abstract TV Load(float* p);
    static abstract void Store(TV v, float* p);
    static abstract TV Add(TV a, TV b);
    static abstract TV Sub(TV a, TV b);
    static abstract TV Scale(TV a, float s);
    static abstract TV Max0(TV a);
    static abstract TV Broadcast(float x);
    /// a * b + c
    static abstract TV Fma(TV a, TV b, TV c);
    /// The mask of lanes [0, count), for LoadMasked and StoreMasked.
    static abstract TV Mask(int count);
    /// Loads the mask's lanes (the others 0) without touching memory past them.
    static abstract TV LoadMasked(float* p, TV mask);
    /// Stores the mask's lanes, leaving the memory past them as it was.
    static abstract void StoreMasked(TV v, float* p, TV mask);
}

internal readonly unsafe struct Lanes256 : ILanes<Vector256<float>>
{
    public static int Count => 8;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    public static Vector256<float> Load(float* p) => Vector256.Load(p);
    public static void Store(Vector256<float> v, float* p) => v.Store(p);
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    public static Vector256<float> Scale(Vector256<float> a, float s) => a * s;
    public static Vector256<float> Max0(Vector256<float> a) => Vector256.Max(a, Vector256<float>.Zero);
    public static Vector256<float> Broadcast(float x) => Vector256.Create(x);
    public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    public static Vector256<float> Mask(int count) => Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle();
    public static Vector256<float> LoadMasked(float* p, Vector256<float> mask) => Avx.MaskLoad(p, mask);
    public static void StoreMasked(Vector256<float> v, float* p, Vector256<float> mask) => Avx.MaskStore(p, mask, v);
}

internal readonly unsafe struct Lanes512 : ILanes<Vector512<float>>
{
    public static int Count => 16;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    public static Vector512<float> Load(float* p) => Vector512.Load(p);
    public static void Store(Vector512<float> v, float* p) => v.Store(p);
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
    public static Vector512<float> Scale(Vector512<float> a, float s) => a * s;
    public static Vector512<float> Max0(Vector512<float> a) => Vector512.Max(a, Vector512<float>.Zero);
    public static Vector512<float> Broadcast(float x) => Vector512.Create(x);
    public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    public static Vector512<float> Mask(int count) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();
    public static Vector512<float> LoadMasked(float* p, Vector512<float> mask) => Avx512F.MaskLoad(p, mask, Vector512<float>.Zero);
    public static void StoreMasked(Vector512<float> v, float* p, Vector512<float> mask) => Avx512F.MaskStore(p, mask, v);
}
