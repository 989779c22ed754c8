using Naani.Kernels;
using Xunit;

namespace Naani.Tests.Kernels;

[Collection(ThreadingCollection.Name)]
public sealed class GemmTests
{
    /// A rows x cols matrix stored with row stride ld >= cols; the gap after each row is NaN, so a
    /// kernel that reads past a row's width poisons its result.
    sealed class Strided
    {
        public readonly int Rows, Cols, Ld;
        public readonly float[] Data;

        public Strided(Rng rng, int rows, int cols, int extra, float gap = float.NaN)
        {
            Rows = rows; Cols = cols; Ld = cols + extra;
            Data = new float[(rows - 1) * Ld + cols];
            Array.Fill(Data, gap);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) Data[r * Ld + c] = rng.Uniform(-1, 1);
        }

        public float this[int r, int c] => Data[r * Ld + c];
    }

    // m, n, k over 1, 7, 31, 33, 100, 257, 300: each size in each position, around the micro-kernel
    // tiles (6 x 16, 8 x 32, 16 x 16), the packing blocks (KC = 256, MC = 112/120, NC = 2048) and the
    // threading threshold (64^3).
    public static TheoryData<int, int, int> Sizes => new()
    {
        { 1, 1, 1 },
        { 1, 300, 7 },
        { 300, 1, 33 },
        { 7, 33, 300 },
        { 31, 257, 1 },
        { 33, 7, 257 },
        { 100, 100, 31 },
        { 257, 31, 100 },
        { 300, 257, 33 },
        { 33, 31, 257 },
        { 7, 1, 100 },
        // Exact and ragged tile widths (16, 32), rows in whole tiles (A read in place), a second
        // 2048-column block of B, and parallel splits by columns and by rows.
        { 32, 16, 40 },
        { 48, 32, 257 },
        { 64, 64, 70 },
        { 17, 20, 5 },
        { 16, 2100, 9 },
        { 96, 48, 64 },
        // A with few rows (the streaming path for dense layers at small batches): one to four rows at a
        // time, C blocks of 4096 / rows columns, ragged vectors, k not a multiple of 4, both threads.
        { 1, 4097, 65 },
        { 2, 4100, 33 },
        { 3, 70, 1030 },
        { 4, 1025, 258 },
        { 6, 257, 4099 },
        { 8, 1030, 1030 },
        // 9 to 32 rows with a wide B; B's rows split between the threads (partial products added in order).
        { 13, 300, 3500 },
        { 32, 260, 4100 },
        { 3, 100, 9000 },
        // Threads packing each block of B together (rows split, B packed once): several depth blocks, a second
        // 2048-column block, rows not a multiple of the tile's, a B whose rows alias in L1 (64 floats apart).
        { 500, 100, 300 },
        { 200, 2100, 300 },
        { 130, 64, 4000 },
        // A small C over a long depth: the threads split the depth into partial products, added in order (Split.Depth);
        // the depth not a multiple of 8, three threads from 6,144 deep, a C of up to 64K values.
        { 130, 64, 4100 },
        { 33, 40, 6200 },
        { 250, 200, 4097 },
        // Few rows of A against a large B, computed as C^T = B^T A^T and transposed into C (Gemm.SwapsOperands):
        // not transposed from 1024 deep, B transposed for 17-64 rows and 1024 columns; ragged 8 x 8 blocks, the
        // threads splitting the transpose's 64-row blocks.
        { 17, 65, 1024 },
        { 250, 70, 1100 },
        { 20, 1030, 7 },
        { 33, 1100, 300 },
        { 64, 2050, 40 },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Multiply_matches_a_naive_triple_loop_for_every_transpose_stride_and_thread_count(int m, int n, int k)
    {
        var rng = new Rng((ulong)(m * 1_000_003 + n * 1009 + k));
        foreach (bool transA in new[] { false, true })
            foreach (bool transB in new[] { false, true })
            {
                int extra = (m + n + k + (transA ? 1 : 0) + (transB ? 2 : 0)) % 2 == 0 ? 0 : 3;
                var a = transA ? new Strided(rng, k, m, extra) : new Strided(rng, m, k, extra);
                var b = transB ? new Strided(rng, n, k, 3 - extra) : new Strided(rng, k, n, 3 - extra);
                var (expected, magnitude) = Naive(a, transA, b, transB, m, n, k);
                foreach (bool accumulate in new[] { false, true })
                    foreach (int threads in new[] { 1, 2, 3 })
                    {
                        const float sentinel = 777f;
                        var c = new Strided(rng, m, n, 2, gap: sentinel);
                        var before = (float[])c.Data.Clone();

                        ThreadingCollection.WithThreads(threads, () =>
                            Gemm.Multiply(transA, transB, m, n, k, a.Data, a.Ld, b.Data, b.Ld, c.Data, c.Ld, accumulate));

                        for (int i = 0; i < m; i++)
                            for (int j = 0; j < n; j++)
                            {
                                double want = expected[i, j] + (accumulate ? before[i * c.Ld + j] : 0);
                                // float32 sums of k products: rounding grows like sqrt(k) eps; 1e-5 of
                                // sum |a b| is far above it and far below one missing product (>= 1/k of it).
                                double tolerance = 1e-5 * (magnitude[i, j] + Math.Abs(before[i * c.Ld + j]));
                                if (!(Math.Abs(c[i, j] - want) <= tolerance))
                                    Assert.Fail($"C[{i},{j}] = {c[i, j]}, expected {want} (m={m} n={n} k={k} transA={transA} transB={transB} accumulate={accumulate} threads={threads})");
                            }
                        for (int i = 0; i < m - 1; i++)
                            for (int j = n; j < c.Ld; j++)
                                Assert.Equal(sentinel, c.Data[i * c.Ld + j]);
                    }
            }
    }

    /// A B packed once (PackB) and multiplied many times (MultiplyPacked) gives what Multiply gives, with partial last
    /// panels, several depth blocks and a strided A and C.
    [Theory]
    [InlineData(1, 7, 5)]
    [InlineData(33, 100, 300)]     // a partial panel, two depth blocks
    [InlineData(100, 257, 33)]
    [InlineData(300, 40, 257)]     // several blocks of rows
    [InlineData(20, 520, 64)]
    [InlineData(72, 64, 32)]       // a Winograd product's shape
    public void MultiplyPacked_matches_Multiply(int m, int n, int k)
    {
        var rng = new Rng((ulong)(m * 31 + n * 7 + k));
        var a = new Strided(rng, m, k, 3);
        var b = new Strided(rng, k, n, 2);
        var packed = new float[Gemm.PackedSize(k, n)];
        Assert.Equal(0, packed.Length % Gemm.PanelWidth(n));
        Gemm.PackB(b.Data, k, n, b.Ld, packed);
        var (expected, magnitude) = Naive(a, false, b, false, m, n, k);
        foreach (bool accumulate in new[] { false, true })
        {
            const float sentinel = 777f;
            var c = new Strided(rng, m, n, 2, gap: sentinel);
            var before = (float[])c.Data.Clone();
            Gemm.MultiplyPacked(m, n, k, a.Data, a.Ld, packed, c.Data, c.Ld, accumulate);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double want = expected[i, j] + (accumulate ? before[i * c.Ld + j] : 0);
                    double tolerance = 1e-5 * (magnitude[i, j] + Math.Abs(before[i * c.Ld + j]));
                    if (!(Math.Abs(c[i, j] - want) <= tolerance))
                        Assert.Fail($"C[{i},{j}] = {c[i, j]}, expected {want} (m={m} n={n} k={k} accumulate={accumulate})");
                }
            for (int i = 0; i < m - 1; i++)
                for (int j = n; j < c.Ld; j++)
                    Assert.Equal(sentinel, c.Data[i * c.Ld + j]);
        }
    }

    [Fact]
    public void PackB_and_MultiplyPacked_reject_buffers_too_small()
    {
        var b = new float[10 * 20];
        var e = Assert.Throws<ArgumentException>(() => Gemm.PackB(b, 10, 20, 20, new float[Gemm.PackedSize(10, 20) - 1]));
        Assert.Contains("packed 10 x 20 B", e.Message);
        e = Assert.Throws<ArgumentException>(() => Gemm.MultiplyPacked(4, 20, 10, new float[40], 10, new float[100], new float[80], 20));
        Assert.Contains("operand B", e.Message);
    }

    static (double[,] Product, double[,] Magnitude) Naive(Strided a, bool transA, Strided b, bool transB, int m, int n, int k)
    {
        var product = new double[m, n];
        var magnitude = new double[m, n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0, abs = 0;
                for (int p = 0; p < k; p++)
                {
                    double term = (double)(transA ? a[p, i] : a[i, p]) * (transB ? b[j, p] : b[p, j]);
                    sum += term;
                    abs += Math.Abs(term);
                }
                product[i, j] = sum;
                magnitude[i, j] = abs;
            }
        return (product, magnitude);
    }

    [Fact]
    public void Multiply_with_k_zero_clears_or_keeps_C()
    {
        var c = new float[] { 1, 2, 3, 4 };

        Gemm.Multiply(false, false, 2, 2, 0, [], 0, [], 2, c, 2, accumulate: true);
        Assert.Equal([1f, 2, 3, 4], c);

        Gemm.Multiply(false, false, 2, 2, 0, [], 0, [], 2, c, 2);
        Assert.Equal([0f, 0, 0, 0], c);
    }

    [Fact]
    public void Multiply_rejects_operands_too_small_for_their_shape()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(false, false, 3, 3, 3, new float[8], 3, new float[9], 3, new float[9], 3));

        Assert.Contains("operand A", e.Message);
        Assert.Contains("9", e.Message);
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 2, new float[4], 1, new float[4], 2, new float[4], 2));
    }

    [Fact]
    public void Multiply_gives_the_same_bits_for_the_same_thread_count()
    {
        var rng = new Rng(5);
        var a = new Strided(rng, 200, 150, 0);
        var b = new Strided(rng, 150, 180, 0);
        foreach (int threads in new[] { 1, 2 })
        {
            var first = new float[200 * 180];
            var second = new float[200 * 180];
            ThreadingCollection.WithThreads(threads, () =>
            {
                Gemm.Multiply(false, false, 200, 180, 150, a.Data, 150, b.Data, 180, first, 180);
                Gemm.Multiply(false, false, 200, 180, 150, a.Data, 150, b.Data, 180, second, 180);
            });
            Assert.Equal(first, second);
        }
    }
}
