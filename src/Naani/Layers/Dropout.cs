using System.Text.Json.Nodes;

namespace Naani.Layers;

/// Inverted dropout: in training each value is zeroed with probability rate and the survivors are
/// scaled by 1 / (1 - rate), so inference is the identity.
public sealed class Dropout : Layer
{
    public Dropout(double rate, string? name = null) : base(name)
    {
        if (!(rate >= 0 && rate < 1)) throw new ArgumentOutOfRangeException(nameof(rate), $"Dropout rate must be in [0, 1); got {rate}.");
        Rate = rate;
    }

    public double Rate { get; }
    float[] mask = [];

    protected override Shape Build(Shape input) => input;

    public override bool PassesThrough(bool training) => !training || Rate == 0;

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        if (!training || Rate == 0)
        {
            x.Data.AsSpan().CopyTo(y.Data);
            return;
        }
        if (mask.Length < x.Length) mask = new float[x.Length];
        float scale = (float)(1.0 / (1.0 - Rate));
        // Keep a value when a uniform 32-bit draw is at or above rate * 2^32: two draws per 64-bit number.
        uint threshold = (uint)Math.Min(Rate * 4294967296.0, uint.MaxValue);
        var rng = Random;
        for (int i = 0; i < x.Length; i += 2)
        {
            ulong bits = rng.NextUInt64();
            mask[i] = (uint)bits >= threshold ? scale : 0f;
            if (i + 1 < x.Length) mask[i + 1] = (uint)(bits >> 32) >= threshold ? scale : 0f;
        }
        Multiply(x.Data, mask, y.Data);
    }

    // in the forward pass y = x * mask, so dx = dy * mask (the last forward was a training one).
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        if (dx is null) return;
        if (Rate == 0)
        {
            dy.Data.AsSpan().CopyTo(dx.Data);
            return;
        }
        Multiply(dy.Data, mask, dx.Data);
    }

    static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> result)
    {
        int i = 0, w = System.Numerics.Vector<float>.Count;
        for (; i <= result.Length - w; i += w)
            (new System.Numerics.Vector<float>(a.Slice(i)) * new System.Numerics.Vector<float>(b.Slice(i))).CopyTo(result.Slice(i));
        for (; i < result.Length; i++) result[i] = a[i] * b[i];
    }

    public override JsonObject GetConfig() => new() { ["rate"] = Rate };
}
