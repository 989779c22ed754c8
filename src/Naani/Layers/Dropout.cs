using System.Text.Json.Nodes;
using Naani.Kernels;

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

    /// Data-parallel training: the position of this rank's first sample in the global batch, so that the
    /// mask of each sample is the one a single process training on the whole batch would draw.
    internal int SampleOffset { get; set; }

    /// Data-parallel training, a rank without samples in a (last, short) global batch: takes the draw a training
    /// forward pass would have taken, so its stream stays in step with the other ranks'.
    internal void SkipBatch()
    {
        if (Rate != 0) Random.NextUInt64();
    }

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
        // One draw from the layer's stream per batch keys the mask; the mask itself is counter-based
        // (DropoutMask), made on every thread at once and the same whatever the thread count.
        (key, threshold, scale) = (Random.NextUInt64(), DropoutMask.Threshold(Rate), (float)(1.0 / (1.0 - Rate)));
        (this.x, this.y) = (x, y);
        Threading.For((x.Length + 1) / 2, forwardRange ??= ForwardRange, minPerPart: 8192);
        (this.x, this.y) = (null, null);
    }

    ulong key;
    uint threshold;
    float scale;
    Tensor? x, y;
    Action<int, int, int>? forwardRange;

    // Pairs [start, end) of values.
    void ForwardRange(int part, int start, int end) =>
        DropoutMask.Apply(key, threshold, scale, x!.Data, mask, y!.Data, 2 * start, Math.Min(x.Length, 2 * end), (long)SampleOffset * (x.Length / Math.Max(1, x.Batch)));

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
