using Naani.Kernels;
using Naani.Layers;
using Xunit;

namespace Naani.Tests.Layers;

/// Flatten, Dropout and Activation: the layers without a matrix product.
public sealed class SimpleLayerTests
{
    [Fact]
    public void Flatten_keeps_the_NHWC_order_and_its_gradient_matches_central_differences()
    {
        var layer = new Flatten();
        layer.Build(new Shape(3, 2, 4), new Rng(1));
        Assert.Equal(new Shape(24), layer.OutputShape);
        var x = GradientCheck.Uniform(new Rng(2), -1, 1, 2, 3, 2, 4);
        var y = new Tensor(2, 24);

        layer.Forward(x, y, training: false);

        Assert.Equal(x[1, 2, 1, 3], y[1, (2 * 2 + 1) * 4 + 3]);
        Assert.Equal(x.Data, y.Data);
        GradientCheck.AssertLayer(layer, x);
    }

    [Theory]
    [InlineData(Activation.Linear)]
    [InlineData(Activation.Relu)]
    [InlineData(Activation.Sigmoid)]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Softmax)]
    public void ActivationLayer_gradient_matches_central_differences(Activation activation)
    {
        var layer = new ActivationLayer(activation);
        layer.Build(new Shape(3, 2, 5), new Rng(1));
        var x = GradientCheck.Uniform(new Rng(3), -2, 2, 2, 3, 2, 5);

        GradientCheck.AssertLayer(layer, x, allowKinks: activation == Activation.Relu);
    }

    [Fact]
    public void ActivationLayer_softmax_normalizes_the_last_axis_only()
    {
        var layer = new ActivationLayer(Activation.Softmax);
        layer.Build(new Shape(2, 3), new Rng(1));
        var x = Tensor.FromArray([0f, 1f, 2f, 5f, 5f, 5f], 1, 2, 3);
        var y = new Tensor(1, 2, 3);

        layer.Forward(x, y, training: false);

        double e = Math.E, sum = 1 + e + e * e;
        Assert.Equal(1 / sum, y.Data[0], 1e-6);
        Assert.Equal(e / sum, y.Data[1], 1e-6);
        Assert.Equal(e * e / sum, y.Data[2], 1e-6);
        Assert.All(y.Data[3..], v => Assert.Equal(1 / 3.0, v, 6));
    }

    [Fact]
    public void ActivationLayer_with_gradient_taken_before_the_activation_passes_dy_through()
    {
        var layer = new ActivationLayer(Activation.Softmax);
        layer.Build(new Shape(4), new Rng(1));
        layer.GradientIsPreActivation = true;
        var x = GradientCheck.Uniform(new Rng(2), -1, 1, 3, 4);
        var y = new Tensor(3, 4);
        layer.Forward(x, y, training: false);
        var dy = GradientCheck.Uniform(new Rng(3), -1, 1, 3, 4);
        var dx = new Tensor(3, 4);

        layer.Backward(x, y, dy.Clone(), dx);

        Assert.Equal(dy.Data, dx.Data);
    }

    [Fact]
    public void Dropout_in_inference_is_the_identity()
    {
        var layer = new Dropout(0.5);
        layer.Build(new Shape(10, 10, 3), new Rng(1));
        var x = GradientCheck.Uniform(new Rng(2), -1, 1, 4, 10, 10, 3);
        var y = new Tensor(x.Shape);

        layer.Forward(x, y, training: false);

        Assert.Equal(x.Data, y.Data);
    }

    [Theory]
    [InlineData(0.2)]
    [InlineData(0.5)]
    [InlineData(0.75)]
    public void Dropout_in_training_zeroes_about_rate_of_the_values_and_scales_the_rest(double rate)
    {
        var layer = new Dropout(rate);
        layer.Build(new Shape(50, 40), new Rng(1));
        var x = new Tensor(5, 50, 40);
        x.Fill(1f);
        var y = new Tensor(x.Shape);

        layer.Forward(x, y, training: true);

        float scale = (float)(1.0 / (1.0 - rate));
        Assert.All(y.Data, v => Assert.True(v == 0f || v == scale, $"dropout output {v} is neither 0 nor {scale}"));
        double dropped = y.Data.Count(v => v == 0f) / (double)y.Length;
        // 10,000 Bernoulli draws: the standard deviation of the fraction is at most 0.005.
        Assert.InRange(dropped, rate - 0.025, rate + 0.025);
    }

    [Fact]
    public void Dropout_backward_multiplies_dy_by_the_same_mask_as_forward()
    {
        // y = x * mask / (1 - rate)  =>  dx = dy * mask / (1 - rate), exactly.
        const double rate = 0.4;
        var layer = new Dropout(rate);
        layer.Build(new Shape(6, 6, 2), new Rng(1));
        var ones = new Tensor(3, 6, 6, 2);
        ones.Fill(1f);
        var mask = new Tensor(ones.Shape);
        layer.Forward(ones, mask, training: true);   // with x = 1 the output is the scaled mask itself
        var dy = GradientCheck.Uniform(new Rng(2), -1, 1, 3, 6, 6, 2);
        var dx = new Tensor(ones.Shape);
        dx.Fill(float.NaN);

        layer.Backward(ones, mask, dy.Clone(), dx);

        float scale = (float)(1.0 / (1.0 - rate));
        Assert.Contains(mask.Data, m => m == 0f);
        Assert.Contains(mask.Data, m => m == scale);
        for (int i = 0; i < dx.Length; i++) Assert.Equal(dy.Data[i] * mask.Data[i], dx.Data[i]);
    }

    [Fact]
    public void Dropout_draws_a_new_mask_every_training_step()
    {
        var layer = new Dropout(0.5);
        layer.Build(new Shape(100), new Rng(1));
        var x = new Tensor(2, 100);
        x.Fill(1f);
        var first = new Tensor(2, 100);
        var second = new Tensor(2, 100);

        layer.Forward(x, first, training: true);
        layer.Forward(x, second, training: true);

        Assert.NotEqual(first.Data, second.Data);
    }
}
