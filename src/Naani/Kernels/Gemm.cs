using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Naani.Kernels;

// C[m,n] (+)= sum_p op(A)[m,p] * op(B)[p,n]   (row-major; op(X) = X or X^T, read through packing)
//
// Goto/BLIS structure: B is packed into kc x NR column panels, A into MR x kc row panels, and a
// register-blocked micro-kernel computes one MR x NR tile of C from one panel of each. Transposed
// operands cost nothing extra: packing reads them in whichever order they are stored.
// Most of the running time of training is spent in the micro-kernels at the bottom of this file.
public static unsafe class Gemm
{
    const int KC = 256;   // depth of a packed block: one A panel (MR x KC) + one B panel (KC x NR) stay in L1
    const int MC = 120;   // rows of A packed at once (multiple of both MRs): the A block stays in L2
    const int NC = 2048;  // columns of B packed at once

    static readonly bool Wide = Vector512.IsHardwareAccelerated;
    static int MR => Wide ? 8 : 6;
    static int NR => Wide ? 32 : 16;

    [ThreadStatic] static float[]? packA;
    [ThreadStatic] static float[]? packB;

    /// C = op(A) * op(B), or C += op(A) * op(B) when accumulate. A is m x k (k x m when transA),
    /// B is k x n (n x k when transB); lda/ldb/ldc are row strides. Splits the work across
    /// Threading.MaxThreads threads unless parallel is false.
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

    /// Pointer form for kernels that already hold pinned buffers.
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, bool parallel)
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate)
                for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
            return;
        }
        int threads = parallel ? Threading.MaxThreads : 1;
        long work = (long)m * n * k;
        if (threads == 1 || work < 64 * 64 * 64)
        {
            Serial(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }
        // Split the larger side of C into NR- or MR-aligned slices, one per thread.
        var job = parallelJob ??= new ParallelJob();
        job.Set(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, splitColumns: n >= m);
        Threading.For(job.Units, job.Body);
    }

    [ThreadStatic] static ParallelJob? parallelJob;

    // The arguments of one parallel GEMM, held in fields so dispatching to threads allocates nothing.
    sealed class ParallelJob
    {
        bool transA, transB, accumulate, splitColumns;
        int m, n, k, lda, ldb, ldc;
        nint a, b, c;
        public int Units;
        public readonly Action<int, int, int> Body;

        public ParallelJob() => Body = Run;

        public void Set(bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, bool splitColumns)
        {
            (this.transA, this.transB, this.m, this.n, this.k, this.lda, this.ldb, this.ldc, this.accumulate, this.splitColumns) =
                (transA, transB, m, n, k, lda, ldb, ldc, accumulate, splitColumns);
            (this.a, this.b, this.c) = ((nint)a, (nint)b, (nint)c);
            Units = splitColumns ? (n + NR - 1) / NR : (m + MR - 1) / MR;
        }

        void Run(int part, int u0, int u1)
        {
            float* pa = (float*)a, pb = (float*)b, pc = (float*)c;
            if (splitColumns)
            {
                int j0 = u0 * NR, j1 = Math.Min(n, u1 * NR);
                float* bj = transB ? pb + (long)j0 * ldb : pb + j0;
                Serial(transA, transB, m, j1 - j0, k, pa, lda, bj, ldb, pc + j0, ldc, accumulate);
            }
            else
            {
                int i0 = u0 * MR, i1 = Math.Min(m, u1 * MR);
                float* ai = transA ? pa + i0 : pa + (long)i0 * lda;
                Serial(transA, transB, i1 - i0, n, k, ai, lda, pb, ldb, pc + (long)i0 * ldc, ldc, accumulate);
            }
        }
    }

    /// One thread's share: the Goto loop nest over blocks of N, K and M.
    static void Serial(bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        int mr = MR, nr = NR;
        int ncMax = Math.Min(NC, RoundUp(n, nr));
        int kcMax = Math.Min(KC, k);
        var bufB = packB;
        if (bufB is null || bufB.Length < kcMax * ncMax) packB = bufB = new float[Math.Max(kcMax * ncMax, KC * nr)];
        var bufA = packA;
        if (bufA is null || bufA.Length < MC * KC) packA = bufA = new float[MC * KC];

        float* tile = stackalloc float[8 * 32];
        fixed (float* pA = bufA) fixed (float* pB = bufB)
        {
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    bool acc = accumulate || pc > 0;
                    PackB(transB, b, ldb, pc, jc, kc, nc, nr, pB);
                    for (int ic = 0; ic < m; ic += MC)
                    {
                        int mcur = Math.Min(MC, m - ic);
                        PackA(transA, a, lda, ic, pc, mcur, kc, mr, pA);
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int ncur = Math.Min(nr, nc - jr);
                            float* bp = pB + (long)jr * kc;
                            for (int ir = 0; ir < mcur; ir += mr)
                            {
                                int mcurr = Math.Min(mr, mcur - ir);
                                float* ap = pA + (long)ir * kc;
                                float* cp = c + (long)(ic + ir) * ldc + jc + jr;
                                if (mcurr == mr && ncur == nr)
                                    MicroKernel(kc, ap, bp, cp, ldc, acc);
                                else
                                {
                                    MicroKernel(kc, ap, bp, tile, nr, false);
                                    for (int i = 0; i < mcurr; i++)
                                        for (int j = 0; j < ncur; j++)
                                            cp[(long)i * ldc + j] = acc ? cp[(long)i * ldc + j] + tile[i * nr + j] : tile[i * nr + j];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    static int RoundUp(int x, int to) => (x + to - 1) / to * to;

    // Packed B: for each NR-wide column panel, kc rows of NR values (zero beyond column n).
    static void PackB(bool transB, float* b, int ldb, int p0, int j0, int kc, int nc, int nr, float* dst)
    {
        for (int jr = 0; jr < nc; jr += nr)
        {
            int w = Math.Min(nr, nc - jr);
            float* panel = dst + (long)jr * kc;
            if (!transB)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(p0 + p) * ldb + j0 + jr;
                    float* d = panel + p * nr;
                    if (w == nr) new ReadOnlySpan<float>(src, nr).CopyTo(new Span<float>(d, nr));
                    else
                    {
                        for (int j = 0; j < w; j++) d[j] = src[j];
                        for (int j = w; j < nr; j++) d[j] = 0;
                    }
                }
            }
            else
            {
                // B stored n x k: element (p, j) is b[j * ldb + p].
                for (int j = 0; j < nr; j++)
                {
                    if (j < w)
                    {
                        float* src = b + (long)(j0 + jr + j) * ldb + p0;
                        for (int p = 0; p < kc; p++) panel[p * nr + j] = src[p];
                    }
                    else
                        for (int p = 0; p < kc; p++) panel[p * nr + j] = 0;
                }
            }
        }
    }

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
                for (int i = 0; i < mr; i++)
                {
                    if (i < h)
                    {
                        float* src = a + (long)(i0 + ir + i) * lda + p0;
                        for (int p = 0; p < kc; p++) panel[p * mr + i] = src[p];
                    }
                    else
                        for (int p = 0; p < kc; p++) panel[p * mr + i] = 0;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void MicroKernel(int kc, float* a, float* b, float* c, int ldc, bool accumulate)
    {
        if (Wide) Kernel8x32(kc, a, b, c, ldc, accumulate);
        else Kernel6x16(kc, a, b, c, ldc, accumulate);
    }

    // 8 x 32 tile in 16 zmm accumulators: per step of p, two loads of B, eight broadcasts of A, 16 FMAs.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x32(int kc, float* a, float* b, float* c, int ldc, bool accumulate)
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
            a += 8;
            b += 32;
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

    // 6 x 16 tile in 12 ymm accumulators, for CPUs without AVX-512 (software-emulated where AVX is absent).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6x16(int kc, float* a, float* b, float* c, int ldc, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            a += 6;
            b += 16;
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
