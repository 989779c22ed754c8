namespace Naani.Layers;

/// (H, W, C) -> (H * W * C). In NHWC memory this is a copy, nothing moves.
public sealed class Flatten(string? name = null) : Layer(name)
{
    protected override Shape Build(Shape input) => new(input.Size);

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        x.Data.AsSpan().CopyTo(y.Data);
    }

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        if (dx is not null) dy.Data.AsSpan().CopyTo(dx.Data);
    }
}
