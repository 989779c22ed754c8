using System.Runtime.InteropServices;

namespace Naani.Layers;

/// A copy of the weights something was derived from (a packed or transformed kernel), to tell, bit for bit, whether
/// it still holds: weights change through optimizers, SetWeights, loading and plain writes to their data, and no
/// counter sees them all. The comparison reads the weights once, far less than deriving again; after a training
/// step it stops at the first value.
internal sealed class WeightSnapshot
{
    float[]? copy;

    /// Whether `weights` equal, bit for bit, the ones taken last.
    public bool Matches(ReadOnlySpan<float> weights) =>
        copy is not null && copy.Length == weights.Length && MemoryMarshal.AsBytes(weights).SequenceEqual(MemoryMarshal.AsBytes(copy.AsSpan()));

    /// Keeps a copy of `weights`, what was just derived from them.
    public void Take(ReadOnlySpan<float> weights)
    {
        if (copy is null || copy.Length != weights.Length) copy = new float[weights.Length];
        weights.CopyTo(copy);
    }
}
