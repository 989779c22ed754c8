using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Naani.Kernels;

// Winograd's minimal filtering F(2x2, 3x3) for 3x3 stride-1 convolutions (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2016), on NHWC images and HWIO kernels:
//
//   Y (2x2 outputs of one tile, one filter) = A^T [ sum_c (G g_c G^T) . (B^T d_c B) ] A
//
// where d_c is the tile's 4x4 input window in channel c, g_c the 3x3 kernel of channel c, and . the elementwise
// product. Each 4x4 tile (2x2 outputs) costs 16 multiply-adds per channel and filter instead of 36: 2.25x fewer.
// The sum over channels of the 16 elementwise products is 16 independent matrix products
//   M[xi] (tiles x filters) = V[xi] (tiles x C) * U[xi] (C x filters),   xi = 0..15,
// done by the GEMM on blocks of tiles small enough for V and M to stay in L2. The kernel transform U = G g G^T is
// computed once per batch (TransformKernel); the input transform V = B^T d B is vectorized over channels, 8 at a
// time; the output transform A^T M A adds the bias and applies ReLU on the way out.
//
//   B^T = | 1  0 -1  0 |     G = | 1    0    0   |     A^T = | 1  1  1  0 |
//         | 0  1  1  0 |         | 1/2  1/2  1/2 |           | 0  1 -1 -1 |
//         | 0 -1  1  0 |         | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |         | 0    0    1   |
//
// Numerically F(2x2, 3x3) is close to the direct convolution: its transforms add and subtract (only G has
// halves), so the float32 error grows by a small constant factor (measured in WinogradTests).
[SkipLocalsInit]
public static unsafe class Winograd
{
    /// Whether layers use Winograd where it pays (Pays); NAANI_WINOGRAD=0 in the environment turns it off, for
    /// comparing against the direct convolution.
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("NAANI_WINOGRAD") != "0";

    /// Whether F(2x2, 3x3) applies: a 3x3 kernel at stride 1 ('valid' or 'same'), channels and filters in whole
    /// vectors of 8 (the transforms' width; first layers with 1 or 3 channels stay direct).
    public static bool Supports(in ConvGeometry g, int filters) =>
        g.KernelHeight == 3 && g.KernelWidth == 3 && g.StrideHeight == 1 && g.StrideWidth == 1
        && g.Channels % 8 == 0 && filters % 8 == 0 && g.OutHeight > 0 && g.OutWidth > 0;

    /// Whether Winograd is expected to beat the direct (implicit GEMM) convolution here: the elementwise stage
    /// must have enough channels and filters for its GEMMs to run near peak, and the transforms (a fixed cost
    /// per tile and channel or filter) must be small beside the 16 C K multiply-adds per tile. Checked against
    /// measurement (bench --profile on naani-128, cats-dogs-150, vgg16): 16 channels already gain (cats-dogs-150's
    /// 16 -> 64 layer: forward 13.4 ms instead of 16.3-17.3, backward 31-32 instead of 34-35); first layers (1 or
    /// 3 channels) are not supported and stay on the implicit GEMM.
    public static bool Pays(in ConvGeometry g, int filters) =>
        Enabled && Vector256.IsHardwareAccelerated && Supports(g, filters) && g.Channels >= 16 && filters >= 16 && g.OutHeight >= 4 && g.OutWidth >= 4;

    /// The tile a layer uses here: 4 for F(4x4, 3x3) where Winograd4.Pays, 2 for F(2x2, 3x3) where only Pays holds,
    /// 0 where neither pays (the direct convolution). The overloads taking a tile run the matching variant.
    public static int Tile(in ConvGeometry g, int filters) => Winograd4.Pays(g, filters) ? 4 : Pays(g, filters) ? 2 : 0;

    public static int TransformedKernelSize(int channels, int filters, int tile) =>
        tile == 4 ? Winograd4.TransformedKernelSize(channels, filters) : TransformedKernelSize(channels, filters);

    public static int ScratchSize(int channels, int filters, int tile) =>
        tile == 4 ? Winograd4.ScratchSize(channels, filters) : ScratchSize(channels, filters);

    public static void TransformKernel(ReadOnlySpan<float> kernel, int channels, int filters, Span<float> transformed, int tile)
    {
        if (tile == 4) Winograd4.TransformKernel(kernel, channels, filters, transformed);
        else TransformKernel(kernel, channels, filters, transformed);
    }

    public static void ForwardRows(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, int filters,
        Span<float> y, Span<float> scratch, int rowStart, int rowEnd, ReadOnlySpan<float> bias, Activation activation, int tile)
    {
        if (tile == 4) Winograd4.ForwardRows(g, x, transformed, filters, y, scratch, rowStart, rowEnd, bias, activation);
        else ForwardRows(g, x, transformed, filters, y, scratch, rowStart, rowEnd, bias, activation);
    }

    /// With dBias, the bias gradient (dz summed over the rows) is added to it as well: by F(4x4), from the values its
    /// gradient transform loads; by F(2x2), in a pass of its own.
    public static void AccumulateKernelGradient(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> dz, int filters,
        Span<float> dU, Span<float> scratch, int rowStart, int rowEnd, int tile, Span<float> dBias = default)
    {
        if (tile == 4)
        {
            Winograd4.AccumulateKernelGradient(g, x, dz, filters, dU, scratch, rowStart, rowEnd, dBias);
            return;
        }
        AccumulateKernelGradient(g, x, dz, filters, dU, scratch, rowStart, rowEnd);
        if (!dBias.IsEmpty)
            Activations.SumRows(dz.Slice(rowStart * g.OutWidth * filters, (rowEnd - rowStart) * g.OutWidth * filters), filters, dBias, accumulate: true);
    }

    public static void KernelGradient(ReadOnlySpan<float> dU, int channels, int filters, Span<float> dKernel, int tile)
    {
        if (tile == 4) Winograd4.KernelGradient(dU, channels, filters, dKernel);
        else KernelGradient(dU, channels, filters, dKernel);
    }

    /// Values of the transformed kernel: 16 matrices of C x filters, each laid out as Gemm.PackB packs it (whole panels
    /// of filters, zero past the last). A kernel gradient dU (16 matrices of C x filters, row-major) fits in as many.
    public static int TransformedKernelSize(int channels, int filters) => (int)(16 * Gemm.PackedSize(channels, filters));


    /// U[xi][c][f] = (G g G^T)[xi] for the HWIO 3x3 kernel (3 x 3 x channels x filters), 8 filters at a time (the
    /// filters are contiguous in HWIO). Cheap beside the convolution: about 40 operations per channel and filter.
    public static void TransformKernel(ReadOnlySpan<float> kernel, int channels, int filters, Span<float> transformed)
    {
        if (filters % 8 != 0) throw new ArgumentException($"Winograd takes filters in whole vectors of 8; got {filters}.", nameof(filters));
        if (kernel.Length < 9 * channels * filters) throw new ArgumentException($"A 3x3 kernel of {channels} channels and {filters} filters has {9 * channels * filters} values; got {kernel.Length}.", nameof(kernel));
        if (transformed.Length < TransformedKernelSize(channels, filters)) throw new ArgumentException($"The transformed kernel needs {TransformedKernelSize(channels, filters)} values; got {transformed.Length}.", nameof(transformed));
        // The 16 matrices of C x filters are made row by row, then each packed as the GEMM's micro-kernels read it.
        var u = Unpacked(16 * channels * filters);
        Transform(kernel, channels, filters, u);
        PackMatrices(16, u, channels, filters, transformed);
    }

    [ThreadStatic] static float[]? unpacked;

    /// This thread's buffer for a transformed kernel before packing: at least `size` values.
    internal static float[] Unpacked(int size)
    {
        var u = unpacked;
        if (u is null || u.Length < size) unpacked = u = new float[size];
        return u;
    }

    /// Packs each of the row-major C x filters matrices of u as Gemm.PackB lays it out (once, instead of by every
    /// product with it), one after another into transformed.
    internal static void PackMatrices(int matrices, float[] u, int channels, int filters, Span<float> transformed)
    {
        long packedPlane = Gemm.PackedSize(channels, filters);
        for (int xi = 0; xi < matrices; xi++)
            Gemm.PackB(u.AsSpan(xi * channels * filters, channels * filters), channels, filters, filters,
                transformed.Slice((int)(xi * packedPlane), (int)packedPlane));
    }

    // U[xi][c][f], row-major (C x filters per matrix).
    static void Transform(ReadOnlySpan<float> kernel, int channels, int filters, Span<float> transformed)
    {
        long plane = (long)channels * filters, tap = plane;
        var half = Vector256.Create(0.5f);
        fixed (float* pk = kernel) fixed (float* pt = transformed)
            for (int c = 0; c < channels; c++)
                for (int f = 0; f < filters; f += 8)
                {
                    float* k = pk + (long)c * filters + f;
                    // g[i][j] = kernel[i, j, c, f..f+8): taps are plane values apart.
                    var g00 = Vector256.Load(k); var g01 = Vector256.Load(k + tap); var g02 = Vector256.Load(k + 2 * tap);
                    var g10 = Vector256.Load(k + 3 * tap); var g11 = Vector256.Load(k + 4 * tap); var g12 = Vector256.Load(k + 5 * tap);
                    var g20 = Vector256.Load(k + 6 * tap); var g21 = Vector256.Load(k + 7 * tap); var g22 = Vector256.Load(k + 8 * tap);
                    // G g: four rows of three.
                    var t10 = (g00 + g10 + g20) * half; var t11 = (g01 + g11 + g21) * half; var t12 = (g02 + g12 + g22) * half;
                    var t20 = (g00 - g10 + g20) * half; var t21 = (g01 - g11 + g21) * half; var t22 = (g02 - g12 + g22) * half;
                    float* u = pt + (long)c * filters + f;
                    KernelRow(g00, g01, g02, half, u, plane);
                    KernelRow(t10, t11, t12, half, u + 4 * plane, plane);
                    KernelRow(t20, t21, t22, half, u + 8 * plane, plane);
                    KernelRow(g20, g21, g22, half, u + 12 * plane, plane);
                }
    }

    // (G g) G^T for one row of G g: U[4i + 0..3].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void KernelRow(Vector256<float> t0, Vector256<float> t1, Vector256<float> t2, Vector256<float> half, float* u, long plane)
    {
        t0.Store(u);
        ((t0 + t1 + t2) * half).Store(u + plane);
        ((t0 - t1 + t2) * half).Store(u + 2 * plane);
        t2.Store(u + 3 * plane);
    }

    /// Tiles transformed and multiplied together: V (16 x tiles x C) and M (16 x tiles x filters) within about
    /// 512 KB, so they stay in L2 between the transforms and the GEMMs, but at least 64 rows per GEMM (each U[xi],
    /// up to 1 MB for 512 channels and filters, is read once per block: fewer rows would make that the bottleneck).
    public static int TilesPerBlock(int channels, int filters) => RoundTiles(8192 / (channels + filters), 64, 256);

    /// Tiles down to a multiple of the GEMM's row tile, within [min, max] rounded to it (up and down).
    internal static int RoundTiles(int tiles, int min, int max)
    {
        int mr = Gemm.RowMultiple;
        return Math.Clamp(tiles / mr * mr, (min + mr - 1) / mr * mr, max / mr * mr);
    }

    /// Scratch values ForwardRows needs per thread.
    public static int ScratchSize(int channels, int filters) =>
        (int)(16 * (MatrixStride(TilesPerBlock(channels, filters), channels) + MatrixStride(TilesPerBlock(channels, filters), filters)));

    /// Output rows [rowStart, rowEnd) of one image (rowStart even), with the bias added and the activation applied,
    /// into y, which holds those rows (row rowStart first). x is the image (InHeight x InWidth x C), transformed
    /// the kernel from TransformKernel, scratch at least ScratchSize values. Runs on the calling thread.
    public static void ForwardRows(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, int filters,
        Span<float> y, Span<float> scratch, int rowStart, int rowEnd, ReadOnlySpan<float> bias, Activation activation)
    {
        if (!Supports(g, filters)) throw new ArgumentException($"Winograd F(2x2, 3x3) does not apply to {g} with {filters} filters.");
        if ((rowStart & 1) != 0 || rowStart < 0 || rowEnd > g.OutHeight || rowEnd <= rowStart)
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"Rows [{rowStart}, {rowEnd}) of {g.OutHeight}: the first must be even and the range non-empty.");
        int channels = g.Channels, tb = TilesPerBlock(channels, filters);
        CheckForward(g, filters, x.Length, transformed.Length, TransformedKernelSize(channels, filters), y.Length, rowStart, rowEnd,
            scratch.Length, ScratchSize(channels, filters), bias.Length);

        int tilesWide = (g.OutWidth + 1) / 2, firstTileRow = rowStart / 2, tileRows = (rowEnd - rowStart + 1) / 2;
        int tiles = tileRows * tilesWide;
        bool relu = activation == Activation.Relu;
        fixed (float* px = x) fixed (float* pu = transformed) fixed (float* py = y) fixed (float* ps = scratch) fixed (float* pb = bias)
        {
            float* v = ps, m = ps + 16 * MatrixStride(tb, channels);
            for (int t0 = 0; t0 < tiles; t0 += tb)
            {
                int count = Math.Min(tb, tiles - t0);
                for (int t = 0; t < count; t++)
                {
                    int tile = t0 + t, ty = firstTileRow + tile / tilesWide, tx = tile % tilesWide;
                    InputTile(g, px, 2 * ty - g.PadTop, 2 * tx - g.PadLeft, v + (long)t * channels, MatrixStride(tb, channels));
                }
                Products(16, count, tb, channels, filters, v, pu, m);
                for (int t = 0; t < count; t++)
                {
                    int tile = t0 + t, ty = firstTileRow + tile / tilesWide, tx = tile % tilesWide;
                    int oy = 2 * ty, ox = 2 * tx;
                    OutputTile(m + (long)t * filters, MatrixStride(tb, filters), filters, pb, relu,
                        py + ((long)(oy - rowStart) * g.OutWidth + ox) * filters, (long)g.OutWidth * filters,
                        oy + 1 < rowEnd, ox + 1 < g.OutWidth);
                }
            }
        }
        if (activation is not (Activation.Linear or Activation.Relu))
            Activations.Apply(y[..((rowEnd - rowStart) * g.OutWidth * filters)], filters, activation);
    }

    /// The kernel gradient, in the transformed domain: dU[xi] (C x filters) += sum over the tiles of output rows
    /// [rowStart, rowEnd) of one image (rowStart even) of V[xi]^T dM[xi], where V is the input transform of the tile
    /// (as in the forward pass) and dM = A dz A^T the transform of its 2x2 output gradient (zero beyond the output).
    /// KernelGradient turns the accumulated dU into the 3x3 kernel's gradient. 2.25x fewer multiply-adds than
    /// im2col and a GEMM, and no im2col matrix (9x the image) written and read back.
    public static void AccumulateKernelGradient(in ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> dz, int filters,
        Span<float> dU, Span<float> scratch, int rowStart, int rowEnd)
    {
        if (!Supports(g, filters)) throw new ArgumentException($"Winograd F(2x2, 3x3) does not apply to {g} with {filters} filters.");
        if ((rowStart & 1) != 0 || rowStart < 0 || rowEnd > g.OutHeight || rowEnd <= rowStart)
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"Rows [{rowStart}, {rowEnd}) of {g.OutHeight}: the first must be even and the range non-empty.");
        int channels = g.Channels, tb = TilesPerBlock(channels, filters);
        CheckAccumulate(g, filters, x.Length, dz.Length, dU.Length, TransformedKernelSize(channels, filters), scratch.Length, ScratchSize(channels, filters));

        int tilesWide = (g.OutWidth + 1) / 2, firstTileRow = rowStart / 2, tileRows = (rowEnd - rowStart + 1) / 2;
        int tiles = tileRows * tilesWide;
        fixed (float* px = x) fixed (float* pz = dz) fixed (float* pu = dU) fixed (float* ps = scratch)
        {
            float* v = ps, m = ps + 16 * MatrixStride(tb, channels);
            for (int t0 = 0; t0 < tiles; t0 += tb)
            {
                int count = Math.Min(tb, tiles - t0);
                for (int t = 0; t < count; t++)
                {
                    int tile = t0 + t, ty = firstTileRow + tile / tilesWide, tx = tile % tilesWide;
                    InputTile(g, px, 2 * ty - g.PadTop, 2 * tx - g.PadLeft, v + (long)t * channels, MatrixStride(tb, channels));
                    int oy = 2 * ty, ox = 2 * tx;
                    GradientTile(pz + ((long)oy * g.OutWidth + ox) * filters, (long)g.OutWidth * filters, filters,
                        oy + 1 < rowEnd, ox + 1 < g.OutWidth, m + (long)t * filters, MatrixStride(tb, filters));
                }
                GradientProducts(16, count, tb, channels, filters, v, m, pu);
            }
        }
    }

    /// dKernel (HWIO 3x3 x channels x filters) += G^T dU G: the kernel gradient from AccumulateKernelGradient's sum.
    public static void KernelGradient(ReadOnlySpan<float> dU, int channels, int filters, Span<float> dKernel)
    {
        CheckKernelGradient(dU.Length, TransformedKernelSize(channels, filters), channels, filters, dKernel.Length);
        long plane = (long)channels * filters;
        var half = Vector256.Create(0.5f);
        Span<Vector256<float>> r = stackalloc Vector256<float>[12];
        fixed (float* pu = dU) fixed (float* pk = dKernel)
            for (int c = 0; c < channels; c++)
                for (int f = 0; f < filters; f += 8)
                {
                    float* u = pu + (long)c * filters + f;
                    // G^T dU: three rows of four.
                    for (int b = 0; b < 4; b++)
                    {
                        var u0 = Vector256.Load(u + b * plane); var u1 = Vector256.Load(u + (4 + b) * plane);
                        var u2 = Vector256.Load(u + (8 + b) * plane); var u3 = Vector256.Load(u + (12 + b) * plane);
                        r[b] = u0 + (u1 + u2) * half;
                        r[4 + b] = (u1 - u2) * half;
                        r[8 + b] = (u1 + u2) * half + u3;
                    }
                    float* k = pk + (long)c * filters + f;
                    for (int i = 0; i < 3; i++)
                    {
                        var e0 = r[4 * i]; var e1 = r[4 * i + 1]; var e2 = r[4 * i + 2]; var e3 = r[4 * i + 3];
                        float* row = k + 3 * i * plane;
                        (Vector256.Load(row) + e0 + (e1 + e2) * half).Store(row);
                        (Vector256.Load(row + plane) + (e1 - e2) * half).Store(row + plane);
                        (Vector256.Load(row + 2 * plane) + (e1 + e2) * half + e3).Store(row + 2 * plane);
                    }
                }
    }

    /// Values from one of the matrices of a block (V[xi]: tb rows of C values; M[xi]: tb rows of filters) to the next:
    /// one cache line more than tb rows. At tb x C values apart (a multiple of 4 lines) the transforms' 16 or 36 reads
    /// and writes at one offset in every matrix fell into 2 to 4 of L1's 64 sets and evicted one another (72 tiles x
    /// 32 channels is 144 lines: every 16th set); one line more spreads them over all the sets.
    internal static long MatrixStride(int tb, int width) => (long)tb * width + 16;

    // The elementwise stage of the forward pass, shared with Winograd4: M[xi] = V[xi] U[xi] for each of the matrices,
    // V holding tb rows of channels values per matrix (count of them used), M tb rows of filters values.
    // U[xi] is packed (TransformKernel), so no product copies it again.
    internal static void Products(int matrices, int count, int tb, int channels, int filters, float* v, float* u, float* m)
    {
        long plane = Gemm.PackedSize(channels, filters);
        for (int xi = 0; xi < matrices; xi++)
            Gemm.MultiplyPacked(count, filters, channels, v + xi * MatrixStride(tb, channels), channels,
                u + xi * plane, m + xi * MatrixStride(tb, filters), filters, accumulate: false);
    }

    // The kernel gradient's elementwise stage, shared with Winograd4: dU[xi] += V[xi]^T dM[xi].
    internal static void GradientProducts(int matrices, int count, int tb, int channels, int filters, float* v, float* dm, float* du)
    {
        for (int xi = 0; xi < matrices; xi++)
            Gemm.Multiply(true, false, channels, filters, count, v + xi * MatrixStride(tb, channels), channels,
                dm + xi * MatrixStride(tb, filters), filters, du + (long)xi * channels * filters, filters, accumulate: true, parallel: false);
    }

    // The sizes ForwardRows checks, shared with Winograd4 (an empty bias is none).
    internal static void CheckForward(in ConvGeometry g, int filters, int xLength, int transformedLength, int transformedSize, int yLength,
        int rowStart, int rowEnd, int scratchLength, int scratchSize, int biasLength)
    {
        if (xLength < g.InputSize) throw new ArgumentException($"The image needs {g.InputSize} values; got {xLength}.", "x");
        if (transformedLength < transformedSize) throw new ArgumentException($"The transformed kernel needs {transformedSize} values; got {transformedLength}.", "transformed");
        if (yLength < (rowEnd - rowStart) * g.OutWidth * filters) throw new ArgumentException($"The output rows need {(rowEnd - rowStart) * g.OutWidth * filters} values; got {yLength}.", "y");
        if (scratchLength < scratchSize) throw new ArgumentException($"Winograd needs {scratchSize} values of scratch; got {scratchLength}.", "scratch");
        if (biasLength != 0 && biasLength < filters) throw new ArgumentException($"The bias needs {filters} values; got {biasLength}.", "bias");
    }

    // The sizes AccumulateKernelGradient checks, shared with Winograd4.
    internal static void CheckAccumulate(in ConvGeometry g, int filters, int xLength, int dzLength, int dULength, int transformedSize, int scratchLength, int scratchSize)
    {
        if (xLength < g.InputSize) throw new ArgumentException($"The image needs {g.InputSize} values; got {xLength}.", "x");
        if (dzLength < g.Patches * filters) throw new ArgumentException($"The output gradient needs {g.Patches * filters} values; got {dzLength}.", "dz");
        if (dULength < transformedSize) throw new ArgumentException($"The transformed gradient needs {transformedSize} values; got {dULength}.", "dU");
        if (scratchLength < scratchSize) throw new ArgumentException($"Winograd needs {scratchSize} values of scratch; got {scratchLength}.", "scratch");
    }

    internal static void CheckKernelGradient(int transformedLength, int transformedSize, int channels, int filters, int kernelLength)
    {
        if (filters % 8 != 0) throw new ArgumentException($"Winograd takes filters in whole vectors of 8; got {filters}.", nameof(filters));
        if (transformedLength < transformedSize) throw new ArgumentException($"The transformed gradient needs {transformedSize} values; got {transformedLength}.", "dU");
        if (kernelLength < 9 * channels * filters) throw new ArgumentException($"The kernel gradient needs {9 * channels * filters} values; got {kernelLength}.", "dKernel");
    }

    // dM = A dY A^T for one tile's 2x2 output gradient, 8 filters at a time (zeros for outputs beyond the image:
    // only the top row exists unless down, only the left column unless right); stride: values between the 16 matrices.
    static void GradientTile(float* dz, long rowStride, int filters, bool down, bool right, float* dm, long stride)
    {
        for (int f = 0; f < filters; f += 8)
        {
            var y00 = Vector256.Load(dz + f);
            var y01 = right ? Vector256.Load(dz + filters + f) : Vector256<float>.Zero;
            var y10 = down ? Vector256.Load(dz + rowStride + f) : Vector256<float>.Zero;
            var y11 = down && right ? Vector256.Load(dz + rowStride + filters + f) : Vector256<float>.Zero;
            // A dY: four rows of two.
            var a10 = y00 + y10; var a11 = y01 + y11;
            var a20 = y00 - y10; var a21 = y01 - y11;
            float* o = dm + f;
            GradientRow(y00, y01, o, stride);
            GradientRow(a10, a11, o + 4 * stride, stride);
            GradientRow(a20, a21, o + 8 * stride, stride);
            GradientRow(-y10, -y11, o + 12 * stride, stride);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void GradientRow(Vector256<float> p, Vector256<float> q, float* o, long stride)
    {
        p.Store(o);
        (p + q).Store(o + stride);
        (p - q).Store(o + 2 * stride);
        (-q).Store(o + 3 * stride);
    }

    // V[xi] for one tile whose window starts at input (iy, ix), 8 channels at a time; stride: values between the
    // 16 matrices. Rows and columns outside the image read as zeros ('same' padding, and the ragged last tile).
    static void InputTile(in ConvGeometry g, float* x, int iy, int ix, float* v, long stride)
    {
        int channels = g.Channels, w = g.InWidth, h = g.InHeight;
        bool inside = iy >= 0 && ix >= 0 && iy + 4 <= h && ix + 4 <= w;
        for (int c = 0; c < channels; c += 8)
        {
            // d[i][j]: row i, column j of the window.
            Vector256<float> d00, d01, d02, d03, d10, d11, d12, d13, d20, d21, d22, d23, d30, d31, d32, d33;
            if (inside)
            {
                float* r0 = x + ((long)iy * w + ix) * channels + c, r1 = r0 + (long)w * channels, r2 = r1 + (long)w * channels, r3 = r2 + (long)w * channels;
                d00 = Vector256.Load(r0); d01 = Vector256.Load(r0 + channels); d02 = Vector256.Load(r0 + 2 * channels); d03 = Vector256.Load(r0 + 3 * channels);
                d10 = Vector256.Load(r1); d11 = Vector256.Load(r1 + channels); d12 = Vector256.Load(r1 + 2 * channels); d13 = Vector256.Load(r1 + 3 * channels);
                d20 = Vector256.Load(r2); d21 = Vector256.Load(r2 + channels); d22 = Vector256.Load(r2 + 2 * channels); d23 = Vector256.Load(r2 + 3 * channels);
                d30 = Vector256.Load(r3); d31 = Vector256.Load(r3 + channels); d32 = Vector256.Load(r3 + 2 * channels); d33 = Vector256.Load(r3 + 3 * channels);
            }
            else
            {
                d00 = At(x, g, iy, ix, c); d01 = At(x, g, iy, ix + 1, c); d02 = At(x, g, iy, ix + 2, c); d03 = At(x, g, iy, ix + 3, c);
                d10 = At(x, g, iy + 1, ix, c); d11 = At(x, g, iy + 1, ix + 1, c); d12 = At(x, g, iy + 1, ix + 2, c); d13 = At(x, g, iy + 1, ix + 3, c);
                d20 = At(x, g, iy + 2, ix, c); d21 = At(x, g, iy + 2, ix + 1, c); d22 = At(x, g, iy + 2, ix + 2, c); d23 = At(x, g, iy + 2, ix + 3, c);
                d30 = At(x, g, iy + 3, ix, c); d31 = At(x, g, iy + 3, ix + 1, c); d32 = At(x, g, iy + 3, ix + 2, c); d33 = At(x, g, iy + 3, ix + 3, c);
            }
            // B^T d: combine rows.
            var w00 = d00 - d20; var w01 = d01 - d21; var w02 = d02 - d22; var w03 = d03 - d23;
            var w10 = d10 + d20; var w11 = d11 + d21; var w12 = d12 + d22; var w13 = d13 + d23;
            var w20 = d20 - d10; var w21 = d21 - d11; var w22 = d22 - d12; var w23 = d23 - d13;
            var w30 = d10 - d30; var w31 = d11 - d31; var w32 = d12 - d32; var w33 = d13 - d33;
            // (B^T d) B: combine columns, and store V[4i + j].
            float* o = v + c;
            Row(w00, w01, w02, w03, o, stride);
            Row(w10, w11, w12, w13, o + 4 * stride, stride);
            Row(w20, w21, w22, w23, o + 8 * stride, stride);
            Row(w30, w31, w32, w33, o + 12 * stride, stride);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Row(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3, float* o, long stride)
    {
        (a0 - a2).Store(o);
        (a1 + a2).Store(o + stride);
        (a2 - a1).Store(o + 2 * stride);
        (a1 - a3).Store(o + 3 * stride);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> At(float* x, in ConvGeometry g, int row, int col, int c) =>
        row < 0 || col < 0 || row >= g.InHeight || col >= g.InWidth ? Vector256<float>.Zero
            : Vector256.Load(x + ((long)row * g.InWidth + col) * g.Channels + c);

    // Y = A^T M A for one tile, 8 filters at a time, plus the bias, clamped at 0 when relu; writes the 2x2 outputs
    // (only the bottom row when down, the right column when right: a ragged last tile writes what exists).
    static void OutputTile(float* m, long stride, int filters, float* bias, bool relu, float* y, long rowStride, bool down, bool right)
    {
        for (int f = 0; f < filters; f += 8)
        {
            float* p = m + f;
            var m00 = Vector256.Load(p); var m01 = Vector256.Load(p + stride); var m02 = Vector256.Load(p + 2 * stride); var m03 = Vector256.Load(p + 3 * stride);
            var m10 = Vector256.Load(p + 4 * stride); var m11 = Vector256.Load(p + 5 * stride); var m12 = Vector256.Load(p + 6 * stride); var m13 = Vector256.Load(p + 7 * stride);
            var m20 = Vector256.Load(p + 8 * stride); var m21 = Vector256.Load(p + 9 * stride); var m22 = Vector256.Load(p + 10 * stride); var m23 = Vector256.Load(p + 11 * stride);
            var m30 = Vector256.Load(p + 12 * stride); var m31 = Vector256.Load(p + 13 * stride); var m32 = Vector256.Load(p + 14 * stride); var m33 = Vector256.Load(p + 15 * stride);
            // A^T M: two rows.
            var r00 = m00 + m10 + m20; var r01 = m01 + m11 + m21; var r02 = m02 + m12 + m22; var r03 = m03 + m13 + m23;
            var r10 = m10 - m20 - m30; var r11 = m11 - m21 - m31; var r12 = m12 - m22 - m32; var r13 = m13 - m23 - m33;
            var b = bias is null ? Vector256<float>.Zero : Vector256.Load(bias + f);
            var y00 = r00 + r01 + r02 + b; var y01 = r01 - r02 - r03 + b;
            var y10 = r10 + r11 + r12 + b; var y11 = r11 - r12 - r13 + b;
            if (relu)
            {
                y00 = Vector256.Max(y00, Vector256<float>.Zero); y01 = Vector256.Max(y01, Vector256<float>.Zero);
                y10 = Vector256.Max(y10, Vector256<float>.Zero); y11 = Vector256.Max(y11, Vector256<float>.Zero);
            }
            y00.Store(y + f);
            if (right) y01.Store(y + filters + f);
            if (down)
            {
                y10.Store(y + rowStride + f);
                if (right) y11.Store(y + rowStride + filters + f);
            }
        }
    }
}
