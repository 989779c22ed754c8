using System.Text.Json.Nodes;

namespace Naani.Layers;

/// Joins its inputs along the channels (the last axis), as Keras's Concatenate(axis=-1): the Inception
/// module's branches of (28, 28, 8), (28, 28, 8), (28, 28, 8) and (28, 28, 8) become (28, 28, 32).
/// Every other axis must agree.
public sealed class Concatenate(string? name = null) : MergeLayer(name)
{
    int[] channels = [];

    protected override Shape Build(IReadOnlyList<Shape> inputs)
    {
        var first = inputs[0];
        foreach (var shape in inputs)
            if (shape.Rank != first.Rank || !shape.Dims[..^1].SequenceEqual(first.Dims[..^1]))
                throw new ArgumentException($"Concatenate '{Name}' joins inputs along the last axis, so all other axes must agree; got {Describe(inputs)}.");
        channels = [.. inputs.Select(s => s[^1])];
        return first.WithLast(channels.Sum());
    }

    // y[r, offset_k + c] = x_k[r, c], with r running over (batch, height, width) and offset_k the
    // channels of the inputs before k: each input's channels are a contiguous run of every pixel's.
    public override void Forward(IReadOnlyList<Tensor> inputs, Tensor y, bool training)
    {
        int total = y.Shape[^1], rows = y.Length / total, offset = 0;
        for (int k = 0; k < inputs.Count; k++)
        {
            int c = channels[k];
            var x = inputs[k].Data;
            for (int r = 0; r < rows; r++)
                x.AsSpan(r * c, c).CopyTo(y.Data.AsSpan(r * total + offset, c));
            offset += c;
        }
    }

    // in the forward pass this was y[r, offset_k + c] = x_k[r, c], so dx_k[r, c] = dy[r, offset_k + c].
    public override void Backward(IReadOnlyList<Tensor> inputs, Tensor y, Tensor dy, IReadOnlyList<Tensor?> inputGradients)
    {
        int total = dy.Shape[^1], rows = dy.Length / total, offset = 0;
        for (int k = 0; k < inputs.Count; k++)
        {
            int c = channels[k];
            if (inputGradients[k] is { } dx)
                for (int r = 0; r < rows; r++)
                    dy.Data.AsSpan(r * total + offset, c).CopyTo(dx.Data.AsSpan(r * c, c));
            offset += c;
        }
    }

    public override JsonObject GetConfig() => new() { ["axis"] = -1 };
}
