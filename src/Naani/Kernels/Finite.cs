using System.Numerics;
using System.Runtime.InteropServices;

namespace Naani.Kernels;

/// Whether values are all finite: x - x is 0 for a finite x and NaN for an infinite or NaN one, so the
/// sum of (x - x) over the span is 0 exactly when every value is finite. One pass, memory-bound.
public static class Finite
{
    public static bool All(ReadOnlySpan<float> values)
    {
        var vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
        var acc = Vector<float>.Zero;
        foreach (var v in vectors) acc += v - v;
        float sum = Vector.Sum(acc);
        for (int i = vectors.Length * Vector<float>.Count; i < values.Length; i++) sum += values[i] - values[i];
        return sum == 0;
    }
}
