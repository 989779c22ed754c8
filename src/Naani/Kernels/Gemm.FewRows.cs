using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Naani.Kernels;

// C (+)= A B for A with only a few rows (a dense layer at batch 1 to 32; VGG16's fc6 at batch 1 is
// 1 x 25088 times 25088 x 4096): bound by reading B once from memory, 411 MB for fc6.
//
// The Goto path would walk B in KC x NR panels, one 128-byte piece of each of 256 rows 16 KB apart,
// which costs a TLB miss per row and defeats the prefetcher. Here each thread owns a slice of C's
// columns (or of B's rows, see FewRowsProduct) and streams B's rows through C, kept in L1, four at a
// time, front to back: C[r, j] += A[r, p] B[p, j] + A[r, p+1] B[p+1, j] + A[r, p+2] B[p+2, j] + A[r, p+3] B[p+3, j].
public static unsafe partial class Gemm
{
    /// A with at most this many rows (and B not transposed) goes through the streaming path.
    const int FewRowsMax = 32;

    /// Whether C = A B goes through the few-rows path: B is read once, front to back, so it pays when B
    /// is large (leaves the caches: a dense layer's weights) or A has one to four rows (the packed path
    /// would waste most of its tile). From 9 to 16 rows only for wide B (n >= 256). From 17 rows the packed
    /// path is faster since it packs B row by row, each block once for all threads: cats-dogs-150's 36992 x 512
    /// dense layer at batch 32 went from 26-29 ms here to 18-22 ms there (Zen 3, 2 threads), 24 rows from 20-22
    /// to 14-17 ms.
    static bool FewRows(bool transA, bool transB, int m, int n, int k) =>
        Vector256.IsHardwareAccelerated && !transA && !transB && m <= FewRowsMax && n >= 16
        && (m <= 4 || ((long)n * k >= 1 << 20 && (m <= 8 || (m <= 16 && n >= 256))));

    [ThreadStatic] static FewRowsJob? fewRowsJob;

    static void FewRowsProduct(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, int threads)
    {
        if (threads == 1 || (long)m * n * k < 1 << 18)
        {
            FewRowsSlice(m, 0, n, 0, k, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }
        var job = fewRowsJob ??= new FewRowsJob();
        // Each thread takes a slice of C's columns, or, when a thread's slice of each row of B would be
        // short (under 4 KB), a slice of B's rows: each thread then reads whole rows, one contiguous
        // stretch of memory, into a partial C of its own, and the partials are added in a fixed order.
        bool splitRows = (long)n * 4 / threads < 4096 && k >= 64 * threads;
        job.Set(m, n, k, a, lda, b, ldb, c, ldc, accumulate, splitRows, threads);
        Threading.For(splitRows ? threads : (n + 15) / 16, job.Body);
        if (splitRows) job.AddPartials();
    }

    // The arguments of one parallel few-rows product, held in fields so dispatching allocates nothing.
    sealed class FewRowsJob
    {
        int m, n, k, lda, ldb, ldc;
        bool accumulate, splitRows;
        nint a, b, c;
        readonly DepthPartials depth = new();
        public readonly Action<int, int, int> Body;

        public FewRowsJob() => Body = Run;

        public void Set(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, bool splitRows, int threads)
        {
            (this.m, this.n, this.k, this.lda, this.ldb, this.ldc, this.accumulate, this.splitRows) = (m, n, k, lda, ldb, ldc, accumulate, splitRows);
            (this.a, this.b, this.c) = ((nint)a, (nint)b, (nint)c);
            if (splitRows) depth.Prepare(threads, m, n, k, 4);
        }

        void Run(int part, int u0, int u1)
        {
            if (!splitRows)
            {
                FewRowsSlice(m, u0 * 16, Math.Min(n, u1 * 16), 0, k, (float*)a, lda, (float*)b, ldb, (float*)c, ldc, accumulate);
                return;
            }
            // Rows [k0, k1) of B (a multiple of 4 long, but the last).
            var (k0, k1) = depth.Share(u0, u1);
            float* target = depth.Target(u0, (float*)c, ldc, out int ldt);
            FewRowsSlice(m, 0, n, k0, k1, (float*)a, lda, (float*)b, ldb, target, ldt, u0 == 0 && accumulate);
        }

        public void AddPartials() => depth.AddTo((float*)c, ldc);
    }

    /// A product whose depth the threads share (the few-rows path's split of B's rows, and Split.Depth): part 0 multiplies
    /// its share into C itself, every other part into a partial C of its own (m x n, row stride n), and the partials are
    /// then added to C in order, so that runs are reproducible.
    sealed class DepthPartials
    {
        float[][] partials = [];
        int parts, m, n, k, step;

        /// For `parts` parts of an m x n C over a depth of k, shared in whole multiples of `step`.
        public void Prepare(int parts, int m, int n, int k, int step)
        {
            (this.parts, this.m, this.n, this.k, this.step) = (parts, m, n, k, step);
            if (partials.Length < parts || partials[0].Length < m * n) Allocate(parts, m * n);
        }

        // Apart from Prepare, whose parameters its lambda would otherwise capture: a closure allocated on every call.
        // Pinned, so that Target can hand out their addresses.
        void Allocate(int count, int size) => partials = [.. Enumerable.Range(0, count).Select(_ => GC.AllocateUninitializedArray<float>(size, pinned: true))];

        /// The depth [From, To) of parts [u0, u1): whole multiples of step (the last part takes the rest).
        public (int From, int To) Share(int u0, int u1)
        {
            int per = (k / parts + step - 1) / step * step;
            return (Math.Min(k, u0 * per), u1 == parts ? k : Math.Min(k, u1 * per));
        }

        /// Where part `part` writes its product, and that place's row stride: C itself for part 0, else its partial (which
        /// it must not accumulate into).
        public float* Target(int part, float* c, int ldc, out int ld)
        {
            if (part == 0)
            {
                ld = ldc;
                return c;
            }
            ld = n;
            return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(partials[part]));
        }

        /// C (row stride ldc) += the partials of parts 1.., in order.
        public void AddTo(float* c, int ldc)
        {
            for (int t = 1; t < parts; t++)
                for (int r = 0; r < m; r++)
                    Activations.AddInPlace(new Span<float>(c + (long)r * ldc, n), partials[t].AsSpan(r * n, n));
        }
    }

    // C[:, j0..j1) (+)= A[:, k0..k1) B[k0..k1, j0..j1). B goes in chunks of rows that fit in L2 (each read
    // from memory once, front to back); per chunk, C in blocks of up to 4 rows x 16 KB that stay in L1.
    static void FewRowsSlice(int m, int j0, int j1, int k0, int k1, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        int columns = j1 - j0;
        if (!accumulate)
            for (int r = 0; r < m; r++) new Span<float>(c + (long)r * ldc + j0, columns).Clear();
        int block = Math.Max(16, 4096 / Math.Min(m, 4) / 16 * 16);
        int chunk = Math.Clamp(65536 / Math.Max(1, columns) / 4 * 4, 4, 256);
        for (int pc = k0; pc < k1; pc += chunk)
        {
            int kc = Math.Min(chunk, k1 - pc);
            for (int jb = j0; jb < j1; jb += block)
            {
                int width = Math.Min(block, j1 - jb);
                for (int r0 = 0; r0 < m; r0 += 4)
                    if (Wide) Block<Vector512<float>, Lanes512>(Math.Min(4, m - r0), width, kc, a + (long)r0 * lda + pc, lda, b + (long)pc * ldb + jb, ldb, c + (long)r0 * ldc + jb, ldc);
                    else Block<Vector256<float>, Lanes256>(Math.Min(4, m - r0), width, kc, a + (long)r0 * lda + pc, lda, b + (long)pc * ldb + jb, ldb, c + (long)r0 * ldc + jb, ldc);
            }
        }
    }

    // c[r, 0..width) += sum_p a[r, p] b[p, 0..width) for r < rows (1 to 4); TV is Vector512 or Vector256 (TL its lanes).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Block<TV, TL>(int rows, int width, int k, float* a, int lda, float* b, int ldb, float* c, int ldc)
        where TV : unmanaged where TL : ILanes<TV>
    {
        int lanes = TL.Count, vectors = width / lanes * lanes;
        float* c1 = c + ldc, c2 = c + 2L * ldc, c3 = c + 3L * ldc;
        float* a1 = a + lda, a2 = a + 2L * lda, a3 = a + 3L * lda;
        int p = 0;
        for (; p + 4 <= k; p += 4)
        {
            float* b0 = b + (long)p * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
            var x00 = TL.Broadcast(a[p]); var x01 = TL.Broadcast(a[p + 1]);
            var x02 = TL.Broadcast(a[p + 2]); var x03 = TL.Broadcast(a[p + 3]);
            if (rows == 1)
            {
                for (int j = 0; j < vectors; j += lanes)
                {
                    var s = TL.Fma(x00, TL.Load(b0 + j), TL.Load(c + j));
                    s = TL.Fma(x01, TL.Load(b1 + j), s);
                    s = TL.Fma(x02, TL.Load(b2 + j), s);
                    TL.Store(TL.Fma(x03, TL.Load(b3 + j), s), c + j);
                }
            }
            else if (rows == 2)
            {
                var x10 = TL.Broadcast(a1[p]); var x11 = TL.Broadcast(a1[p + 1]);
                var x12 = TL.Broadcast(a1[p + 2]); var x13 = TL.Broadcast(a1[p + 3]);
                for (int j = 0; j < vectors; j += lanes)
                {
                    var w0 = TL.Load(b0 + j); var w1 = TL.Load(b1 + j);
                    var w2 = TL.Load(b2 + j); var w3 = TL.Load(b3 + j);
                    Dot4<TV, TL>(x00, x01, x02, x03, w0, w1, w2, w3, c + j);
                    Dot4<TV, TL>(x10, x11, x12, x13, w0, w1, w2, w3, c1 + j);
                }
            }
            else
            {
                var x10 = TL.Broadcast(a1[p]); var x11 = TL.Broadcast(a1[p + 1]);
                var x12 = TL.Broadcast(a1[p + 2]); var x13 = TL.Broadcast(a1[p + 3]);
                var x20 = TL.Broadcast(a2[p]); var x21 = TL.Broadcast(a2[p + 1]);
                var x22 = TL.Broadcast(a2[p + 2]); var x23 = TL.Broadcast(a2[p + 3]);
                if (rows == 3)
                    for (int j = 0; j < vectors; j += lanes)
                    {
                        var w0 = TL.Load(b0 + j); var w1 = TL.Load(b1 + j);
                        var w2 = TL.Load(b2 + j); var w3 = TL.Load(b3 + j);
                        Dot4<TV, TL>(x00, x01, x02, x03, w0, w1, w2, w3, c + j);
                        Dot4<TV, TL>(x10, x11, x12, x13, w0, w1, w2, w3, c1 + j);
                        Dot4<TV, TL>(x20, x21, x22, x23, w0, w1, w2, w3, c2 + j);
                    }
                else
                {
                    var x30 = TL.Broadcast(a3[p]); var x31 = TL.Broadcast(a3[p + 1]);
                    var x32 = TL.Broadcast(a3[p + 2]); var x33 = TL.Broadcast(a3[p + 3]);
                    for (int j = 0; j < vectors; j += lanes)
                    {
                        var w0 = TL.Load(b0 + j); var w1 = TL.Load(b1 + j);
                        var w2 = TL.Load(b2 + j); var w3 = TL.Load(b3 + j);
                        Dot4<TV, TL>(x00, x01, x02, x03, w0, w1, w2, w3, c + j);
                        Dot4<TV, TL>(x10, x11, x12, x13, w0, w1, w2, w3, c1 + j);
                        Dot4<TV, TL>(x20, x21, x22, x23, w0, w1, w2, w3, c2 + j);
                        Dot4<TV, TL>(x30, x31, x32, x33, w0, w1, w2, w3, c3 + j);
                    }
                }
            }
            for (int j = vectors; j < width; j++)   // columns past the last whole vector
                for (int r = 0; r < rows; r++)
                {
                    float* ar = a + (long)r * lda;
                    c[(long)r * ldc + j] += ar[p] * b0[j] + ar[p + 1] * b1[j] + ar[p + 2] * b2[j] + ar[p + 3] * b3[j];
                }
        }
        for (; p < k; p++)   // the last one to three rows of B
        {
            float* bp = b + (long)p * ldb;
            for (int r = 0; r < rows; r++)
            {
                float* cr = c + (long)r * ldc;
                var x = TL.Broadcast(a[(long)r * lda + p]);
                int j = 0;
                for (; j < vectors; j += lanes) TL.Store(TL.Fma(x, TL.Load(bp + j), TL.Load(cr + j)), cr + j);
                for (; j < width; j++) cr[j] += a[(long)r * lda + p] * bp[j];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Dot4<TV, TL>(TV x0, TV x1, TV x2, TV x3,
        TV w0, TV w1, TV w2, TV w3, float* c)
        where TV : unmanaged where TL : ILanes<TV>
    {
        var s = TL.Fma(x0, w0, TL.Load(c));
        s = TL.Fma(x1, w1, s);
        s = TL.Fma(x2, w2, s);
        TL.Store(TL.Fma(x3, w3, s), c);
    }
}
