using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Naani.Kernels;

// C (+)= A B^T for A with few rows and B stored n x k (a dense layer's input gradient dx = dy W^T at
// small batches: W is inputs x units, so each of C's columns is a dot product with one row of W).
//
// The packed path would transpose B into panels, reading and writing the whole weight matrix (75 MB
// for cats-dogs-150's 36992 x 512 layer) on every backward pass. Here each thread takes a slice of
// B's rows and streams them once, front to back: four rows of B at a time stay in L1 while they meet
// every row of A (in L2) in a 4 x 4 block of dot products, reduced to 16 values of C at the end.
public static unsafe partial class Gemm
{
    /// Whether C = A B^T goes through the streaming path: A with at most 32 rows and B large, with rows long
    /// enough (k >= 256) that the 16 reductions at the end of each block of dot products do not dominate.
    static bool FewRowsTransposed(bool transA, bool transB, int m, int n, int k) =>
        Vector256.IsHardwareAccelerated && Avx.IsSupported && !transA && transB && m <= FewRowsMax && k >= 256 && (long)n * k >= 1 << 20;

    [ThreadStatic] static FewRowsTransposedJob? fewRowsTransposedJob;

    static void FewRowsTransposedProduct(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, int threads)
    {
        if (threads == 1)
        {
            TransposedSlice(m, 0, n, k, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }
        var job = fewRowsTransposedJob ??= new FewRowsTransposedJob();
        job.Set(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
        Threading.For((n + 3) / 4, job.Body);
    }

    // The arguments of one parallel product, held in fields so dispatching allocates nothing.
    sealed class FewRowsTransposedJob
    {
        int m, n, k, lda, ldb, ldc;
        bool accumulate;
        nint a, b, c;
        public readonly Action<int, int, int> Body;

        public FewRowsTransposedJob() => Body = Run;

        public void Set(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
        {
            (this.m, this.n, this.k, this.lda, this.ldb, this.ldc, this.accumulate) = (m, n, k, lda, ldb, ldc, accumulate);
            (this.a, this.b, this.c) = ((nint)a, (nint)b, (nint)c);
        }

        void Run(int part, int u0, int u1) =>
            TransposedSlice(m, u0 * 4, Math.Min(n, u1 * 4), k, (float*)a, lda, (float*)b, ldb, (float*)c, ldc, accumulate);
    }

    // Columns [j0, j1) of C: rows [j0, j1) of B, four at a time, against every row of A, four at a time.
    static void TransposedSlice(int m, int j0, int j1, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        float* sums = stackalloc float[16];
        for (int j = j0; j < j1; j += 4)
        {
            int cols = Math.Min(4, j1 - j);
            for (int r = 0; r < m; r += 4)
            {
                int rows = Math.Min(4, m - r);
                if (Wide) Dots4x4(k, a + (long)r * lda, lda, rows, b + (long)j * ldb, ldb, cols, sums);
                else
                {
                    // Without AVX-512 (16 ymm registers): two 2 x 4 blocks, rows of B read twice from L1.
                    Dots2x4(k, a + (long)r * lda, lda, rows, b + (long)j * ldb, ldb, cols, sums);
                    if (rows > 2) Dots2x4(k, a + (long)(r + 2) * lda, lda, rows - 2, b + (long)j * ldb, ldb, cols, sums + 8);
                }
                for (int i = 0; i < rows; i++)
                    for (int q = 0; q < cols; q++)
                    {
                        float* cp = c + (long)(r + i) * ldc + j + q;
                        *cp = accumulate ? *cp + sums[i * 4 + q] : sums[i * 4 + q];
                    }
            }
        }
    }

    // sums[i * 4 + q] = dot(a row i, b row q) over k values, for i < rows and q < cols (missing rows of
    // A or B repeat the last one: computed, not used).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Dots4x4(int k, float* a, int lda, int rows, float* b, int ldb, int cols, float* sums)
    {
        float* a0 = a, a1 = a + (rows > 1 ? lda : 0), a2 = a + (rows > 2 ? 2L * lda : 0), a3 = a + (rows > 3 ? 3L * lda : 0);
        float* b0 = b, b1 = b + (cols > 1 ? ldb : 0), b2 = b + (cols > 2 ? 2L * ldb : 0), b3 = b + (cols > 3 ? 3L * ldb : 0);
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default,
            s20 = default, s21 = default, s22 = default, s23 = default, s30 = default, s31 = default, s32 = default, s33 = default;
        int p = 0;
        for (; p + 16 <= k; p += 16)
        {
            var w0 = Vector512.Load(b0 + p); var w1 = Vector512.Load(b1 + p);
            var w2 = Vector512.Load(b2 + p); var w3 = Vector512.Load(b3 + p);
            var x = Vector512.Load(a0 + p);
            s00 = Vector512.FusedMultiplyAdd(x, w0, s00); s01 = Vector512.FusedMultiplyAdd(x, w1, s01);
            s02 = Vector512.FusedMultiplyAdd(x, w2, s02); s03 = Vector512.FusedMultiplyAdd(x, w3, s03);
            x = Vector512.Load(a1 + p);
            s10 = Vector512.FusedMultiplyAdd(x, w0, s10); s11 = Vector512.FusedMultiplyAdd(x, w1, s11);
            s12 = Vector512.FusedMultiplyAdd(x, w2, s12); s13 = Vector512.FusedMultiplyAdd(x, w3, s13);
            x = Vector512.Load(a2 + p);
            s20 = Vector512.FusedMultiplyAdd(x, w0, s20); s21 = Vector512.FusedMultiplyAdd(x, w1, s21);
            s22 = Vector512.FusedMultiplyAdd(x, w2, s22); s23 = Vector512.FusedMultiplyAdd(x, w3, s23);
            x = Vector512.Load(a3 + p);
            s30 = Vector512.FusedMultiplyAdd(x, w0, s30); s31 = Vector512.FusedMultiplyAdd(x, w1, s31);
            s32 = Vector512.FusedMultiplyAdd(x, w2, s32); s33 = Vector512.FusedMultiplyAdd(x, w3, s33);
        }
        if (p < k)
        {
            // The last k % 16 values, loaded masked (the lanes past k read as 0).
            var m = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(k - p)).AsSingle();
            var w0 = Avx512F.MaskLoad(b0 + p, m, Vector512<float>.Zero); var w1 = Avx512F.MaskLoad(b1 + p, m, Vector512<float>.Zero);
            var w2 = Avx512F.MaskLoad(b2 + p, m, Vector512<float>.Zero); var w3 = Avx512F.MaskLoad(b3 + p, m, Vector512<float>.Zero);
            var x = Avx512F.MaskLoad(a0 + p, m, Vector512<float>.Zero);
            s00 = Vector512.FusedMultiplyAdd(x, w0, s00); s01 = Vector512.FusedMultiplyAdd(x, w1, s01);
            s02 = Vector512.FusedMultiplyAdd(x, w2, s02); s03 = Vector512.FusedMultiplyAdd(x, w3, s03);
            x = Avx512F.MaskLoad(a1 + p, m, Vector512<float>.Zero);
            s10 = Vector512.FusedMultiplyAdd(x, w0, s10); s11 = Vector512.FusedMultiplyAdd(x, w1, s11);
            s12 = Vector512.FusedMultiplyAdd(x, w2, s12); s13 = Vector512.FusedMultiplyAdd(x, w3, s13);
            x = Avx512F.MaskLoad(a2 + p, m, Vector512<float>.Zero);
            s20 = Vector512.FusedMultiplyAdd(x, w0, s20); s21 = Vector512.FusedMultiplyAdd(x, w1, s21);
            s22 = Vector512.FusedMultiplyAdd(x, w2, s22); s23 = Vector512.FusedMultiplyAdd(x, w3, s23);
            x = Avx512F.MaskLoad(a3 + p, m, Vector512<float>.Zero);
            s30 = Vector512.FusedMultiplyAdd(x, w0, s30); s31 = Vector512.FusedMultiplyAdd(x, w1, s31);
            s32 = Vector512.FusedMultiplyAdd(x, w2, s32); s33 = Vector512.FusedMultiplyAdd(x, w3, s33);
        }
        sums[0] = Vector512.Sum(s00); sums[1] = Vector512.Sum(s01); sums[2] = Vector512.Sum(s02); sums[3] = Vector512.Sum(s03);
        sums[4] = Vector512.Sum(s10); sums[5] = Vector512.Sum(s11); sums[6] = Vector512.Sum(s12); sums[7] = Vector512.Sum(s13);
        sums[8] = Vector512.Sum(s20); sums[9] = Vector512.Sum(s21); sums[10] = Vector512.Sum(s22); sums[11] = Vector512.Sum(s23);
        sums[12] = Vector512.Sum(s30); sums[13] = Vector512.Sum(s31); sums[14] = Vector512.Sum(s32); sums[15] = Vector512.Sum(s33);
    }

    // sums[i * 4 + q] = dot(a row i, b row q) for i < 2 (rows of A: 1 or more, a missing second repeats the first)
    // and q < 4, eight floats at a time: 8 ymm accumulators.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Dots2x4(int k, float* a, int lda, int rows, float* b, int ldb, int cols, float* sums)
    {
        float* a0 = a, a1 = a + (rows > 1 ? lda : 0);
        float* b0 = b, b1 = b + (cols > 1 ? ldb : 0), b2 = b + (cols > 2 ? 2L * ldb : 0), b3 = b + (cols > 3 ? 3L * ldb : 0);
        Vector256<float> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
        int p = 0;
        for (; p + 8 <= k; p += 8)
        {
            var w0 = Vector256.Load(b0 + p); var w1 = Vector256.Load(b1 + p);
            var w2 = Vector256.Load(b2 + p); var w3 = Vector256.Load(b3 + p);
            var x = Vector256.Load(a0 + p);
            s00 = Vector256.FusedMultiplyAdd(x, w0, s00); s01 = Vector256.FusedMultiplyAdd(x, w1, s01);
            s02 = Vector256.FusedMultiplyAdd(x, w2, s02); s03 = Vector256.FusedMultiplyAdd(x, w3, s03);
            x = Vector256.Load(a1 + p);
            s10 = Vector256.FusedMultiplyAdd(x, w0, s10); s11 = Vector256.FusedMultiplyAdd(x, w1, s11);
            s12 = Vector256.FusedMultiplyAdd(x, w2, s12); s13 = Vector256.FusedMultiplyAdd(x, w3, s13);
        }
        if (p < k)
        {
            // The last k % 8 values, loaded masked (the lanes past k read as 0).
            var m = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(k - p)).AsSingle();
            var w0 = Avx.MaskLoad(b0 + p, m); var w1 = Avx.MaskLoad(b1 + p, m);
            var w2 = Avx.MaskLoad(b2 + p, m); var w3 = Avx.MaskLoad(b3 + p, m);
            var x = Avx.MaskLoad(a0 + p, m);
            s00 = Vector256.FusedMultiplyAdd(x, w0, s00); s01 = Vector256.FusedMultiplyAdd(x, w1, s01);
            s02 = Vector256.FusedMultiplyAdd(x, w2, s02); s03 = Vector256.FusedMultiplyAdd(x, w3, s03);
            x = Avx.MaskLoad(a1 + p, m);
            s10 = Vector256.FusedMultiplyAdd(x, w0, s10); s11 = Vector256.FusedMultiplyAdd(x, w1, s11);
            s12 = Vector256.FusedMultiplyAdd(x, w2, s12); s13 = Vector256.FusedMultiplyAdd(x, w3, s13);
        }
        sums[0] = Vector256.Sum(s00); sums[1] = Vector256.Sum(s01); sums[2] = Vector256.Sum(s02); sums[3] = Vector256.Sum(s03);
        sums[4] = Vector256.Sum(s10); sums[5] = Vector256.Sum(s11); sums[6] = Vector256.Sum(s12); sums[7] = Vector256.Sum(s13);
    }
}
