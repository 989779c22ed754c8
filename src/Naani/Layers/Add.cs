using Naani.Kernels;

namespace Naani.Layers;

/// Sums its inputs element by element, as Keras's Add: the residual connection y = F(x) + x of ResNet.
/// All inputs must have the same shape.
public sealed class Add(string? name = null) : MergeLayer(name)
{
    protected override Shape Build(IReadOnlyList<Shape> inputs)
    {
        if (inputs.Any(s => s != inputs[0]))
            throw new ArgumentException($"Add '{Name}' sums inputs of one shape; got {Describe(inputs)}.");
        return inputs[0];
    }

    public override void Forward(IReadOnlyList<Tensor> inputs, Tensor y, bool training)
    {
        inputs[0].Data.AsSpan().CopyTo(y.Data);
        for (int k = 1; k < inputs.Count; k++) Activations.AddInPlace(y.Data, inputs[k].Data);
    }

    // in the forward pass this was y = x_0 + x_1 + ..., so every dx_k = dy.
    public override void Backward(IReadOnlyList<Tensor> inputs, Tensor y, Tensor dy, IReadOnlyList<Tensor?> inputGradients)
    {
        for (int k = 0; k < inputGradients.Count; k++)
            if (inputGradients[k] is { } dx) dy.Data.AsSpan().CopyTo(dx.Data);
    }
}
