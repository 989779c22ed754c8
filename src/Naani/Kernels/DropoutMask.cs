using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Naani.Kernels;

// Inverted dropout's mask, counter-based: value i is kept when a uniform 32-bit number u_i >= rate * 2^32,
// and then scaled by 1 / (1 - rate). The numbers come in pairs from SplitMix64 started at a 64-bit key:
// h_j = mix(key + (j + 1) * golden), u_2j = low half of h_j, u_2j+1 = high half. Each value's number
// depends only on (key, i), so any range of values can be made on any thread, eight pairs at a time with
// 64-bit vector multiplies, and a run is the same bits whatever the thread count.
public static unsafe class DropoutMask
{
    const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// The keep threshold of a rate in [0, 1): keep u when u >= threshold.
    public static uint Threshold(double rate) => (uint)Math.Min(rate * 4294967296.0, uint.MaxValue);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// mask[i] = scale or 0 and y[i] = x[i] * mask[i], for i in [start, end) (start even). Value i takes number
    /// u_(first + i): a data-parallel rank whose batch is a slice of the global batch starting at value first
    /// makes the same mask for its values as one process training on the whole batch.
    public static void Apply(ulong key, uint threshold, float scale, ReadOnlySpan<float> x, Span<float> mask, Span<float> y, int start, int end, long first = 0)
    {
        if (first < 0) throw new ArgumentOutOfRangeException(nameof(first), $"The first value's index must be non-negative; got {first}.");
        if ((start & 1) != 0) throw new ArgumentException("A range of the dropout mask starts at an even index.", nameof(start));
        if (end > x.Length || end > mask.Length || end > y.Length || start < 0 || start > end)
            throw new ArgumentException($"Dropout range [{start}, {end}) does not fit buffers of {x.Length}, {mask.Length} and {y.Length} values.");
        int i = start;
        fixed (float* px = x) fixed (float* pm = mask) fixed (float* py = y)
        {
            if ((first & 1) != 0)
            {
                // An odd offset splits every pair across two values of x: number by number.
                for (; i < end; i++)
                {
                    ulong g = (ulong)(first + i);
                    ulong h = Mix(key + ((g >> 1) + 1) * Golden);
                    pm[i] = (uint)((g & 1) == 0 ? h : h >> 32) >= threshold ? scale : 0f;
                    py[i] = px[i] * pm[i];
                }
                return;
            }
            ulong pair0 = (ulong)first >> 1;
            if (Vector512.IsHardwareAccelerated)
            {
                // Pair j + t (t = 0..7) starts from key + (j + t + 1) * golden: the lanes' offsets, made once.
                var offsets = Vector512.Create(1UL, 2, 3, 4, 5, 6, 7, 8) * Vector512.Create(Golden);
                var limit = Vector512.Create(threshold);
                var keep = Vector512.Create(scale);
                for (; i + 16 <= end; i += 16)
                {
                    var z = Vector512.Create(key + (pair0 + (ulong)(i >> 1)) * Golden) + offsets;
                    z = (z ^ (z >> 30)) * Vector512.Create(0xBF58476D1CE4E5B9UL);
                    z = (z ^ (z >> 27)) * Vector512.Create(0x94D049BB133111EBUL);
                    z ^= z >> 31;
                    // Little-endian: lane 2j is pair j's low half, lane 2j + 1 its high half.
                    var m = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(z.AsUInt32(), limit).AsSingle(), keep, Vector512<float>.Zero);
                    m.Store(pm + i);
                    (Vector512.Load(px + i) * m).Store(py + i);
                }
            }
            for (; i < end; i += 2)
            {
                ulong h = Mix(key + (pair0 + (ulong)(i >> 1) + 1) * Golden);
                pm[i] = (uint)h >= threshold ? scale : 0f;
                py[i] = px[i] * pm[i];
                if (i + 1 < end)
                {
                    pm[i + 1] = (uint)(h >> 32) >= threshold ? scale : 0f;
                    py[i + 1] = px[i + 1] * pm[i + 1];
                }
            }
        }
    }
}
