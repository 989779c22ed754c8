using Naani.Kernels;
using Naani.Layers;
using Xunit;
using Xunit.Abstractions;

namespace Naani.Tests.Layers;

public sealed class Conv2DGradientTests(ITestOutputHelper output)
{
    // (height, width, channels, filters, kernel h, kernel w, stride h, stride w, padding, activation, bias)
    public static IEnumerable<object[]> Variants =>
    [
        [5, 5, 1, 3, 1, 1, 1, 1, Padding.Valid, Activation.Linear, true],    // pointwise: no im2col
        [6, 6, 3, 2, 1, 1, 2, 2, Padding.Same, Activation.Tanh, true],       // 1x1 but strided
        [5, 5, 3, 4, 3, 3, 1, 1, Padding.Same, Activation.Relu, true],       // odd input, symmetric pad
        [6, 6, 3, 3, 3, 3, 1, 1, Padding.Same, Activation.Tanh, false],
        [6, 6, 1, 2, 3, 3, 2, 2, Padding.Same, Activation.Linear, true],     // even input, stride 2: pad bottom/right only
        [7, 7, 1, 3, 5, 5, 1, 1, Padding.Valid, Activation.Sigmoid, true],
        [7, 7, 3, 2, 5, 5, 2, 2, Padding.Same, Activation.Linear, false],
        [8, 8, 3, 3, 4, 4, 2, 2, Padding.Same, Activation.Relu, true],       // even kernel
        [7, 7, 1, 2, 4, 4, 3, 3, Padding.Same, Activation.Linear, true],     // pad 1 top, 2 bottom
        [6, 6, 3, 2, 4, 4, 1, 1, Padding.Valid, Activation.Tanh, true],
        [6, 7, 3, 2, 2, 3, 2, 1, Padding.Valid, Activation.Tanh, true],      // non-square kernel and strides
        [5, 6, 1, 4, 2, 3, 1, 1, Padding.Same, Activation.Softmax, true],   // softmax across the filters
        [9, 9, 3, 2, 3, 3, 3, 3, Padding.Valid, Activation.Sigmoid, false],
        [5, 5, 3, 3, 3, 3, 2, 2, Padding.Valid, Activation.Softmax, true],
        [4, 6, 3, 2, 2, 3, 3, 2, Padding.Same, Activation.Relu, false],
        [8, 8, 10, 20, 3, 3, 2, 2, Padding.Same, Activation.Relu, true],     // small-32's second layer: 20 filters, 16 + 4 masked
    ];

    [Theory]
    [MemberData(nameof(Variants))]
    public void Conv2D_input_and_parameter_gradients_match_central_differences(int height, int width, int channels, int filters,
        int kernelHeight, int kernelWidth, int strideHeight, int strideWidth, Padding padding, Activation activation, bool useBias)
    {
        var layer = new Conv2D(filters, (kernelHeight, kernelWidth), (strideHeight, strideWidth), padding, activation, useBias, name: "conv");
        layer.Build(new Shape(height, width, channels), new Rng(3));
        var rng = new Rng(11);
        if (layer.Bias is { } bias)
            for (int i = 0; i < bias.Size; i++) bias.Value.Data[i] = rng.Uniform(-0.5f, 0.5f);
        var x = GradientCheck.Uniform(rng, -1f, 1f, 2, height, width, channels);

        var report = GradientCheck.AssertLayer(layer, x, allowKinks: activation == Activation.Relu);

        output.WriteLine(report.ToString());
        Assert.Equal(useBias ? 2 : 1, layer.Parameters.Count);
    }

    [Theory]
    [InlineData(5, 8, Padding.Same)]
    [InlineData(7, 6, Padding.Valid)]
    public void Conv2D_gradients_match_central_differences_for_larger_batches_and_many_channels(int batch, int channels, Padding padding)
    {
        // Several images per part (and per GEMM), and kernel rows of 3 * channels >= 16 values.
        var layer = new Conv2D(2, (3, 3), (1, 1), padding, Activation.Tanh);
        layer.Build(new Shape(4, 4, channels), new Rng(3));
        var x = GradientCheck.Uniform(new Rng(13), -1f, 1f, batch, 4, 4, channels);

        var report = GradientCheck.AssertLayer(layer, x);

        output.WriteLine(report.ToString());
    }

    [Theory]
    [InlineData(6, 6, Padding.Same, Activation.Sigmoid)]
    [InlineData(7, 6, Padding.Valid, Activation.Tanh)]   // 5 x 4 outputs: a ragged tile row
    public void Conv2D_gradients_through_Winograd_match_central_differences(int height, int width, Padding padding, Activation activation)
    {
        // 32 channels and filters at 3x3 stride 1: the forward pass, the input gradient and the kernel gradient all
        // go through Winograd F(2x2, 3x3). (Smooth activations: with 288 inputs per output, a ReLU puts a kink within
        // the step of nearly every weight, beyond what the one-sided differences can resolve, Winograd or not.)
        var layer = new Conv2D(32, (3, 3), (1, 1), padding, activation, name: "conv");
        layer.Build(new Shape(height, width, 32), new Rng(3));
        var rng = new Rng(17);
        for (int i = 0; i < layer.Bias!.Size; i++) layer.Bias.Value.Data[i] = rng.Uniform(-0.5f, 0.5f);
        var x = GradientCheck.Uniform(rng, -1f, 1f, 2, height, width, 32);

        var report = GradientCheck.AssertLayer(layer, x);

        output.WriteLine(report.ToString());
        Assert.Equal((2, 2, 2), layer.WinogradTiles);   // outputs under 16 x 16: F(2x2)
    }

    [Fact]
    public void Conv2D_gradient_taken_before_the_activation_is_the_linear_layers_gradient()
    {
        // With GradientIsPreActivation (softmax + cross-entropy fused by the model), dy is already
        // dL/dz, so Backward must match the same convolution without an activation.
        var fused = new Conv2D(3, 3, padding: Padding.Same, activation: Activation.Softmax);
        var linear = new Conv2D(3, 3, padding: Padding.Same, activation: Activation.Linear);
        fused.Build(new Shape(4, 4, 2), new Rng(5));
        linear.Build(new Shape(4, 4, 2), new Rng(5));
        fused.GradientIsPreActivation = true;
        var rng = new Rng(6);
        var x = GradientCheck.Uniform(rng, -1, 1, 2, 4, 4, 2);
        var dz = GradientCheck.Uniform(rng, -1, 1, 2, 4, 4, 3);

        var (dxFused, dkFused) = RunBackward(fused, x, dz);
        var (dxLinear, dkLinear) = RunBackward(linear, x, dz);

        Assert.Equal(dxLinear, dxFused);
        Assert.Equal(dkLinear, dkFused);
    }

    static (float[] Dx, float[] DKernel) RunBackward(Conv2D layer, Tensor x, Tensor dz)
    {
        var y = new Tensor(layer.OutputShape.WithBatch(x.Batch));
        layer.Forward(x, y, training: true);
        var dx = new Tensor(x.Shape);
        layer.Backward(x, y, dz.Clone(), dx);
        return (dx.Data, layer.Kernel.Gradient.Data);
    }
}
