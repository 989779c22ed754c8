namespace Naani.Layers;

/// (H, W, C) -> (H * W * C): in NHWC memory the values keep their order, so the model lets the
/// output share the input's memory and nothing is copied (Forward copies only when given two buffers).
public sealed class Flatten(string? name = null) : Layer(name)
{
    protected override Shape Build(Shape input) => new(input.Size);

    public override bool IsReshape => true;

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        if (!ReferenceEquals(x.Data, y.Data)) x.Data.AsSpan().CopyTo(y.Data);
    }

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        if (dx is not null && !ReferenceEquals(dx.Data, dy.Data)) dy.Data.AsSpan().CopyTo(dx.Data);
    }
}
