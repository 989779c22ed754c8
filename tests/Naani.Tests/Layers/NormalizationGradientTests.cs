using Naani.Layers;
using Xunit;
using Xunit.Abstractions;

namespace Naani.Tests.Layers;

/// Central-difference checks of every normalization layer, in both modes where they differ.
public sealed class NormalizationGradientTests(ITestOutputHelper output)
{
    // (batch, height, width, channels)
    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 2, 3, 3, 4 },
        { 3, 2, 5, 3 },
        { 2, 4, 4, 17 },   // a SIMD run of channels plus a scalar tail
        { 1, 3, 4, 2 },    // batch of one: batch statistics over one image's pixels
    };

    static Tensor Input(int seed, int n, int h, int w, int c) => GradientCheck.Uniform(new Rng((ulong)seed), -2, 2, n, h, w, c);

    /// Random gamma and beta (and moving statistics for batch normalization), so no gradient term hides behind a 1 or a 0.
    static void Randomize(Layer layer, int seed)
    {
        var rng = new Rng((ulong)seed);
        foreach (var p in layer.Parameters)
        {
            (float low, float high) = p.Name switch
            {
                "gamma" => (0.5f, 1.5f),
                "moving_variance" => (0.5f, 2f),
                _ => (-0.5f, 0.5f),
            };
            for (int i = 0; i < p.Size; i++) p.Value.Data[i] = rng.Uniform(low, high);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    [InlineData(4, 8, 8, 3)]   // 256 rows: the statistics are summed in parts, one per thread
    public void BatchNormalization_training_gradients_match_central_differences(int n, int h, int w, int c)
    {
        var layer = new BatchNormalization();
        layer.Build(new Shape(h, w, c), new Rng(1));
        Randomize(layer, 2);

        // The moving statistics are checked too: a training output does not depend on them (numeric 0, analytic 0).
        var report = GradientCheck.AssertLayer(layer, Input(3, n, h, w, c));

        output.WriteLine(report.ToString());
        Assert.True(layer.LastForwardUsedBatchStatistics);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BatchNormalization_inference_gradients_match_central_differences(int n, int h, int w, int c)
    {
        var layer = new BatchNormalization();
        layer.Build(new Shape(h, w, c), new Rng(1));
        Randomize(layer, 4);

        var worst = AssertInferenceGradients(layer, Input(5, n, h, w, c), training: false);

        output.WriteLine($"worst error {worst:E2}");
    }

    [Fact]
    public void Frozen_BatchNormalization_differentiates_its_inference_mode_even_when_training()
    {
        var layer = new BatchNormalization { Trainable = false };
        layer.Build(new Shape(3, 3, 4), new Rng(1));
        Randomize(layer, 6);

        AssertInferenceGradients(layer, Input(7, 2, 3, 3, 4), training: true);

        Assert.False(layer.LastForwardUsedBatchStatistics);
    }

    [Fact]
    public void BatchNormalization_without_center_and_scale_and_after_a_dense_layer_matches_central_differences()
    {
        var layer = new BatchNormalization(center: false, scale: false);
        layer.Build(new Shape(6), new Rng(1));
        Assert.Equal(["moving_mean", "moving_variance"], layer.Parameters.Select(p => p.Name));

        GradientCheck.AssertLayer(layer, GradientCheck.Uniform(new Rng(8), -1, 1, 5, 6));
    }

    [Theory]
    [InlineData(2, 3, 3, 4)]
    [InlineData(3, 2, 5, 6)]
    [InlineData(2, 4, 4, 17)]
    [InlineData(1, 3, 4, 5)]
    public void LayerNormalization_over_the_last_axis_matches_central_differences(int n, int h, int w, int c)
    {
        var layer = new LayerNormalization();
        layer.Build(new Shape(h, w, c), new Rng(1));
        Randomize(layer, 9);
        // Each pixel's few channels are normalized on their own. Random values could be nearly equal by chance, and a
        // variance near 0 curves the output so sharply that central differences at h = 1e-2 miss by more than the
        // tolerance. So each pixel gets its channels' values evenly spaced (in random order, with a little jitter) and
        // scaled to variance 1: the check then measures the gradient, not the curvature. (With two channels the output
        // is +-1 whatever the input, and its gradient is too small to measure above float32 noise.)
        var rng = new Rng(10);
        var x = new Tensor(n, h, w, c);
        double spacing = 1 / Math.Sqrt((c * c - 1) / 12.0);
        var order = Enumerable.Range(0, c).ToArray();
        for (int r = 0; r < x.Length / c; r++)
        {
            rng.Shuffle(order);
            for (int i = 0; i < c; i++)
                x.Data[r * c + i] = (float)((order[i] - (c - 1) / 2.0 + rng.Uniform(-0.1f, 0.1f)) * spacing);
        }

        output.WriteLine(GradientCheck.AssertLayer(layer, x).ToString());
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void LayerNormalization_over_the_whole_sample_matches_central_differences(int n, int h, int w, int c)
    {
        var layer = new LayerNormalization([1, 2, 3]);
        layer.Build(new Shape(h, w, c), new Rng(1));
        Assert.Equal(new Shape(h, w, c), layer.Gamma!.Shape);
        Randomize(layer, 11);

        output.WriteLine(GradientCheck.AssertLayer(layer, Input(12, n, h, w, c)).ToString());
    }

    [Fact]
    public void LayerNormalization_over_the_last_two_axes_without_scale_matches_central_differences()
    {
        var layer = new LayerNormalization([-2, -1], scale: false);
        layer.Build(new Shape(3, 4, 5), new Rng(1));
        Assert.Equal(new Shape(4, 5), layer.Beta!.Shape);
        Randomize(layer, 13);

        GradientCheck.AssertLayer(layer, Input(14, 2, 3, 4, 5));
    }

    [Theory]
    [InlineData(1, 6)]
    [InlineData(2, 6)]
    [InlineData(3, 6)]
    [InlineData(4, 20)]   // groups of 5 channels, 20 channels: SIMD plus a tail
    public void GroupNormalization_matches_central_differences(int groups, int channels)
    {
        var layer = new GroupNormalization(groups);
        layer.Build(new Shape(3, 4, channels), new Rng(1));
        Randomize(layer, 15);

        output.WriteLine(GradientCheck.AssertLayer(layer, Input(16, 2, 3, 4, channels)).ToString());
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void InstanceNormalization_matches_central_differences(int n, int h, int w, int c)
    {
        var layer = new InstanceNormalization();
        layer.Build(new Shape(h, w, c), new Rng(1));
        Assert.Equal(c, layer.GroupCount);
        Randomize(layer, 17);

        output.WriteLine(GradientCheck.AssertLayer(layer, Input(18, n, h, w, c)).ToString());
    }

    /// The check for a layer whose output depends on non-trainable weights (batch normalization in inference mode):
    /// dx, dgamma and dbeta against central differences of L = sum y * r with forward(training) every time; the
    /// moving statistics get no gradient by design and are left out.
    static double AssertInferenceGradients(BatchNormalization layer, Tensor x, bool training)
    {
        var y = new Tensor(layer.OutputShape.WithBatch(x.Batch));
        var rng = new Rng(99);
        var r = new float[y.Length];
        for (int i = 0; i < r.Length; i++) r[i] = rng.Uniform(-1f, 1f);
        var movingBefore = layer.MovingMean.Value.Data.Concat(layer.MovingVariance.Value.Data).ToArray();

        layer.Forward(x, y, training);
        const float preset = 0.25f;
        foreach (var p in layer.Parameters) p.Gradient.Fill(preset);
        var dx = new Tensor(x.Shape);
        dx.Fill(float.NaN);
        layer.Backward(x, y, new Tensor(y.Shape, (float[])r.Clone()), dx);

        double Objective()
        {
            layer.Forward(x, y, training);
            double sum = 0;
            for (int i = 0; i < r.Length; i++) sum += (double)y.Data[i] * r[i];
            return sum;
        }

        double worst = GradientCheck.AssertMatches("dx", dx.Data, GradientCheck.Numeric(x.Data, Objective));
        foreach (var p in new[] { layer.Gamma!, layer.Beta! })
        {
            var analytic = p.Gradient.Data.Select(g => g - preset).ToArray();
            worst = Math.Max(worst, GradientCheck.AssertMatches("d" + p.Name, analytic, GradientCheck.Numeric(p.Value.Data, Objective)));
        }
        Assert.All(new[] { layer.MovingMean, layer.MovingVariance }, p => Assert.All(p.Gradient.Data, g => Assert.Equal(preset, g)));
        // Inference never moves the averages.
        Assert.Equal(movingBefore, layer.MovingMean.Value.Data.Concat(layer.MovingVariance.Value.Data));
        return worst;
    }
}
