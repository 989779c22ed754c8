using System.Text.Json.Nodes;

namespace Naani.Layers;

/// Declares the per-sample input shape: new Input(28, 28, 1) first in a Sequential, or Input.Create(28, 28, 1)
/// for an input of a functional graph. Computes nothing.
public sealed class Input : Layer
{
    public Input(params int[] shape) : this(new Shape(shape)) { }

    public Input(Shape shape, string? name = null) : base(name) => Shape = shape;

    /// A graph input for the functional API, as keras.Input: var inputs = Input.Create(28, 28, 1).
    public static Node Create(params int[] shape) => Create(new Shape(shape));

    public static Node Create(Shape shape, string? name = null) => new Input(shape, name).CallOn([]);

    public Shape Shape { get; }
    public override string TypeName => "InputLayer";

    protected override Shape Build(Shape input)
    {
        if (input != Shape)
            throw new ArgumentException($"Input layer '{Name}' declares {Shape.ToKerasString()} but receives {input.ToKerasString()}.");
        return Shape;
    }

    public override void Forward(Tensor x, Tensor y, bool training) => x.Data.AsSpan().CopyTo(y.Data);

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        if (dx is not null) dy.Data.AsSpan().CopyTo(dx.Data);
    }

    public override JsonObject GetConfig() => new() { ["shape"] = new JsonArray(Shape.ToArray().Select(d => (JsonNode)d).ToArray()) };
}
