using System.Numerics;
using System.Runtime.InteropServices;

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

    static bool Serial(ReadOnlySpan<float> values)
    {
        var vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
        var acc = Vector<float>.Zero;
        foreach (var v in vectors) acc += v - v;
        float sum = Vector.Sum(acc);
        for (int i = vectors.Length * Vector<float>.Count; i < values.Length; i++) sum += values[i] - values[i];
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
