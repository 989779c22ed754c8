using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Naani.Kernels;

// C[m,n] (+)= sum_p op(A)[m,p] * op(B)[p,n]   (row-major; op(X) = X or X^T, read through packing)
//
// Goto/BLIS structure: B is packed into kc x NR column panels, A into MR x kc row panels, and a
// register-blocked micro-kernel computes one MR x NR tile of C from one panel of each. Transposed
// operands cost nothing extra: packing reads them in whichever order they are stored.
// Most of the running time of training is spent in the micro-kernels at the bottom of this file.
[SkipLocalsInit]
public static unsafe partial class Gemm
{
    const int KC = 256;   // depth of a packed block: one A panel (MR x KC) + one B panel (KC x NR) stay in L1
    const int NC = 2048;  // columns of B packed at once

    static readonly bool Wide = Vector512.IsHardwareAccelerated;

    /// A micro-kernel's tile (MR x NR) and the rows of A packed per block (MC, a multiple of MR; the block stays in L2).
    readonly record struct Tile(int MR, int NR, int MC);

    static readonly Tile Wide8x32 = new(8, 32, 120);
    static readonly Tile Wide16x16 = new(16, 16, 112);
    static readonly Tile Narrow6x16 = new(6, 16, 120);

    /// The tile that wastes least on the padding of n: 16 columns when n is small or leaves a half panel, else 32.
    static Tile TileFor(int n) => !Wide ? Narrow6x16 : RoundUp(n, 16) < RoundUp(n, 32) ? Wide16x16 : Wide8x32;

    [ThreadStatic] static float[]? packA;
    [ThreadStatic] static float[]? packB;

    /// C = op(A) * op(B), or C += op(A) * op(B) when accumulate. A is m x k (k x m when transA),
    /// B is k x n (n x k when transB); lda/ldb/ldc are row strides. Splits the work across
    /// Threading.Available threads unless parallel is false.
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc,
        bool accumulate = false, bool parallel = true)
    {
        Check("A", a.Length, transA ? k : m, transA ? m : k, lda);
        Check("B", b.Length, transB ? n : k, transB ? k : n, ldb);
        Check("C", c.Length, m, n, ldc);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            Multiply(transA, transB, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate, parallel);
    }

    static void Check(string name, int length, int rows, int cols, int ld)
    {
        if (rows < 0 || cols < 0 || ld < cols)
            throw new ArgumentException($"GEMM operand {name}: {rows} x {cols} with row stride {ld} is not a valid matrix.");
        long needed = rows == 0 ? 0 : (long)(rows - 1) * ld + cols;
        if (length < needed)
            throw new ArgumentException($"GEMM operand {name}: {rows} x {cols} (stride {ld}) needs {needed:N0} values; the span has {length:N0}.");
    }

    /// Rows of A that products are best given in multiples of: the micro-kernel's rows (6 with Vector256; 8 or 16 with
    /// Vector512, where 8 serves both), so no tile computes rows past the end.
    internal static int RowMultiple => Wide ? 8 : 6;

    /// Columns per panel of a packed B with n columns: the width of the tile Multiply uses for n columns.
    public static int PanelWidth(int n) => TileFor(n).NR;

    /// Values PackB writes for a k x n B: whole panels of PanelWidth(n) columns, zero past column n.
    public static long PackedSize(int k, int n) => (long)RoundUp(n, PanelWidth(n)) * k;

    /// B (k x n, row stride ldb) as the micro-kernels read it, for MultiplyPacked: for each panel of PanelWidth(n)
    /// columns, its k rows one after the other. A B used for many products (a layer's weights, Winograd's transformed
    /// kernel) is packed once instead of by every product: the packed path copies KC x NC blocks of B per product,
    /// 37.7 MB a block of tiles for VGG16's 512-channel layers.
    public static void PackB(ReadOnlySpan<float> b, int k, int n, int ldb, Span<float> packed)
    {
        Check("B", b.Length, k, n, ldb);
        if (packed.Length < PackedSize(k, n))
            throw new ArgumentException($"A packed {k} x {n} B needs {PackedSize(k, n):N0} values; the span has {packed.Length:N0}.");
        if (k == 0 || n == 0) return;
        fixed (float* pb = b) fixed (float* pp = packed)
            PackB(false, pb, ldb, 0, 0, k, n, PanelWidth(n), pp);
    }

    /// C = A B, or C += A B when accumulate, for B packed by PackB (k x n), on the calling thread (its callers, the
    /// Winograd blocks, run one per thread). A is m x k with row stride lda.
    public static void MultiplyPacked(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> packedB,
        Span<float> c, int ldc, bool accumulate = false)
    {
        Check("A", a.Length, m, k, lda);
        Check("C", c.Length, m, n, ldc);
        if (packedB.Length < PackedSize(k, n))
            throw new ArgumentException($"GEMM operand B: packed {k} x {n} needs {PackedSize(k, n):N0} values; the span has {packedB.Length:N0}.");
        if (m == 0 || n == 0) return;
        fixed (float* pa = a) fixed (float* pb = packedB) fixed (float* pc = c)
            MultiplyPacked(m, n, k, pa, lda, pb, pc, ldc, accumulate);
    }

    /// Whether there is nothing to multiply: no rows or columns, or a depth of 0 (C then cleared unless accumulating).
    static bool Empty(int m, int n, int k, float* c, int ldc, bool accumulate)
    {
        if (m == 0 || n == 0) return true;
        if (k != 0) return false;
        if (!accumulate)
            for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
        return true;
    }

    /// Pointer form of MultiplyPacked.
    public static void MultiplyPacked(int m, int n, int k, float* a, int lda, float* packedB, float* c, int ldc, bool accumulate) =>
        MultiplyPacked(false, m, n, k, a, lda, packedB, c, ldc, accumulate);

    /// MultiplyPacked with op(A) = A^T where transA (A stored k x m, row stride lda).
    internal static void MultiplyPacked(bool transA, int m, int n, int k, float* a, int lda, float* packedB, float* c, int ldc, bool accumulate)
    {
        if (Empty(m, n, k, c, ldc, accumulate)) return;
        var tile = TileFor(n);
        Serial(tile, transA, false, m, n, k, a, lda, packedB, tile.NR, c, ldc, accumulate, bPacked: true);
    }

    /// Pointer form for kernels that already hold pinned buffers.
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, bool parallel)
    {
        if (Empty(m, n, k, c, ldc, accumulate)) return;
        int threads = parallel ? Threading.Available : 1;
        if (FewRows(transA, transB, m, n, k))
        {
            FewRowsProduct(m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads);
            return;
        }
        if (SwapsOperands(transA, transB, m, n, k))
        {
            MultiplySwapped(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads);
            return;
        }
        if (FewRowsTransposed(transA, transB, m, n, k))
        {
            FewRowsTransposedProduct(m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads);
            return;
        }
        General(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads);
    }

    // A product of a few rows of A (a dense layer at a batch of 17-256, mnist-baseline's 4608 -> 128 at 128) and a large B
    // (its weights): computed as C^T = op(B)^T op(A)^T, into a buffer, then transposed into C. The weights then go
    // through A's packing, an MC x KC block at a time right before the micro-kernels use it, and the few rows through
    // B's, which stay in L1; packed as B (KC x 2048 blocks, packed whole before any product) they were the slower of
    // the two everywhere measured here (Zen 5, 2 threads, best of 15): 32 x 512 x 36992 (cats-dogs-150's dense layer)
    // 6.5 -> 3.4 ms, 32 x 128 x 32768 (naani-128's) 2.2 -> 1.2, 128 x 128 x 4608 0.65 -> 0.52, 256 x 512 x 4608
    // 3.1 -> 2.4, 64 x 1024 x 1024 0.46 -> 0.35; and for dx = dy W^T (B transposed), where the few-rows path took
    // up to 32 rows, 32 x 36992 x 512 6.2 -> 4.6 (24 rows 5.0-5.8 -> 4.2-5.3; 16 rows 3.9 -> 3.6, left to it), and
    // 32 x 32768 x 128 1.2 -> 0.8 with the transpose (0.5 without). Not where A is transposed (a kernel gradient,
    // x^T dy), nor for B transposed past 64 rows (128 x 4608 x 128: 0.44 -> 0.53), nor for large products (1024^3:
    // 4.3 -> 4.7). The transpose is a pass over C: 4 MB each way for a dx of 32 x 32768.
    static bool SwapsOperands(bool transA, bool transB, int m, int n, int k) =>
        !transA && (transB ? m > 16 && m <= 64 && n >= 1024 : m <= 256 && n >= 64 && k >= 1024);

    [ThreadStatic] static float[]? swapBuffer;

    static void MultiplySwapped(bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb,
        float* c, int ldc, bool accumulate, int threads)
    {
        long size = (long)m * n;
        var buffer = swapBuffer;
        if (buffer is null || buffer.Length < size) swapBuffer = buffer = GC.AllocateUninitializedArray<float>((int)size, pinned: true);
        fixed (float* ct = buffer)
        {
            General(!transB, !transA, n, m, k, b, ldb, a, lda, ct, m, accumulate: false, threads);
            if (threads == 1 || size < 1 << 16)
            {
                TransposeInto(ct, n, m, c, ldc, accumulate);
                return;
            }
            // The threads share the rows of C^T (a dx of 32 x 32768 is 4 MB each way), in whole blocks of 64.
            var job = transposeJob ??= new TransposeJob();
            (job.T, job.Rows, job.Cols, job.C, job.Ldc, job.Accumulate) = ((nint)ct, n, m, (nint)c, ldc, accumulate);
            Threading.For((n + 63) / 64, job.Body);
        }
    }

    [ThreadStatic] static TransposeJob? transposeJob;

    // MultiplySwapped's transpose split across threads, its arguments in fields so dispatching allocates nothing.
    sealed class TransposeJob
    {
        public nint T, C;
        public int Rows, Cols, Ldc;
        public bool Accumulate;
        public readonly Action<int, int, int> Body;

        public TransposeJob() => Body = Run;

        void Run(int part, int u0, int u1)
        {
            int r0 = u0 * 64, r1 = Math.Min(Rows, u1 * 64);
            TransposeInto((float*)T + (long)r0 * Cols, r1 - r0, Cols, (float*)C + r0, Ldc, Accumulate);
        }
    }

    // C (cols x rows, row stride ldc) = or += T^T for T rows x cols (row stride cols): 8 x 8 blocks transposed in
    // registers, 64 rows of T at a time (in L1) so that each row of C is written 256 bytes at a time; the edges one
    // value at a time.
    static void TransposeInto(float* t, int rows, int cols, float* c, int ldc, bool accumulate)
    {
        float* block = stackalloc float[64];
        int whole = Avx.IsSupported ? rows / 8 * 8 : 0, wholeCols = cols / 8 * 8;
        for (int r0 = 0; r0 < whole; r0 += 64)
        {
            int r1 = Math.Min(whole, r0 + 64);
            for (int q = 0; q < wholeCols; q += 8)
                for (int r = r0; r < r1; r += 8)
                {
                    float* src = t + (long)r * cols + q, dst = c + (long)q * ldc + r;
                    if (!accumulate)
                    {
                        Transpose8(src, cols, 8, dst, ldc);
                        continue;
                    }
                    Transpose8(src, cols, 8, block, 8);
                    for (int i = 0; i < 8; i++)
                        Avx.Store(dst + (long)i * ldc, Avx.Add(Avx.LoadVector256(dst + (long)i * ldc), Avx.LoadVector256(block + 8 * i)));
                }
            for (int q = wholeCols; q < cols; q++)
                for (int r = r0; r < r1; r++) Set(c + (long)q * ldc + r, t[(long)r * cols + q], accumulate);
        }
        for (int r = whole; r < rows; r++)
            for (int q = 0; q < cols; q++) Set(c + (long)q * ldc + r, t[(long)r * cols + q], accumulate);

        static void Set(float* at, float value, bool accumulate) => *at = accumulate ? *at + value : value;
    }

    static void General(bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb,
        float* c, int ldc, bool accumulate, int threads)
    {
        long work = (long)m * n * k;
        if (threads == 1 || work < 64 * 64 * 64)
        {
            Serial(TileFor(n), transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }
        // Split C into NR-wide column slices or MR-tall row slices, one per thread. Each thread packs
        // what it reads: a column split makes every thread pack all of A (unless A is read in place,
        // when transposed), a row split all of B (unless read in place: not transposed, few rows, no aliasing).
        var tile = TileFor(n);
        // A row split leaves each thread about m / threads rows, which decide whether it packs B.
        long packAllA = transA ? 0 : (long)m * k, packAllB = PacksB(transB, (m + threads - 1) / threads, ldb, Math.Min(KC, k), tile) ? (long)n * k : 0;
        bool enoughColumns = n >= threads * tile.NR, enoughRows = m >= threads * tile.MR;
        // Where either split would have each thread pack all of one operand, the threads split the rows and pack each
        // block of B together instead: every value of A and B is packed once, for a wait per block of KC rows of B.
        // It pays where the copies saved (the smaller operand's, packed by every thread) outweigh the waits: about 8,192
        // values, a few microseconds of copying, per wait.
        long waits = (long)((n + NC - 1) / NC) * ((k + KC - 1) / KC);
        // A small C over a long depth (a dense layer's product swapped: cats-dogs-150's forward is 512 x 32 over 36,992): the
        // threads split the depth, each multiplying its own rows of B, a contiguous stretch of the weights, into a partial
        // C; a row or column split would have each thread stream every row of B and pack all of the other operand.
        var split = DepthSplits(m, n, k, threads) ? Split.Depth
            : enoughRows && n > tile.NR && Math.Min(packAllA, packAllB) >= 8192 * waits ? Split.RowsSharingB
            : enoughColumns && (!enoughRows || packAllA < packAllB || (packAllA == packAllB && n >= m)) ? Split.Columns
            : Split.Rows;
        var job = parallelJob ??= new ParallelJob();
        job.Set(tile, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, split);
        Threading.For(job.Units, job.Body);
        job.AddPartials();
    }

    [ThreadStatic] static ParallelJob? parallelJob;

    /// Whether the threads split the depth (Split.Depth): C of at most 64K values (a partial per thread stays in L2) and
    /// a depth of 4,096 or more, at least 8 blocks of KC per thread.
    static bool DepthSplits(int m, int n, int k, int threads) => (long)m * n <= 1 << 16 && k >= 4096 && k >= threads * 8 * KC;

    /// How a parallel product shares C among the threads: NR-wide column slices, MR-tall row slices each packing what it
    /// reads, row slices that pack each block of B together (ParallelJob.MultiplyRowsSharingB), or slices of the depth,
    /// each into a partial C of its own, added in order (Depth).
    enum Split { Columns, Rows, RowsSharingB, Depth }

    // The arguments of one parallel GEMM, held in fields so dispatching to threads allocates nothing.
    sealed class ParallelJob
    {
        bool transA, transB, accumulate;
        Split split;
        int m, n, k, lda, ldb, ldc, parts, blockSize;
        Tile tile;
        nint a, b, c;
        float[] blocks = [];   // RowsSharingB: two blocks of packed B, which all threads read
        long arrived;          // RowsSharingB: arrivals at the waits, over all blocks
        public int Units;
        public readonly Action<int, int, int> Body;

        public ParallelJob() => Body = Run;

        public void Set(Tile tile, bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, Split split)
        {
            (this.transA, this.transB, this.m, this.n, this.k, this.lda, this.ldb, this.ldc, this.accumulate, this.split) =
                (transA, transB, m, n, k, lda, ldb, ldc, accumulate, split);
            (this.a, this.b, this.c) = ((nint)a, (nint)b, (nint)c);
            this.tile = tile;
            Units = split == Split.Columns ? (n + tile.NR - 1) / tile.NR : split == Split.Depth ? Threading.Parts(k / KC) : (m + tile.MR - 1) / tile.MR;
            if (split == Split.Depth)
            {
                depth.Prepare(Units, m, n, k, 8);
                return;
            }
            if (split != Split.RowsSharingB) return;
            parts = Threading.Parts(Units);   // the parts Threading.For runs, each on its own thread: every one waits for all
            blockSize = Math.Min(KC, k) * Math.Min(NC, RoundUp(n, tile.NR));
            if (blocks.Length < 2 * blockSize) blocks = GC.AllocateUninitializedArray<float>(2 * blockSize, pinned: true);
            arrived = 0;
        }

        readonly DepthPartials depth = new();   // Depth: the parts' partial products

        /// Depth: C (+)= the partials of parts 1.., in order.
        public void AddPartials()
        {
            if (split == Split.Depth) depth.AddTo((float*)c, ldc);
        }

        void Run(int part, int u0, int u1)
        {
            float* pa = (float*)a, pb = (float*)b, pc = (float*)c;
            if (split == Split.Depth)
            {
                // Depth [p0, p1) in whole blocks of 8 (the last part takes the rest).
                var (p0, p1) = depth.Share(u0, u1);
                float* ap = transA ? pa + (long)p0 * lda : pa + p0, bp = transB ? pb + p0 : pb + (long)p0 * ldb;
                float* target = depth.Target(u0, pc, ldc, out int ldt);
                Serial(tile, transA, transB, m, n, p1 - p0, ap, lda, bp, ldb, target, ldt, u0 == 0 && accumulate);
                return;
            }
            if (split == Split.Columns)
            {
                int j0 = u0 * tile.NR, j1 = Math.Min(n, u1 * tile.NR);
                float* bj = transB ? pb + (long)j0 * ldb : pb + j0;
                Serial(tile, transA, transB, m, j1 - j0, k, pa, lda, bj, ldb, pc + j0, ldc, accumulate);
                return;
            }
            int i0 = u0 * tile.MR, i1 = Math.Min(m, u1 * tile.MR);
            float* ai = transA ? pa + i0 : pa + (long)i0 * lda;
            if (split == Split.Rows)
            {
                Serial(tile, transA, transB, i1 - i0, n, k, ai, lda, pb, ldb, pc + (long)i0 * ldc, ldc, accumulate);
                return;
            }
            try
            {
                MultiplyRowsSharingB(part, i1 - i0, ai, pc + (long)i0 * ldc);
            }
            catch
            {
                Volatile.Write(ref arrived, long.MaxValue / 2);   // lets the other threads past every wait; the exception surfaces
                throw;
            }
        }

        // BLIS's scheme: for each block of KC x NC values of B, each thread packs its share of the block's rows into every
        // panel of a buffer all of them read, waits until all have, then multiplies its rows by every panel. Two buffers
        // alternate, so one wait per block suffices: a thread packs block s + 1 only after all threads have arrived at
        // block s's wait, that is, finished multiplying block s - 1.
        void MultiplyRowsSharingB(int part, int rows, float* ai, float* ci)
        {
            int nr = tile.NR, kStep = DepthStep(k);
            bool prefetchC = PrefetchesC(m, ldc);
            float* tileBuffer = stackalloc float[16 * 32];
            long block = 0;
            fixed (float* pA = PackABuffer(tile)) fixed (float* shared = blocks)
            {
                for (int jc = 0; jc < n; jc += NC)
                {
                    int nc = Math.Min(NC, n - jc);
                    for (int p0 = 0; p0 < k; p0 += kStep, block++)
                    {
                        int kc = Math.Min(kStep, k - p0);
                        float* panels = shared + (block & 1) * blockSize;
                        // Each thread packs a share of the block's rows into every panel: a contiguous stretch of B
                        // (not transposed), read front to back.
                        var (s0, s1) = Threading.Range(kc, parts, part);
                        if (s1 > s0) PackB(transB, (float*)b, ldb, p0 + s0, jc, s1 - s0, nc, nr, panels + (long)s0 * nr, (long)kc * nr);
                        Interlocked.Increment(ref arrived);
                        var spin = new SpinWait();
                        while (Volatile.Read(ref arrived) < (block + 1) * parts) spin.SpinOnce(sleep1Threshold: -1);
                        var bBlock = new BBlock(false, 0, (float*)b, ldb, p0, jc, panels, (long)kc * nr, nr);
                        RowBlocks(tile, transA, false, rows, nc, kc, ai, lda, bBlock, ci + jc, ldc, accumulate || p0 > 0, prefetchC, pA, tileBuffer);
                    }
                }
            }
        }
    }

    /// One thread's share: the Goto loop nest over blocks of N, K and M. With bPacked, B is PackB's layout (panels of
    /// k x NR values) and is read in place.
    static void Serial(Tile t, bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, bool bPacked = false)
    {
        int nr = t.NR, kStep = DepthStep(k);
        bool prefetchC = PrefetchesC(m, ldc);
        int ncMax = Math.Min(NC, RoundUp(n, nr));
        int kcMax = Math.Min(KC, k);
        var bufB = packB;
        if (bufB is null || bufB.Length < kcMax * ncMax) packB = bufB = new float[Math.Max(kcMax * ncMax, KC * nr)];
        float* tile = stackalloc float[16 * 32];
        fixed (float* pA = PackABuffer(t)) fixed (float* pB = bufB)
        {
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                for (int pc = 0; pc < k; pc += kStep)
                {
                    int kc = Math.Min(kStep, k - pc);
                    bool acc = accumulate || pc > 0;
                    // B stored k x n can be read in place (its rows are panel rows) or packed into contiguous KC x NR
                    // panels, which stay in L1 while the micro-kernel walks the rows of A. In place, a panel's rows sit
                    // ldb apart: at strides of a multiple of 2 KiB (square layers: 1024 floats is 4 KiB) they fall into
                    // a few L1 sets and evict one another, and the 8x32 kernel ran at 35-55% of the FMA peak instead of
                    // 60-76% packed (Intel family 6 model 207, one thread). Packing costs one copy of B per block of
                    // KC rows, repaid when many rows of A use it; a single panel (n <= NR) is always read in place.
                    bool bInPlace = !bPacked && !transB && (nc <= nr || !PacksB(transB, m, ldb, kStep, t));
                    int nFull = nc / nr * nr;
                    // The panels read where B is not read in place: B's own when PackB packed it whole (panel j at
                    // (jc + j) * k, this block from its row pc), else this block's, packed here (kc x NR each).
                    var block = new BBlock(bInPlace, nFull, b, ldb, pc, jc, bPacked ? b + (long)jc * k + (long)pc * nr : pB,
                        bPacked ? (long)k * nr : (long)kc * nr, nr);
                    if (!bPacked && !bInPlace) PackB(transB, b, ldb, pc, jc, kc, nc, nr, pB);
                    else if (bInPlace && nFull < nc) PackB(false, b, ldb, pc, jc + nFull, kc, nc - nFull, nr, pB + (long)nFull * kc);
                    // A is read in place where packing it would not pay: with a single column panel each row of A is used
                    // once; a B packed whole belongs to the Winograd products, whose A (the transformed tiles, tb x C)
                    // is fresh in cache and meets only K / NR panels.
                    bool aInPlace = !transA && (nc <= nr || bPacked);
                    RowBlocks(t, transA, aInPlace, m, nc, kc, a, lda, block, c + jc, ldc, acc, prefetchC, pA, tile);
                }
            }
        }
    }

    /// C[0..m, 0..nc) (+)= A[0..m, pc..pc+kc) times one block of B (kc x nc): A packed MC rows at a time (read in place
    /// where transposed, or where aInPlace: whole tiles of rows only), each block of A multiplied by every panel of the block.
    static void RowBlocks(Tile t, bool transA, bool aInPlace, int m, int nc, int kc, float* a, int lda, in BBlock block,
        float* c, int ldc, bool acc, bool prefetchC, float* pA, float* tile)
    {
        int mr = t.MR, nr = t.NR, pc = block.Pc;
        bool direct = transA || aInPlace;
        for (int ic = 0; ic < m; ic += t.MC)
        {
            int mcur = Math.Min(t.MC, m - ic);
            // A stored k x m (transposed) is read in place too: a panel column is MR contiguous values.
            int mFull = direct ? mcur / mr * mr : 0;
            if (!direct) PackA(false, a, lda, ic, pc, mcur, kc, mr, pA);
            else if (mFull < mcur) PackA(transA, a, lda, ic + mFull, pc, mcur - mFull, kc, mr, pA + (long)mFull * kc);
            for (int jr = 0; jr < nc; jr += nr)
            {
                int ncur = Math.Min(nr, nc - jr);
                var (bp, bs) = block.Panel(jr);
                for (int ir = 0; ir < mcur; ir += mr)
                {
                    int mcurr = Math.Min(mr, mcur - ir);
                    bool aDirect = direct && ir < mFull;
                    float* cp = c + (long)(ic + ir) * ldc + jr;
                    if (aDirect && !transA)
                    {
                        MicroKernelDirect(t, kc, a + (long)(ic + ir) * lda + pc, lda, (float*)bp, bs, cp, ldc, acc, ncur);
                        continue;
                    }
                    float* ap = aDirect ? a + (long)pc * lda + ic + ir : pA + (long)ir * kc;
                    int aStride = aDirect ? lda : mr;
                    if (mcurr == mr && ncur == nr)
                    {
                        if (prefetchC) PrefetchTile(cp, ldc, mr, nr);
                        MicroKernel(t, kc, ap, aStride, (float*)bp, bs, cp, ldc, acc);
                    }
                    else
                    {
                        MicroKernel(t, kc, ap, aStride, (float*)bp, bs, tile, nr, false);
                        AddTile(tile, nr, mcurr, ncur, cp, ldc, acc);
                    }
                }
            }
        }
    }

    /// Depth blocks of equal size (288 = 144 + 144, not 256 + 32): a short last block would pay a micro-kernel's
    /// fixed costs (loading and storing its tile of C) for a few steps of p.
    static int DepthStep(int k)
    {
        int kBlocks = (k + KC - 1) / KC;
        return Math.Min(KC, RoundUp((k + kBlocks - 1) / kBlocks, 8));
    }

    /// C of 1 MB or more: it does not stay in L2 between its tiles' visits, so each tile is prefetched.
    static bool PrefetchesC(int m, int ldc) => (long)m * ldc >= 1 << 18;

    /// This thread's buffer for packed blocks of A (MC x KC, and the slack of a 6-row panel's last column).
    static float[] PackABuffer(Tile t)
    {
        var buf = packA;
        if (buf is null || buf.Length < t.MC * KC + PackASlack) packA = buf = new float[Math.Max(t.MC, 128) * KC + PackASlack];
        return buf;
    }

    /// Where one block of B (kc rows from row Pc, columns from Jc) is read: in place in B (row stride ldb) for its
    /// first nFull columns when InPlace, else from packed panels (kc x NR each, panelStride values apart).
    readonly struct BBlock(bool inPlace, int nFull, float* b, int ldb, int pc, int jc, float* panels, long panelStride, int nr)
    {
        public int Pc => pc;

        /// The panel starting at column jr of the block, and its row stride.
        public (nint Pointer, int Stride) Panel(int jr) =>
            inPlace && jr < nFull ? ((nint)(b + (long)pc * ldb + jc + jr), ldb) : ((nint)(panels + jr / nr * panelStride), nr);
    }

    /// Asks for the tile of C a micro-kernel is about to compute, which it touches only at the end: rows ldc apart
    /// (8 KB for a 2048-wide C) are each a miss that no hardware prefetcher sees coming, and a C larger than the caches
    /// (16 MB at 2048 x 2048) would stall every tile on 12-16 misses to memory. Fetched now, they arrive during the
    /// tile's kc steps of FMAs.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void PrefetchTile(float* c, int ldc, int mr, int nr)
    {
        if (!Sse.IsSupported) return;
        for (int i = 0; i < mr; i++)
        {
            float* row = c + (long)i * ldc;
            Sse.Prefetch0(row);
            Sse.Prefetch0(row + nr - 1);
        }
    }

    /// Whether a thread multiplying `rows` rows of A packs B (more than one panel of it): always when B is transposed;
    /// when 2 x MC or more rows reuse the packed panels; and when a panel of kc rows of B, read in place, would not stay in L1.
    static bool PacksB(bool transB, int rows, int ldb, int kc, Tile t) => transB || rows >= 2 * t.MC || AliasesInL1(ldb, kc, t.NR);

    /// Whether a panel of kc rows of nr floats, its rows `stride` floats apart, crowds out of L1. Rows a multiple of
    /// 64 bytes apart fall into the L1 sets 64 / gcd(stride in lines, 64) apart: a stride of 2 KiB puts them all in 2
    /// of the 64 sets (square layers: 1024 floats is 4 KiB), 512 bytes in 8. Each set holds L1Ways lines (8 in the
    /// 32 KiB L1 of Zen 3 and 4, 12 in the 48 KiB of Zen 5 and recent Intel cores: read from the machine, CpuCaches),
    /// and the panel must leave half of what its sets hold to A and C.
    /// In place, an aliased panel ran the 8x32 kernel at 35-55% of the FMA peak instead of 60-76% packed (Intel
    /// family 6 model 207, one thread); on Zen 3, 200 x 512 x 512 went from 56-57 to 70-80 GFLOP/s packed.
    static bool AliasesInL1(int stride, int kc, int nr)
    {
        const int Sets = 64, Line = 64;
        long bytes = (long)stride * sizeof(float);
        if (bytes % Line != 0) return false;   // rows that start at every offset within a line spread over the sets
        int lines = (int)(bytes / Line % Sets), gcd = Sets;
        for (int a = lines; a != 0;) (gcd, a) = (a, gcd % a);
        int sets = Sets / gcd;
        int linesPerRow = (nr * sizeof(float) + Line - 1) / Line;
        return 2L * kc * linesPerRow > (long)sets * L1Ways;
    }

    /// Lines per L1 set: the L1 data cache's size over its 64 sets of 64-byte lines (x86 cores keep 4 KiB a way).
    static readonly int L1Ways = (int)Math.Clamp(CpuCaches.L1Data / (64 * 64), 4, 32);

    // c (+)= tile for the top-left rows x cols of a tile with row stride ldt, 8 columns at a time.
    static void AddTile(float* tile, int ldt, int rows, int cols, float* c, int ldc, bool accumulate)
    {
        for (int i = 0; i < rows; i++)
        {
            float* t = tile + i * ldt, ci = c + (long)i * ldc;
            int j = 0;
            for (; j <= cols - 8; j += 8)
            {
                var v = Vector256.Load(t + j);
                (accumulate ? v + Vector256.Load(ci + j) : v).Store(ci + j);
            }
            for (; j < cols; j++) ci[j] = accumulate ? ci[j] + t[j] : t[j];
        }
    }

    static int RoundUp(int x, int to) => (x + to - 1) / to * to;

    // Packed B: for each NR-wide column panel, kc rows of NR values (zero beyond column n); panel j starts at
    // dst + j * panelStride (kc * nr when 0: the panels one after the other).
    static void PackB(bool transB, float* b, int ldb, int p0, int j0, int kc, int nc, int nr, float* dst, long panelStride = 0)
    {
        if (panelStride == 0) panelStride = (long)kc * nr;
        int full = nc / nr * nr;
        if (!transB)
        {
            // Row by row, each row of B read front to back: B comes from memory when it is a layer's weights, and
            // one stream of whole lines keeps the prefetchers ahead where walking a panel's rows (nr values every
            // ldb) does not. The hardware prefetchers still fall behind where a thread packs part of each row (a
            // column split: cats-dogs-150's 36992 x 512 weights, 1 KB of each 2 KB row), so the rows PrefetchRows
            // ahead are prefetched by hand: 2.5x the bandwidth there (5.7 -> 14.5 GB/s on one Zen 5 core), 1.4x on
            // whole rows.
            for (int p = 0; p < kc; p++)
            {
                float* src = b + (long)(p0 + p) * ldb + j0, d = dst + (long)p * nr;
                if (Sse.IsSupported)
                {
                    float* ahead = src + (long)PrefetchRows * ldb;   // past B's end near its last rows: a prefetch never faults
                    for (int j = 0; j < nc; j += 16) Sse.Prefetch0(ahead + j);
                }
                for (int jr = 0; jr < full; jr += nr, d += panelStride)
                    for (int j = 0; j < nr; j += 8) Vector256.Store(Vector256.Load(src + jr + j), d + j);   // NR is 16 or 32: no memmove call per row
                if (full < nc)
                {
                    for (int j = 0; j < nc - full; j++) d[j] = src[full + j];
                    for (int j = nc - full; j < nr; j++) d[j] = 0;
                }
            }
            return;
        }
        // B stored n x k: element (p, j) is b[j * ldb + p]. Blocks of 8 x 8 are transposed in registers (columns past
        // w load as zeros), the last kc % 8 rows one value at a time.
        for (int jr = 0; jr < nc; jr += nr)
        {
            int w = Math.Min(nr, nc - jr), p = 0;
            float* panel = dst + jr / nr * panelStride;
            if (Avx.IsSupported)
                for (; p <= kc - 8; p += 8)
                    for (int j = 0; j < nr; j += 8)
                        Transpose8(b + (long)(j0 + jr + j) * ldb + p0 + p, ldb, Math.Clamp(w - j, 0, 8), panel + p * nr + j, nr);
            for (int j = 0; j < nr; j++)
            {
                float* src = b + (long)(j0 + jr + j) * ldb + p0;
                for (int q = p; q < kc; q++) panel[q * nr + j] = j < w ? src[q] : 0;
            }
        }
    }

    /// Rows of B ahead of the one being packed that PackB prefetches (4 to 16 measured alike).
    const int PrefetchRows = 8;

    // Packed A: for each MR-tall row panel, kc columns of MR values (zero beyond row m).
    static void PackA(bool transA, float* a, int lda, int i0, int p0, int mc, int kc, int mr, float* dst)
    {
        for (int ir = 0; ir < mc; ir += mr)
        {
            int h = Math.Min(mr, mc - ir);
            float* panel = dst + (long)ir * kc;
            if (transA)
            {
                // A stored k x m: element (i, p) is a[p * lda + i]; a panel column is contiguous.
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(p0 + p) * lda + i0 + ir;
                    float* d = panel + p * mr;
                    for (int i = 0; i < h; i++) d[i] = src[i];
                    for (int i = h; i < mr; i++) d[i] = 0;
                }
            }
            else
            {
                // Eight columns of the panel at a time, transposed in registers: rows past h load as zeros. With
                // MR = 6 (Vector256) each column is stored as 8 values whose last 2 spill into the next column's
                // slot, rewritten by the next store (or, after the panel's last column, into the next panel or
                // the buffer's slack: PackASlack).
                int p = 0;
                if (Avx.IsSupported && (mr % 8 == 0 || mr == 6))
                    for (; p <= kc - 8; p += 8)
                        for (int half = 0; half < mr; half += 8)
                            Transpose8(a + (long)(i0 + ir + half) * lda + p0 + p, lda, Math.Min(8, h - half), panel + p * mr + half, mr);
                for (int i = 0; i < mr; i++)
                {
                    float* src = a + (long)(i0 + ir + i) * lda + p0;
                    for (int q = p; q < kc; q++) panel[q * mr + i] = i < h ? src[q] : 0;
                }
            }
        }
    }

    /// Values the packed-A buffer holds beyond its panels: where the last column of a 6-row panel spills.
    const int PackASlack = 8;

    // dst[q * lds + r] = src[r * ld + q] for r < rows (0 for rows <= r < 8), q < 8; each column is stored as 8 values.
    static void Transpose8(float* src, int ld, int rows, float* dst, int lds)
    {
        var z = Vector256<float>.Zero;
        var r0 = rows > 0 ? Avx.LoadVector256(src) : z; var r1 = rows > 1 ? Avx.LoadVector256(src + ld) : z;
        var r2 = rows > 2 ? Avx.LoadVector256(src + 2L * ld) : z; var r3 = rows > 3 ? Avx.LoadVector256(src + 3L * ld) : z;
        var r4 = rows > 4 ? Avx.LoadVector256(src + 4L * ld) : z; var r5 = rows > 5 ? Avx.LoadVector256(src + 5L * ld) : z;
        var r6 = rows > 6 ? Avx.LoadVector256(src + 6L * ld) : z; var r7 = rows > 7 ? Avx.LoadVector256(src + 7L * ld) : z;
        Transpose8x8(r0, r1, r2, r3, r4, r5, r6, r7, dst, lds);
    }

    // dst[q * lds + r] = r_r[q] for an 8 x 8 block in registers: unpack, shuffle, then swap 128-bit halves; the
    // columns are stored in order (a store may spill into the next column's slot when lds < 8).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8x8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7, float* dst, int lds)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + lds, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2L * lds, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3L * lds, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4L * lds, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5L * lds, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6L * lds, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7L * lds, Avx.Permute2x128(u3, u7, 0x31));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void MicroKernel(Tile t, int kc, float* a, int aStride, float* b, int bStride, float* c, int ldc, bool accumulate)
    {
        if (!Wide) Kernel6x16(kc, a, aStride, b, bStride, c, ldc, accumulate);
        else if (t.NR == 32) Kernel8x32(kc, a, aStride, b, bStride, c, ldc, accumulate);
        else Kernel16x16(kc, a, aStride, b, bStride, c, ldc, accumulate);
    }

    // The direct micro-kernels (A read in place, rows lda apart) call this every 16 steps: a line of each of the next
    // tile's rows, at the step they are at. A read in place is a dense layer's weights streamed from memory for dx
    // (MultiplySwapped) as often as a fresh Winograd matrix, and the hardware prefetchers do not ramp up on a tile's
    // streams of 1 KB (256 steps) each. Swapped dx of cats-dogs-150's dense layer (32 x 36992 x 512), Zen 5, 2
    // threads: 5.2-5.4 -> 3.1 ms.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void PrefetchNextRows(float* a, int lda, int rows)
    {
        if (!Sse.IsSupported) return;
        // Written out rather than looped: rows is a constant (6 or 8) once inlined, and the test below folds away.
        float* n0 = a + (long)rows * lda, n2 = n0 + 2L * lda, n4 = n0 + 4L * lda;
        Sse.Prefetch0(n0); Sse.Prefetch0(n0 + lda); Sse.Prefetch0(n2); Sse.Prefetch0(n2 + lda); Sse.Prefetch0(n4); Sse.Prefetch0(n4 + lda);
        if (rows == 8)
        {
            float* n6 = n0 + 6L * lda;
            Sse.Prefetch0(n6);
            Sse.Prefetch0(n6 + lda);
        }
    }

    // A read in place (row stride lda) for rows 0..MR-1; B packed; only the first n columns of C are written.
    static void MicroKernelDirect(Tile t, int kc, float* a, int lda, float* b, int bStride, float* c, int ldc, bool accumulate, int n)
    {
        if (!Wide)
        {
            if (n == 16) Kernel6x16Direct(kc, a, lda, b, bStride, c, ldc, accumulate);
            else
            {
                float* part = stackalloc float[6 * 16];
                Kernel6x16Direct(kc, a, lda, b, bStride, part, 16, false);
                AddTile(part, 16, 6, n, c, ldc, accumulate);
            }
        }
        else if (t.NR == 32)
        {
            if (n == 32) Kernel8x32Direct(kc, a, lda, b, bStride, c, ldc, accumulate);
            else
            {
                float* tile = stackalloc float[8 * 32];
                Kernel8x32Direct(kc, a, lda, b, bStride, tile, 32, false);
                AddTile(tile, 32, 8, n, c, ldc, accumulate);
            }
        }
        else
        {
            // Two 8 x 16 halves: sixteen row pointers would not fit the general registers.
            float* tile = stackalloc float[16 * 16];
            bool direct = n == 16;
            Kernel8x16Direct(kc, a, lda, b, bStride, direct ? c : tile, direct ? ldc : 16, direct && accumulate);
            Kernel8x16Direct(kc, a + 8L * lda, lda, b, bStride, direct ? c + 8L * ldc : tile + 8 * 16, direct ? ldc : 16, direct && accumulate);
            if (!direct) AddTile(tile, 16, 16, n, c, ldc, accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x32Direct(int kc, float* a, int lda, float* b, int bStride, float* c, int ldc, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default,
            c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        float* a0 = a, a1 = a + lda, a2 = a + 2L * lda, a3 = a + 3L * lda;
        float* a4 = a + 4L * lda, a5 = a + 5L * lda, a6 = a + 6L * lda, a7 = a + 7L * lda;
        for (int p = 0; p < kc; p++)
        {
            if ((p & 15) == 0) PrefetchNextRows(a + p, lda, 8);
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a0[p]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[p]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[p]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[p]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a4[p]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a5[p]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a6[p]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a7[p]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
            b += bStride;
        }
        Store512(c, c00, c01, accumulate); c += ldc;
        Store512(c, c10, c11, accumulate); c += ldc;
        Store512(c, c20, c21, accumulate); c += ldc;
        Store512(c, c30, c31, accumulate); c += ldc;
        Store512(c, c40, c41, accumulate); c += ldc;
        Store512(c, c50, c51, accumulate); c += ldc;
        Store512(c, c60, c61, accumulate); c += ldc;
        Store512(c, c70, c71, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x16Direct(int kc, float* a, int lda, float* b, int bStride, float* c, int ldc, bool accumulate)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        float* a0 = a, a1 = a + lda, a2 = a + 2L * lda, a3 = a + 3L * lda;
        float* a4 = a + 4L * lda, a5 = a + 5L * lda, a6 = a + 6L * lda, a7 = a + 7L * lda;
        for (int p = 0; p < kc; p++)
        {
            if ((p & 15) == 0) PrefetchNextRows(a + p, lda, 8);
            var b0 = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[p]), b0, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[p]), b0, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[p]), b0, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[p]), b0, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a4[p]), b0, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a5[p]), b0, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(a6[p]), b0, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(a7[p]), b0, c7);
            b += bStride;
        }
        Store1(c, c0, accumulate); c += ldc; Store1(c, c1, accumulate); c += ldc;
        Store1(c, c2, accumulate); c += ldc; Store1(c, c3, accumulate); c += ldc;
        Store1(c, c4, accumulate); c += ldc; Store1(c, c5, accumulate); c += ldc;
        Store1(c, c6, accumulate); c += ldc; Store1(c, c7, accumulate);
    }

    // 16 x 16 tile in 16 zmm accumulators, for narrow C (few filters): per step of p, one load of B and 16 broadcasts of A.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel16x16(int kc, float* a, int aStride, float* b, int bStride, float* c, int ldc, bool accumulate)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default,
            c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[0]), b0, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a[1]), b0, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a[2]), b0, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a[3]), b0, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a[4]), b0, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a[5]), b0, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(a[6]), b0, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(a[7]), b0, c7);
            c8 = Vector512.FusedMultiplyAdd(Vector512.Create(a[8]), b0, c8);
            c9 = Vector512.FusedMultiplyAdd(Vector512.Create(a[9]), b0, c9);
            c10 = Vector512.FusedMultiplyAdd(Vector512.Create(a[10]), b0, c10);
            c11 = Vector512.FusedMultiplyAdd(Vector512.Create(a[11]), b0, c11);
            c12 = Vector512.FusedMultiplyAdd(Vector512.Create(a[12]), b0, c12);
            c13 = Vector512.FusedMultiplyAdd(Vector512.Create(a[13]), b0, c13);
            c14 = Vector512.FusedMultiplyAdd(Vector512.Create(a[14]), b0, c14);
            c15 = Vector512.FusedMultiplyAdd(Vector512.Create(a[15]), b0, c15);
            a += aStride;
            b += bStride;
        }
        Store1(c, c0, accumulate); c += ldc; Store1(c, c1, accumulate); c += ldc;
        Store1(c, c2, accumulate); c += ldc; Store1(c, c3, accumulate); c += ldc;
        Store1(c, c4, accumulate); c += ldc; Store1(c, c5, accumulate); c += ldc;
        Store1(c, c6, accumulate); c += ldc; Store1(c, c7, accumulate); c += ldc;
        Store1(c, c8, accumulate); c += ldc; Store1(c, c9, accumulate); c += ldc;
        Store1(c, c10, accumulate); c += ldc; Store1(c, c11, accumulate); c += ldc;
        Store1(c, c12, accumulate); c += ldc; Store1(c, c13, accumulate); c += ldc;
        Store1(c, c14, accumulate); c += ldc; Store1(c, c15, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store1(float* c, Vector512<float> v, bool accumulate)
    {
        if (accumulate) v += Vector512.Load(c);
        v.Store(c);
    }

    // 8 x 32 tile in 16 zmm accumulators: per step of p, two loads of B, eight broadcasts of A, 16 FMAs.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x32(int kc, float* a, int aStride, float* b, int bStride, float* c, int ldc, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default,
            c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
            a += aStride;
            b += bStride;
        }
        Store512(c, c00, c01, accumulate); c += ldc;
        Store512(c, c10, c11, accumulate); c += ldc;
        Store512(c, c20, c21, accumulate); c += ldc;
        Store512(c, c30, c31, accumulate); c += ldc;
        Store512(c, c40, c41, accumulate); c += ldc;
        Store512(c, c50, c51, accumulate); c += ldc;
        Store512(c, c60, c61, accumulate); c += ldc;
        Store512(c, c70, c71, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store512(float* c, Vector512<float> v0, Vector512<float> v1, bool accumulate)
    {
        if (accumulate)
        {
            v0 += Vector512.Load(c);
            v1 += Vector512.Load(c + 16);
        }
        v0.Store(c);
        v1.Store(c + 16);
    }

    // 6 x 16 tile in 12 ymm accumulators, for CPUs without AVX-512 (software-emulated where AVX is absent): per step of p,
    // two loads of B, six broadcasts of A, 12 FMAs; unrolled by two, so the loop's own instructions do not crowd
    // the FMAs out of the front end (Zen 3 dispatches 6 a cycle; 12 FMAs take 6 cycles on its two pipes).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6x16(int kc, float* a, int aStride, float* b, int bStride, float* c, int ldc, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        long aStep = aStride, bStep = bStride;
        int p = 0;
        for (; p + 1 < kc; p += 2)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            float* a1 = a + aStep, b1p = b + bStep;
            b0 = Vector256.Load(b1p);
            b1 = Vector256.Load(b1p + 8);
            x = Vector256.Create(a1[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a1[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a1[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a1[4]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a1[5]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            a = a1 + aStep;
            b = b1p + bStep;
        }
        if (p < kc)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
        }
        Store256(c, c00, c01, accumulate); c += ldc;
        Store256(c, c10, c11, accumulate); c += ldc;
        Store256(c, c20, c21, accumulate); c += ldc;
        Store256(c, c30, c31, accumulate); c += ldc;
        Store256(c, c40, c41, accumulate); c += ldc;
        Store256(c, c50, c51, accumulate);
    }

    // Kernel6x16 with A read in place: row i of the tile at a + i * lda, one broadcast from each row per step of p.
    // ImplicitConvolution.Kernel6x16 over offsets 0, 1, 2, ... computes the same, but its offset load per step, bias
    // start and masked stores made the Winograd forward products 5-8% slower (naani-128's conv2 and conv3, Zen 3).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6x16Direct(int kc, float* a, int lda, float* b, int bStride, float* c, int ldc, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* a0 = a, a1 = a + lda, a2 = a + 2L * lda, a3 = a + 3L * lda, a4 = a + 4L * lda, a5 = a + 5L * lda;
        for (int p = 0; p < kc; p++)
        {
            if ((p & 15) == 0) PrefetchNextRows(a + p, lda, 6);
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a0[p]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[p]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[p]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[p]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[p]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[p]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            b += bStride;
        }
        Store256(c, c00, c01, accumulate); c += ldc;
        Store256(c, c10, c11, accumulate); c += ldc;
        Store256(c, c20, c21, accumulate); c += ldc;
        Store256(c, c30, c31, accumulate); c += ldc;
        Store256(c, c40, c41, accumulate); c += ldc;
        Store256(c, c50, c51, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store256(float* c, Vector256<float> v0, Vector256<float> v1, bool accumulate)
    {
        if (accumulate)
        {
            v0 += Vector256.Load(c);
            v1 += Vector256.Load(c + 8);
        }
        v0.Store(c);
        v1.Store(c + 8);
    }
}
