using Naani.Kernels;
using Naani.Layers;

namespace Naani.Tests.Layers;

/// Inference on many rows multiplies by weights packed once and kept while they stay the same: it gives what the
/// training-mode forward gives (which multiplies by the weights in place), before and after a weight changes.
public sealed class DensePackedWeightsTests
{
    [Fact]
    public void Inference_with_packed_weights_follows_every_change_of_the_weights()
    {
        var layer = new Dense(40, Activation.Relu);
        layer.Build(new Shape(300), new Rng(2));
        for (int i = 0; i < layer.Bias!.Size; i++) layer.Bias.Value.Data[i] = 0.01f * i;
        var x = GradientCheck.Uniform(new Rng(5), -1, 1, 64, 300);
        Assert.False(Gemm.StreamsB(64, 40, 300));   // 64 rows: the packed path

        void Same()
        {
            var inference = new Tensor(new Shape(64, 40));
            var training = new Tensor(new Shape(64, 40));
            layer.Forward(x, inference, training: false);
            layer.Forward(x, training, training: true);
            for (int i = 0; i < training.Length; i++)
                Assert.True(Math.Abs(inference.Data[i] - training.Data[i]) <= 1e-5f * (1 + Math.Abs(training.Data[i])), $"y[{i}]: {inference.Data[i]} vs {training.Data[i]}");
        }
        Same();
        Same();                                       // the packed weights kept
        layer.Kernel.Value.Data[299 * 40 + 39] += 3f;   // the last weight: its panel is a partial one
        Same();
        layer.Kernel.Value.Data[0] -= 1f;
        Same();
    }
}
