using System.Text.Json.Nodes;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Serialization;
using Xunit;

namespace Naani.Tests.Layers;

/// The normalization, global pooling and padding layers save and load like the others.
public sealed class NewLayerSerializationTests : IDisposable
{
    readonly string directory = Path.Combine(Path.GetTempPath(), "naani-new-layers-" + Guid.NewGuid().ToString("N"));

    public NewLayerSerializationTests() => Directory.CreateDirectory(directory);

    public void Dispose() => Directory.Delete(directory, recursive: true);

    static Sequential Model() =>
        new Sequential("normalized", seed: 5)
            .Add(new Input(10, 10, 3))
            .Add(new ZeroPadding2D(((1, 2), (0, 3))))
            .Add(new Conv2D(8, 3))
            .Add(new BatchNormalization(momentum: 0.9, epsilon: 1e-5, name: "bn"))
            .Add(new ActivationLayer(Activation.Relu))
            .Add(new GroupNormalization(4, epsilon: 1e-4))
            .Add(new InstanceNormalization(center: false))
            .Add(new LayerNormalization([1, 2, 3]))
            .Add(new LayerNormalization(scale: false))
            .Add(new ZeroPadding2D(1))
            .Add(new GlobalMaxPooling2D(keepDims: true))
            .Add(new GlobalAveragePooling2D())
            .Add(new Dense(3, Activation.Softmax));

    [Fact]
    public void A_model_with_every_new_layer_round_trips_with_identical_predictions_and_moving_statistics()
    {
        var model = Model();
        model.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
        var x = GradientCheck.Uniform(new Rng(6), 0, 1, 6, 10, 10, 3);
        var labels = Tensor.FromArray([0f, 1f, 2f, 0f, 1f, 2f], 6);
        for (int i = 0; i < 3; i++) model.TrainStep(x, labels);
        model.GetLayer("bn").Trainable = false;
        string path = Path.Combine(directory, "normalized.naani");

        model.Save(path);
        var loaded = Naani.Models.Model.Load(path);

        Assert.Equal(model.Predict(x).Data, loaded.Predict(x).Data);
        Assert.Equal(model.Summary(), loaded.Summary());
        Assert.False(loaded.GetLayer("bn").Trainable);
        var bn = (BatchNormalization)loaded.GetLayer("bn");
        Assert.Equal(0.9, bn.Momentum);
        Assert.Equal(1e-5, bn.Epsilon);
        Assert.Equal(((BatchNormalization)model.GetLayer("bn")).MovingVariance.Value.Data, bn.MovingVariance.Value.Data);
        Assert.Equal(model.Layers.Select(l => l.TypeName), loaded.Layers.Select(l => l.TypeName));
        Assert.Equal(model.Layers.Select(l => l.GetConfig().ToJsonString()), loaded.Layers.Select(l => l.GetConfig().ToJsonString()));
    }

    [Fact]
    public void Configs_use_Keras_key_names()
    {
        Assert.Equal(["axis", "momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer"],
            new BatchNormalization().GetConfig().Select(kv => kv.Key));
        Assert.Equal(["groups", "axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer"],
            new GroupNormalization().GetConfig().Select(kv => kv.Key));
        Assert.Equal("[[3,3],[3,3]]", new ZeroPadding2D(3).GetConfig()["padding"]!.ToJsonString());
        Assert.Equal("[-1]", new LayerNormalization().GetConfig()["axis"]!.ToJsonString());
        Assert.Equal(0.99, (double)new BatchNormalization().GetConfig()["momentum"]!);
        Assert.Equal(1e-3, (double)new GroupNormalization().GetConfig()["epsilon"]!);
        Assert.Equal(32, (int)new GroupNormalization().GetConfig()["groups"]!);
    }

    [Fact]
    public void LayerNormalization_reads_an_axis_written_as_one_integer_as_Keras_may()
    {
        var config = new LayerNormalization().GetConfig();
        config["axis"] = -1;

        var layer = (LayerNormalization)LayerFactory.CreateLayer("LayerNormalization", config, "ln", true, "test.naani");

        Assert.Equal([-1], layer.Axes);
    }

    [Fact]
    public void A_bad_padding_config_names_the_key_and_the_layer()
    {
        var config = new JsonObject { ["padding"] = new JsonArray(1, 2), ["data_format"] = "channels_last" };

        var e = Assert.Throws<InvalidDataException>(() => LayerFactory.CreateLayer("ZeroPadding2D", config, "pad", true, "m.naani"));

        Assert.Contains("'padding'", e.Message);
        Assert.Contains("pad", e.Message);
    }

    [Fact]
    public void Invalid_shapes_are_rejected_at_build_with_the_layer_name()
    {
        var groups = new GroupNormalization(4, name: "gn");
        var axes = new LayerNormalization([1, 3], name: "ln");
        var axis = new BatchNormalization(axis: 1, name: "bn");

        Assert.Contains("gn", Assert.Throws<ArgumentException>(() => groups.Build(new Shape(4, 4, 6), new Rng(1))).Message);
        Assert.Contains("ln", Assert.Throws<ArgumentException>(() => axes.Build(new Shape(4, 4, 6), new Rng(1))).Message);
        Assert.Contains("bn", Assert.Throws<ArgumentException>(() => axis.Build(new Shape(4, 4, 6), new Rng(1))).Message);
    }
}
