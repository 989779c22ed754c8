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
        float rate = (float)Rate;
        var rng = Random;
        for (int i = 0; i < x.Length; i++)
        {
            mask[i] = rng.NextFloat() >= rate ? scale : 0f;
            y.Data[i] = x.Data[i] * mask[i];
        }
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
        for (int i = 0; i < dy.Length; i++) dx.Data[i] = dy.Data[i] * mask[i];
    }

    public override JsonObject GetConfig() => new() { ["rate"] = Rate };
}
