using Naani.Kernels;
using Naani.Layers;

namespace Naani.Tests.Layers;

/// A frozen layer (Trainable = false, transfer learning) still passes the gradient on to its input,
/// exactly as when trainable, but spends no work on weight gradients nobody will use.
public sealed class FrozenLayerTests
{
    static void CheckFrozen(Layer layer, Shape input)
    {
        layer.Build(input, new Rng(1));
        var rng = new Rng(2);
        var x = new Tensor(input.WithBatch(3));
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat() - 0.5f;
        var y = new Tensor(layer.OutputShape.WithBatch(3));
        var dy = new Tensor(y.Shape);
        for (int i = 0; i < dy.Length; i++) dy.Data[i] = rng.NextFloat() - 0.5f;

        layer.Forward(x, y, training: true);
        var dxTrainable = new Tensor(x.Shape);
        layer.Backward(x, y, dy.Clone(), dxTrainable);
        Assert.Contains(layer.Parameters, p => p.Gradient.Data.Any(v => v != 0));

        foreach (var p in layer.Parameters) p.Gradient.Clear();
        layer.Trainable = false;
        layer.Forward(x, y, training: true);
        var dxFrozen = new Tensor(x.Shape);
        layer.Backward(x, y, dy.Clone(), dxFrozen);
        Assert.Equal(dxTrainable.Data, dxFrozen.Data);
        Assert.All(layer.Parameters, p => Assert.All(p.Gradient.Data, v => Assert.Equal(0f, v)));
    }

    [Fact]
    public void Frozen_Conv2D_passes_dx_and_computes_no_weight_gradient() =>
        CheckFrozen(new Conv2D(4, 3, padding: Padding.Same, activation: Activation.Relu), new Shape(6, 5, 2));

    [Fact]
    public void Frozen_Dense_passes_dx_and_computes_no_weight_gradient() =>
        CheckFrozen(new Dense(5, Activation.Tanh), new Shape(7));
}
