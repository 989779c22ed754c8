using Naani.Layers;
using Xunit;
using Xunit.Abstractions;

namespace Naani.Tests.Layers;

public sealed class DenseGradientTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(Activation.Linear, true)]
    [InlineData(Activation.Relu, true)]
    [InlineData(Activation.Sigmoid, true)]
    [InlineData(Activation.Tanh, false)]
    [InlineData(Activation.Softmax, true)]
    public void Dense_on_vectors_input_and_parameter_gradients_match_central_differences(Activation activation, bool useBias)
    {
        var layer = new Dense(4, activation, useBias);
        layer.Build(new Shape(6), new Rng(2));
        var rng = new Rng(23);
        if (layer.Bias is { } bias)
            for (int i = 0; i < bias.Size; i++) bias.Value.Data[i] = rng.Uniform(-0.5f, 0.5f);
        var x = GradientCheck.Uniform(rng, -1, 1, 3, 6);

        var report = GradientCheck.AssertLayer(layer, x, allowKinks: activation == Activation.Relu);

        output.WriteLine(report.ToString());
    }

    [Theory]
    [InlineData(Activation.Linear)]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Softmax)]
    public void Dense_on_images_acts_on_the_last_axis_and_its_gradients_match_central_differences(Activation activation)
    {
        var layer = new Dense(3, activation);
        layer.Build(new Shape(4, 3, 5), new Rng(2));
        Assert.Equal(new Shape(4, 3, 3), layer.OutputShape);
        Assert.Equal(5 * 3 + 3, layer.ParameterCount);
        var rng = new Rng(29);
        for (int i = 0; i < 3; i++) layer.Bias!.Value.Data[i] = rng.Uniform(-0.5f, 0.5f);
        var x = GradientCheck.Uniform(rng, -1, 1, 2, 4, 3, 5);

        var report = GradientCheck.AssertLayer(layer, x);

        output.WriteLine(report.ToString());
    }

    [Fact]
    public void Dense_on_images_equals_dense_applied_to_each_pixel()
    {
        var layer = new Dense(2);
        layer.Build(new Shape(2, 2, 3), new Rng(4));
        var x = GradientCheck.Uniform(new Rng(5), -1, 1, 1, 2, 2, 3);
        var y = new Tensor(1, 2, 2, 2);

        layer.Forward(x, y, training: false);

        var w = layer.Kernel.Value;
        for (int pixel = 0; pixel < 4; pixel++)
            for (int u = 0; u < 2; u++)
            {
                double expected = 0;
                for (int c = 0; c < 3; c++) expected += x.Data[pixel * 3 + c] * w[c, u];
                Assert.Equal(expected, y.Data[pixel * 2 + u], 1e-5);
            }
    }

    [Fact]
    public void Dense_gradient_taken_before_the_activation_skips_the_activation_derivative()
    {
        var fused = new Dense(3, Activation.Sigmoid);
        var linear = new Dense(3);
        fused.Build(new Shape(4), new Rng(8));
        linear.Build(new Shape(4), new Rng(8));
        fused.GradientIsPreActivation = true;
        var x = GradientCheck.Uniform(new Rng(9), -1, 1, 2, 4);
        var dz = GradientCheck.Uniform(new Rng(10), -1, 1, 2, 3);

        foreach (var layer in new[] { fused, linear })
        {
            var y = new Tensor(2, 3);
            layer.Forward(x, y, training: true);
            layer.Backward(x, y, dz.Clone(), new Tensor(2, 4));
        }

        Assert.Equal(linear.Kernel.Gradient.Data, fused.Kernel.Gradient.Data);
        Assert.Equal(linear.Bias!.Gradient.Data, fused.Bias!.Gradient.Data);
    }
    /// A step resets the gradients instead of clearing them (ResetGradient): the dense layer's first backward pass
    /// then writes its weight and bias gradients over whatever they held, a second one adds to them, and a gradient
    /// no pass wrote reads as zeros.
    [Fact]
    public void After_a_reset_the_first_backward_pass_overwrites_the_gradients_and_the_next_adds()
    {
        var layer = new Dense(5, Activation.Linear);
        layer.Build(new Shape(7), new Rng(3));
        var rng = new Rng(31);
        var x = GradientCheck.Uniform(rng, -1, 1, 4, 7);
        var dy = GradientCheck.Uniform(rng, -1, 1, 4, 5);
        var y = new Tensor(4, 5);
        layer.Forward(x, y, training: true);

        layer.Backward(x, y, dy.Clone(), null);
        var once = ((float[])layer.Kernel.Gradient.Data.Clone(), (float[])layer.Bias!.Gradient.Data.Clone());
        Assert.Contains(once.Item1, v => v != 0);

        // Stale values a reset must hide: a pass that added to them would be off by 100 everywhere.
        Array.Fill(layer.Kernel.Gradient.Data, 100f);
        Array.Fill(layer.Bias.Gradient.Data, 100f);
        layer.Kernel.ResetGradient();
        layer.Bias.ResetGradient();
        layer.Backward(x, y, dy.Clone(), null);
        Assert.Equal(once.Item1, layer.Kernel.Gradient.Data);
        Assert.Equal(once.Item2, layer.Bias.Gradient.Data);

        layer.Backward(x, y, dy.Clone(), null);
        for (int i = 0; i < once.Item1.Length; i++) Assert.Equal(2 * once.Item1[i], layer.Kernel.Gradient.Data[i], 5);
        for (int i = 0; i < once.Item2.Length; i++) Assert.Equal(2 * once.Item2[i], layer.Bias.Gradient.Data[i], 5);

        layer.Kernel.ResetGradient();
        Assert.All(layer.Kernel.Gradient.Data, v => Assert.Equal(0f, v));
    }
}
