using Naani.Initializers;
using Naani.Layers;
using Xunit;

namespace Naani.Tests.Layers;

/// The gradient check itself must be able to fail: it rejects layers with the bugs it exists to catch.
public sealed class GradientCheckTests
{
    public enum Bug
    {
        None,
        WrongIndex,                    // dx[i] takes the weight of its neighbour
        MissingActivationDerivative,   // forgets the (1 - y^2) of tanh
        MissingTerm,                   // the bias gradient leaves out the last sample of the batch
        OverwritesGradient,            // sets the weight gradient instead of adding to it
        DropsHalfOfTheGradient,        // dx = dy W / 2: right direction, wrong size
    }

    /// y[n, i] = tanh(x[n, i] * w[i] + b[i]), with an optional deliberate bug in Backward.
    sealed class ScaleLayer(Bug bug) : Layer("scale")
    {
        Parameter w = null!, b = null!;

        protected override Shape Build(Shape input)
        {
            w = AddWeight("w", new Shape(input[^1]), Initializer.GlorotUniform);
            b = AddWeight("b", new Shape(input[^1]), Initializer.Zeros);
            return input;
        }

        public override void Forward(Tensor x, Tensor y, bool training)
        {
            int c = w.Size;
            for (int i = 0; i < x.Length; i++)
                y.Data[i] = MathF.Tanh(x.Data[i] * w.Value.Data[i % c] + b.Value.Data[i % c]);
        }

        public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
        {
            int c = w.Size;
            if (bug == Bug.OverwritesGradient) w.Gradient.Clear();
            for (int i = 0; i < x.Length; i++)
            {
                float dz = bug == Bug.MissingActivationDerivative ? dy.Data[i] : dy.Data[i] * (1 - y.Data[i] * y.Data[i]);
                w.Gradient.Data[i % c] += dz * x.Data[i];
                if (bug != Bug.MissingTerm || i < x.Length - c) b.Gradient.Data[i % c] += dz;
                if (dx is null) continue;
                float weight = w.Value.Data[bug == Bug.WrongIndex ? (i + 1) % c : i % c];
                dx.Data[i] = dz * weight * (bug == Bug.DropsHalfOfTheGradient ? 0.5f : 1f);
            }
        }
    }

    [Theory]
    [InlineData(Bug.WrongIndex)]
    [InlineData(Bug.MissingActivationDerivative)]
    [InlineData(Bug.MissingTerm)]
    [InlineData(Bug.OverwritesGradient)]
    [InlineData(Bug.DropsHalfOfTheGradient)]
    public void Gradient_check_rejects_a_layer_with_a_backward_bug(Bug bug)
    {
        var layer = new ScaleLayer(bug);
        layer.Build(new Shape(2, 3), new Rng(1));
        var x = GradientCheck.Uniform(new Rng(2), -1, 1, 3, 2, 3);

        var report = GradientCheck.Measure(layer, x);

        Assert.False(report.Passed, $"the check accepted a layer with bug {bug}: {report}");
        // Not by a hair: the worst error is far above the tolerance.
        Assert.True(report.WorstError > 10 * GradientCheck.Tolerance, report.ToString());
    }

    [Fact]
    public void Gradient_check_accepts_the_same_layer_without_the_bug()
    {
        var layer = new ScaleLayer(Bug.None);
        layer.Build(new Shape(2, 3), new Rng(1));
        var x = GradientCheck.Uniform(new Rng(2), -1, 1, 3, 2, 3);

        var report = GradientCheck.Measure(layer, x);

        Assert.True(report.Passed, report.ToString());
        Assert.Equal(3 * 2 * 3 + 3 + 3, report.Checked);
    }
}
