using System.Text.Json.Nodes;
using Naani.Layers;
using Xunit;

namespace Naani.Tests.Layers;

/// The normalization layers against PyTorch (float64), from Reference/normalization.json, which
/// Reference/make_normalization_reference.py made. Each case: the forward output, and for L = sum(y * dy) the
/// gradients dx, dgamma, dbeta; for batch normalization in training also the moving statistics afterwards.
public sealed class NormalizationReferenceTests
{
    static readonly JsonObject Reference = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Reference", "normalization.json")))!;

    static JsonObject Case(string kind, string name) =>
        Reference[kind]!.AsArray().Select(c => c!.AsObject()).Single(c => (string)c["name"]! == name);

    static float[] Floats(JsonObject c, string key) => [.. c[key]!.AsArray().Select(v => (float)(double)v!)];

    static int[] Dims(JsonObject c) => [.. c["shape"]!.AsArray().Select(v => (int)v!)];

    /// Agreement to float32 rounding: relative to the largest value of the tensor (normalized outputs are O(1)).
    static void AssertClose(string what, float[] expected, ReadOnlySpan<float> actual, double tolerance = 2e-5)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = Math.Max(expected.Max(v => Math.Abs(v)), 1e-6);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(expected[i] - actual[i]) <= tolerance * scale))
                Assert.Fail($"{what}[{i}]: PyTorch {expected[i]:G9}, Naani {actual[i]:G9} (difference {Math.Abs(expected[i] - actual[i]):E2}, allowed {tolerance * scale:E2})");
    }

    /// Sets the weights, runs Forward and Backward, and compares y, dx, dgamma and dbeta.
    static void Run(Layer layer, JsonObject c, bool training)
    {
        var dims = Dims(c);
        layer.Build(new Shape(dims[1..]), new Rng(1));
        foreach (var p in layer.Parameters)
            Floats(c, p.Name).CopyTo(p.Value.Data, 0);
        var x = new Tensor(new Shape(dims), Floats(c, "x"));
        var y = new Tensor(new Shape(dims));
        var dx = new Tensor(new Shape(dims));

        layer.Forward(x, y, training);
        foreach (var p in layer.Parameters) p.Gradient.Clear();
        layer.Backward(x, y, new Tensor(new Shape(dims), Floats(c, "dy")), dx);

        AssertClose("y", Floats(c, "y"), y.Data);
        AssertClose("dx", Floats(c, "dx"), dx.Data);
        AssertClose("dgamma", Floats(c, "dgamma"), layer.Parameters.Single(p => p.Name == "gamma").Gradient.Data);
        AssertClose("dbeta", Floats(c, "dbeta"), layer.Parameters.Single(p => p.Name == "beta").Gradient.Data);
    }

    [Fact]
    public void BatchNormalization_training_matches_PyTorch_with_Keras_moving_averages()
    {
        var c = Case("batch_norm", "batch_norm_training");
        var layer = new BatchNormalization(momentum: (double)c["momentum"]!, epsilon: (double)c["epsilon"]!);

        Run(layer, c, training: true);

        // PyTorch's momentum 0.01 is Keras's 0.99; the mean agrees with PyTorch's running mean ...
        AssertClose("moving_mean", Floats(c, "moving_mean_after"), layer.MovingMean.Value.Data, 1e-6);
        // ... and the variance with Keras's rule (biased batch variance), not PyTorch's running_var (unbiased).
        AssertClose("moving_variance", Floats(c, "moving_variance_after"), layer.MovingVariance.Value.Data, 1e-6);
        var torchVar = Floats(c, "torch_running_var_after");
        Assert.Contains(Enumerable.Range(0, torchVar.Length), i => Math.Abs(torchVar[i] - layer.MovingVariance.Value.Data[i]) > 1e-4);
    }

    [Fact]
    public void BatchNormalization_inference_matches_PyTorch_eval()
    {
        var c = Case("batch_norm", "batch_norm_inference");
        var layer = new BatchNormalization(momentum: (double)c["momentum"]!, epsilon: (double)c["epsilon"]!);

        Run(layer, c, training: false);

        AssertClose("moving_mean (unchanged)", Floats(c, "moving_mean"), layer.MovingMean.Value.Data, 0);
    }

    [Theory]
    [InlineData("layer_norm_last_axis")]
    [InlineData("layer_norm_whole_sample")]
    public void LayerNormalization_matches_PyTorch(string name)
    {
        var c = Case("layer_norm", name);
        int[] axes = [.. c["axes"]!.AsArray().Select(v => (int)v!)];

        Run(new LayerNormalization(axes, epsilon: (double)c["epsilon"]!), c, training: true);
    }

    [Theory]
    [InlineData("group_norm_1_groups")]
    [InlineData("group_norm_2_groups")]
    [InlineData("group_norm_3_groups")]
    public void GroupNormalization_matches_PyTorch(string name)
    {
        var c = Case("group_norm", name);

        Run(new GroupNormalization((int)c["groups"]!, epsilon: (double)c["epsilon"]!), c, training: true);
    }

    [Fact]
    public void InstanceNormalization_matches_PyTorch()
    {
        var c = Case("group_norm", "instance_norm");

        Run(new InstanceNormalization(epsilon: (double)c["epsilon"]!), c, training: false);
    }
}
