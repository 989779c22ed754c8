using System.Runtime.Intrinsics;

namespace Naani.Kernels;

/// Whether values are all finite: x - x is 0 for a finite x and NaN for an infinite or NaN one, so the
/// sum of (x - x) over the span is 0 exactly when every value is finite. One pass, memory-bound; from a million values
/// the threads share it (the guard of a training step reads every gradient: 76 MB for cats-dogs-150's dense layer,
/// 2.5 ms on one Zen 5 core).
public static unsafe class Finite
{
    public static bool All(ReadOnlySpan<float> values)
    {
        int threads = Threading.Available;
        if (threads == 1 || values.Length < 1 << 20) return Serial(values);
        var job = parallelJob ??= new ParallelJob();
        fixed (float* p = values)
        {
            job.Set(p, values.Length, threads);
            Threading.For(threads, job.Body);
        }
        return job.AllFinite;
    }

    // Four sums, each a chain of dependent additions: with one, the additions' latency set the speed wherever the values are
    // in cache, as when the optimizer checks each chunk it has just updated (one Zen 5 core, 289 chunks of 65,536 values:
    // 1.05 ms with one sum of 256-bit vectors, 0.32 ms with four of 512-bit ones; 76 MB from memory 1.77 -> 1.68 ms).
    static bool Serial(ReadOnlySpan<float> values)
    {
        if (Vector512.IsHardwareAccelerated) return Serial<Vector512<float>, Lanes512>(values);
        if (Vector256.IsHardwareAccelerated) return Serial<Vector256<float>, Lanes256>(values);
        float sum = 0;
        foreach (float v in values) sum += v - v;
        return sum == 0;
    }

    static bool Serial<TV, L>(ReadOnlySpan<float> values) where TV : unmanaged where L : ILanes<TV>
    {
        int n = values.Length, i = 0, w = L.Count;
        TV a0 = L.Zero, a1 = L.Zero, a2 = L.Zero, a3 = L.Zero;
        float sum = 0;
        fixed (float* p = values)
        {
            for (; i <= n - 4 * w; i += 4 * w)
            {
                TV v0 = L.Load(p + i), v1 = L.Load(p + i + w), v2 = L.Load(p + i + 2 * w), v3 = L.Load(p + i + 3 * w);
                a0 = L.Add(a0, L.Sub(v0, v0));
                a1 = L.Add(a1, L.Sub(v1, v1));
                a2 = L.Add(a2, L.Sub(v2, v2));
                a3 = L.Add(a3, L.Sub(v3, v3));
            }
            for (; i <= n - w; i += w)
            {
                TV v = L.Load(p + i);
                a0 = L.Add(a0, L.Sub(v, v));
            }
            for (; i < n; i++) sum += p[i] - p[i];
        }
        // NaN anywhere makes the total NaN, and +Inf and -Inf cancel only into NaN: the total is 0 exactly when all are finite.
        TV total = L.Add(L.Add(a0, a1), L.Add(a2, a3));
        float* lanes = stackalloc float[16];
        L.Store(total, lanes);
        for (int j = 0; j < w; j++) sum += lanes[j];
        return sum == 0;
    }

    [ThreadStatic] static ParallelJob? parallelJob;

    // The span and the verdict, in fields so that dispatching allocates nothing: a part that meets a non-finite value
    // clears AllFinite.
    sealed class ParallelJob
    {
        nint values;
        int length, parts;
        public volatile bool AllFinite;
        public readonly Action<int, int, int> Body;

        public ParallelJob() => Body = Run;

        public void Set(float* values, int length, int parts) =>
            (this.values, this.length, this.parts, AllFinite) = ((nint)values, length, parts, true);

        // Units are the parts themselves: part p checks values [p, p + 1) times length / parts.
        void Run(int part, int start, int end)
        {
            long from = (long)length * start / parts, to = (long)length * end / parts;
            if (!Serial(new ReadOnlySpan<float>((float*)values + from, (int)(to - from)))) AllFinite = false;
        }
    }
}
