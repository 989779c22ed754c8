using Naani.Layers;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Naani.Tests.Layers;
using Xunit;
using Xunit.Abstractions;

namespace Naani.Tests.Models;

public sealed class ModelGradientTests(ITestOutputHelper output)
{
    // Step 1e-2: the loss is a float32 forward pass through every layer, so unlike a single layer's
    // check little rounding cancels: its noise is ~1e-7 of L ~ 1, i.e. ~1e-5 in the quotient, against
    // gradients of 1e-2..1e-1. The truncation error of tanh/softmax/log at this step is of the same
    // order. Both stay below a fifth of the 2e-3 tolerance, while a wrong gradient anywhere in the
    // chain (a layer, the fused loss, the fused flag) is off by a whole term.
    const double Step = 1e-2;

    [Theory]
    [InlineData("softmax", "categorical_crossentropy", true)]
    [InlineData("sigmoid", "binary_crossentropy", true)]
    [InlineData("softmax", "mean_squared_error", false)]
    public void Sequential_parameter_gradients_match_numerical_differentiation_of_the_loss(string head, string lossName, bool expectFused)
    {
        int classes = head == "sigmoid" ? 1 : 4;
        var model = new Sequential("tiny", seed: 7)
            .Add(new Input(6, 6, 2))
            .Add(new Conv2D(3, 3, activation: Activation.Tanh))   // (4, 4, 3)
            .Add(new MaxPooling2D(2))                               // (2, 2, 3)
            .Add(new Flatten())                                     // (12)
            .Add(new Dense(classes, ActivationNames.Parse(head)));
        var loss = Loss.Parse(lossName);
        model.Compile(new SGD(0.1), loss);
        bool fused = model.Layers[^1].GradientIsPreActivation;
        Assert.Equal(expectFused, fused);
        // Seed 53 leaves every pooling window's top two values at least 0.05 apart.
        var x = GradientCheck.Uniform(new Rng(53), -1, 1, 3, 6, 6, 2);
        var rng = new Rng(8);
        var y = new Tensor(3, classes);
        for (int n = 0; n < 3; n++)
        {
            if (classes == 1) y.Data[n] = n % 2;
            else y[n, rng.NextInt(classes)] = 1;
        }
        AssertNoNearTiesInPooling(model, x);

        foreach (var p in model.Parameters) p.Gradient.Clear();
        var prediction = model.ForwardBatch(x, training: true);
        var outputGradient = new Tensor(prediction.Shape);
        loss.Compute(prediction, y, outputGradient, fused);
        model.BackwardBatch(outputGradient);

        double Objective() => loss.Compute(model.ForwardBatch(x, training: false), y, null);
        foreach (var p in model.Parameters)
        {
            var analytic = (float[])p.Gradient.Data.Clone();
            var numeric = GradientCheck.Numeric(p.Value.Data, Objective, Step);
            double worst = GradientCheck.AssertMatches(p.FullName, analytic, numeric);
            output.WriteLine($"{p.FullName}: worst error {worst:E2}");
        }
    }

    /// The check is only meaningful if no step changes which value of a pooling window wins.
    static void AssertNoNearTiesInPooling(Sequential model, Tensor x)
    {
        var conv = model.Layers[0];
        var features = new Tensor(conv.OutputShape.WithBatch(x.Batch));
        conv.Forward(x, features, training: false);
        double smallestGap = double.MaxValue;
        for (int n = 0; n < x.Batch; n++)
            for (int oh = 0; oh < 2; oh++)
                for (int ow = 0; ow < 2; ow++)
                    for (int c = 0; c < 3; c++)
                    {
                        var window = new List<float>();
                        for (int i = 0; i < 2; i++)
                            for (int j = 0; j < 2; j++) window.Add(features[n, 2 * oh + i, 2 * ow + j, c]);
                        window.Sort();
                        smallestGap = Math.Min(smallestGap, window[^1] - window[^2]);
                    }
        // A weight step of h moves each tanh output by at most h * max(|x|, 1) = h, so a gap above 2h is safe.
        Assert.True(smallestGap > 3 * Step, $"pooling windows have a near-tie (gap {smallestGap}); pick another seed");
    }
}
