using System.Text.Json.Nodes;
using Naani.Kernels;

namespace Naani.Layers;

/// Applies an activation on its own (Keras's Activation layer): relu, sigmoid, tanh, softmax (last axis) or linear.
public sealed class ActivationLayer(Activation activation, string? name = null) : Layer(name)
{
    public Activation Activation { get; } = activation;
    public override string TypeName => "Activation";
    public override Activation OutputActivation => Activation;

    protected override Shape Build(Shape input) => input;

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        x.Data.AsSpan().CopyTo(y.Data);
        Activations.Apply(y.Data, InputShape[^1], Activation);
    }

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        if (dx is null) return;
        if (!GradientIsPreActivation) Activations.Backward(y.Data, dy.Data, InputShape[^1], Activation);
        dy.Data.AsSpan().CopyTo(dx.Data);
    }

    public override JsonObject GetConfig() => new() { ["activation"] = Activation.ToKeras() };
}
