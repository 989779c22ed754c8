using Naani.Kernels;

namespace Naani.Tests.Kernels;

/// Threading.RunSerially: inside the scope a parallel loop runs on the calling thread alone, in one part covering the
/// whole range; outside it, the pool is used again.
[Collection(ThreadingCollection.Name)]
public sealed class RunSeriallyTests
{
    [Fact]
    public void Inside_the_scope_work_runs_on_the_calling_thread_in_one_part()
    {
        int saved = Threading.MaxThreads;
        try
        {
            Threading.MaxThreads = 2;
            var parts = new System.Collections.Concurrent.ConcurrentBag<(int Part, int Start, int End, int Thread)>();
            void Body(int part, int start, int end) => parts.Add((part, start, end, Environment.CurrentManagedThreadId));
            using (Threading.RunSerially())
            {
                Threading.For(1000, Body);
                Assert.Equal([(0, 0, 1000, Environment.CurrentManagedThreadId)], parts);
            }
            parts.Clear();
            Threading.For(1000, Body);
            Assert.Equal(2, parts.Count);
            Assert.Contains(parts, p => p.Thread != Environment.CurrentManagedThreadId);
        }
        finally
        {
            Threading.MaxThreads = saved;
        }
    }

    [Fact]
    public void A_few_rows_product_split_over_the_rows_of_B_is_whole_when_run_serially()
    {
        // The few-rows GEMM splits B's rows across threads and adds per-thread partials afterwards; inside a serial
        // scope it must not add partials that no part wrote (they would hold a previous call's values).
        ThreadingCollection.WithThreads(2, () =>
        {
            const int m = 2, n = 64, k = 4096;
            var rng = new Rng(4);
            var a = new float[m * k];
            var b = new float[k * n];
            for (int i = 0; i < a.Length; i++) a[i] = rng.NextFloat() - 0.5f;
            for (int i = 0; i < b.Length; i++) b[i] = rng.NextFloat() - 0.5f;
            var parallel = new float[m * n];
            Gemm.Multiply(false, false, m, n, k, a, k, b, n, parallel, n);
            var serial = new float[m * n];
            using (Threading.RunSerially()) Gemm.Multiply(false, false, m, n, k, a, k, b, n, serial, n);
            for (int i = 0; i < m * n; i++)
            {
                double exact = 0;
                for (int p = 0; p < k; p++) exact += (double)a[i / n * k + p] * b[p * n + i % n];
                Assert.Equal(exact, serial[i], 1e-3);
                Assert.Equal(exact, parallel[i], 1e-3);
            }
        });
    }

    [Fact]
    public void Two_models_predicting_side_by_side_serially_give_the_single_threaded_answers()
    {
        var a = Naani.Models.Architectures.Create("mnist-baseline", seed: 3);
        var b = Naani.Models.Architectures.Create("mnist-baseline", seed: 3);
        var x = new Tensor(16, 28, 28, 1);
        var rng = new Rng(9);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat();
        float[] expected = a.Predict(x).Data, serial;
        using (Threading.RunSerially()) serial = a.Predict(x).Data;
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], serial[i], 5);
        var results = new float[2][];
        bool same = true;
        using var start = new Barrier(2);
        var threads = Enumerable.Range(0, 2).Select(i => new Thread(() =>
        {
            using var scope = Threading.RunSerially();
            var model = i == 0 ? a : b;
            start.SignalAndWait();
            for (int r = 0; r < 50; r++)
            {
                results[i] = model.Predict(x).Data;
                if (!results[i].AsSpan().SequenceEqual(serial)) same = false;
            }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        Assert.True(same, "a prediction differed while the other model ran");
        Assert.Equal(serial, results[0]);
        Assert.Equal(serial, results[1]);
    }
}
