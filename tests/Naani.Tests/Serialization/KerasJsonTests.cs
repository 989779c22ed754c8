using System.Text.Json.Nodes;
using Naani.Initializers;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Serialization;

namespace Naani.Tests.Serialization;

/// Architectures in Keras's JSON (model.to_json()): Keras 3 and Keras 2 (tf.keras) layouts, Sequential and
/// Functional, read into Naani models; Naani's models written as Keras 3 JSON and read back; what Naani lacks refused.
/// The fixtures are written from the format (Keras's serialization of layers, initializers and inbound nodes), with
/// every key Keras 2.13 and Keras 3 write for these layers, including those Naani ignores (dtype policies, build_config).
public sealed class KerasJsonTests
{
    static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Serialization", "Fixtures", name));

    [Fact]
    public void A_Keras_3_Sequential_reads_with_its_layers_shapes_and_initializers()
    {
        var model = Model.FromKerasJson(Fixture("keras3-sequential.json"), seed: 1);
        Assert.IsType<Sequential>(model);
        Assert.Equal("fashion_cnn", model.Name);
        Assert.Equal(new Shape(28, 28, 1), model.InputShape);
        Assert.Equal(new Shape(10), model.OutputShape);
        var conv = Assert.IsType<Conv2D>(model.GetLayer("conv2d"));
        Assert.Equal(8, conv.Filters);
        Assert.Equal(Padding.Same, conv.Padding);
        Assert.Equal(Activation.Relu, conv.Activation);
        Assert.Same(Initializer.HeNormal, conv.KernelInitializer);
        Assert.IsType<BatchNormalization>(model.GetLayer("batch_normalization"));
        Assert.Equal(0.25, Assert.IsType<Dropout>(model.GetLayer("dropout")).Rate);
        Assert.Equal(Activation.Softmax, Assert.IsType<Dense>(model.GetLayer("predictions")).Activation);
        // conv 8*9+8, BN 4*8, dense 1568*32+32, dense 32*10+10
        Assert.Equal(80 + 32 + 50208 + 330, model.ParameterCount);
    }

    [Fact]
    public void A_Keras_2_Functional_with_Concatenate_Add_and_ReLU_reads_as_a_graph()
    {
        var model = Model.FromKerasJson(Fixture("keras2-functional.json"), seed: 1);
        var graph = Assert.IsType<Functional>(model);
        Assert.Equal(new Shape(16, 16, 3), model.InputShape);
        Assert.Equal(new Shape(5), model.OutputShape);
        Assert.Equal(new Shape(16, 16, 16), graph.Nodes.Single(n => n.Layer.Name == "mixed").Shape);   // 4 + 4 + 8 channels
        Assert.IsType<Concatenate>(model.GetLayer("mixed"));
        Assert.IsType<Add>(model.GetLayer("residual"));
        Assert.Equal(Activation.Relu, Assert.IsType<ActivationLayer>(model.GetLayer("branch_3x3_relu")).Activation);
        var branch = Assert.IsType<Conv2D>(model.GetLayer("branch_3x3"));
        Assert.False(branch.UseBias);
        Assert.Equal((3, 3), branch.KernelSize);
        var stem = Assert.IsType<Conv2D>(model.GetLayer("stem"));
        var scaling = Assert.IsType<Initializer.VarianceScaling>(stem.KernelInitializer);
        Assert.Equal((2.0, "fan_in", "truncated_normal"), (scaling.Scale, scaling.Mode, scaling.Distribution));
        var pooling = Assert.IsType<MaxPooling2D>(model.GetLayer("branch_pool"));
        Assert.Equal((1, 1), pooling.Strides);
        // It trains: one step lowers nothing to NaN, and the prediction is a distribution.
        model.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
        var x = new Tensor(4, 16, 16, 3);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (i % 7) / 7f;
        var (loss, _) = model.TrainStep(x, Tensor.FromArray([0, 1, 2, 3], 4));
        Assert.True(double.IsFinite(loss));
        Assert.Equal(1, model.Predict(x).Data.Take(5).Sum(), 4);
    }

    [Fact]
    public void Keras_3_inbound_nodes_read_as_Keras_2_lists_do()
    {
        var keras2 = Model.FromKerasJson(Fixture("keras2-functional.json"), seed: 3);
        // The same graph as Keras 3 writes it: Naani's writer uses Keras 3's {"args": [...], "kwargs": {}} nodes.
        string keras3 = keras2.ToKerasJson();
        Assert.Contains("__keras_tensor__", keras3);
        var again = Model.FromKerasJson(keras3, seed: 3);
        Assert.Equal(keras2.Summary(), again.Summary());
    }

    /// Sequential and Functional models of every layer type Naani has: written as Keras JSON, read back, same
    /// architecture; with the weights copied over, the same predictions to the bit.
    [Fact]
    public void Naani_models_round_trip_through_Keras_JSON_with_identical_predictions()
    {
        var input = Input.Create(12, 12, 3);
        var a = new Conv2D(6, (3, 3), padding: Padding.Same, activation: Activation.Relu, kernelInitializer: new Initializer.RandomNormal(0, 0.1)).Call(input);
        a = new BatchNormalization().Call(a);
        var b = new ZeroPadding2D(((1, 0), (0, 1))).Call(input);
        b = new Conv2D(6, (2, 2), activation: Activation.Tanh, kernelInitializer: Initializer.LecunUniform).Call(b);
        b = new GroupNormalization(groups: 3).Call(b);
        var c = new AveragePooling2D((3, 3), strides: (1, 1), padding: Padding.Same).Call(input);
        c = new Conv2D(6, 1).Call(c);
        c = new InstanceNormalization().Call(c);
        var merged = new Concatenate().Call(a, b, c);
        var sum = new Add().Call(a, new ActivationLayer(Activation.Sigmoid).Call(b));
        var top = new MaxPooling2D(2).Call(new Concatenate().Call(merged, sum));
        var flat = new Flatten().Call(new LayerNormalization().Call(top));
        var dense = new Dense(7, Activation.Relu, kernelInitializer: Initializer.GlorotNormal).Call(new Dropout(0.3).Call(flat));
        var g = new GlobalMaxPooling2D().Call(top);
        var output = new Dense(3, Activation.Softmax).Call(new Concatenate().Call(dense, g));
        var functional = new Functional(input, output, "everything", seed: 5);
        var sequential = Architectures.MnistBaseline(seed: 5);

        var x = new Tensor(3, 12, 12, 3);
        var rng = new Rng(9);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat();
        var xs = new Tensor(3, 28, 28, 1);
        for (int i = 0; i < xs.Length; i++) xs.Data[i] = rng.NextFloat();
        foreach (var (model, data) in new (Model, Tensor)[] { (functional, x), (sequential, xs) })
        {
            string json = model.ToKerasJson();
            var back = Model.FromKerasJson(json, seed: 99);
            Assert.Equal(model.GetType(), back.GetType());
            Assert.Equal(model.Summary(), back.Summary());
            Assert.Equal(model.Layers.Select(l => l.GetConfig().ToJsonString()), back.Layers.Select(l => l.GetConfig().ToJsonString()));
            back.SetWeights(model.GetWeights());
            Assert.Equal(model.Predict(data).Data, back.Predict(data).Data);
            // And what Keras 3 needs to read it: the module and class of every layer, Keras's keys at Naani's values.
            var root = JsonNode.Parse(json)!;
            Assert.Equal("keras", root["module"]!.GetValue<string>());
            foreach (var layer in root["config"]!["layers"]!.AsArray())
            {
                Assert.Equal("keras.layers", layer!["module"]!.GetValue<string>());
                if (layer["class_name"]!.GetValue<string>() == "Conv2D")
                {
                    Assert.Equal("channels_last", layer["config"]!["data_format"]!.GetValue<string>());
                    Assert.Equal("keras.initializers", layer["config"]!["kernel_initializer"]!["module"]!.GetValue<string>());
                }
            }
        }
    }

    static InvalidDataException Refused(string json) => Assert.Throws<InvalidDataException>(() => Model.FromKerasJson(json));

    // The Keras 3 fixture with one layer's config changed.
    static string WithConv(string key, JsonNode? value)
    {
        var root = JsonNode.Parse(Fixture("keras3-sequential.json"))!;
        root["config"]!["layers"]![1]!["config"]![key] = value;
        return root.ToJsonString();
    }

    [Fact]
    public void An_architecture_asking_for_absurd_weights_is_refused_before_they_are_allocated()
    {
        var root = JsonNode.Parse(Fixture("keras3-sequential.json"))!;
        root["config"]!["layers"]![5]!["config"]!["units"] = 2_000_000_000;   // dense: 1568 x 2e9 weights
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Refused(root.ToJsonString());
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20);
        Assert.Contains("more weights than the 1,073,741,824 allowed", e.Message);
        Assert.Contains("dense", e.Message);
    }

    [Fact]
    public void What_Naani_lacks_is_refused_naming_the_layer_and_the_option()
    {
        var e = Refused(WithConv("kernel_regularizer", JsonNode.Parse("""{"class_name": "L2", "config": {"l2": 0.01}}""")));
        Assert.Contains("layer 'conv2d' (Conv2D)", e.Message);
        Assert.Contains("kernel_regularizer", e.Message);
        Assert.Contains("regularizers", e.Message);
        Assert.Contains("dilation", Refused(WithConv("dilation_rate", new JsonArray(2, 2))).Message);
        Assert.Contains("channels_last", Refused(WithConv("data_format", "channels_first")).Message);
        Assert.Contains("grouped", Refused(WithConv("groups", 2)).Message);
        var gelu = Refused(WithConv("activation", "gelu"));
        Assert.Contains("conv2d", gelu.Message);
        Assert.Contains("gelu", gelu.Message);

        var root = JsonNode.Parse(Fixture("keras3-sequential.json"))!;
        root["config"]!["layers"]![2]!["class_name"] = "LSTM";
        var lstm = Refused(root.ToJsonString());
        Assert.Contains("Naani has no LSTM layer", lstm.Message);
        Assert.Contains("Conv2D", lstm.Message);   // and says what is supported
    }

    [Fact]
    public void A_layer_with_two_inbound_nodes_is_one_shared_layer_and_an_input_of_unknown_size_is_refused()
    {
        // The 1x1 branch called a second time, on the pooled branch (8 channels, as the stem's output): a shared layer,
        // whose second call's output the model also returns.
        var root = JsonNode.Parse(Fixture("keras2-functional.json"))!;
        var branch = root["config"]!["layers"]![2]!;
        branch["inbound_nodes"]!.AsArray().Add(JsonNode.Parse("""[["branch_pool", 0, 0, {}]]"""));
        root["config"]!["output_layers"]!.AsArray().Add(JsonNode.Parse("""["branch_1x1", 1, 0]"""));
        var shared = Assert.IsType<Functional>(Model.FromKerasJson(root.ToJsonString(), seed: 1));
        Assert.Single(shared.Layers, l => l.Name == "branch_1x1");
        Assert.Equal(2, shared.Outputs.Count);
        Assert.Equal(new Shape(16, 16, 4), shared.Outputs[1].Shape);
        Assert.Same(shared.GetLayer("branch_1x1"), shared.Outputs[1].Layer.SharedFrom);

        var sized = JsonNode.Parse(Fixture("keras3-sequential.json"))!;
        sized["config"]!["layers"]![0]!["config"]!["batch_shape"] = JsonNode.Parse("[null, null, null, 3]");
        Assert.Contains("every axis but the batch", Refused(sized.ToJsonString()).Message);
        Assert.Contains("not JSON", Refused("{ this is not json").Message);
        Assert.Contains("class_name", Refused("""{"config": {}}""").Message);
    }

    [Fact]
    public void Keras_2_Sequential_without_an_InputLayer_takes_its_shape_from_the_first_layer()
    {
        const string json = """
            {"class_name": "Sequential", "config": {"name": "small", "layers": [
              {"class_name": "ZeroPadding2D", "config": {"name": "pad", "trainable": true, "batch_input_shape": [null, 8, 8, 1], "dtype": "float32", "padding": 1, "data_format": "channels_last"}},
              {"class_name": "AveragePooling2D", "config": {"name": "avg", "trainable": true, "pool_size": [2, 2], "padding": "valid", "strides": null, "data_format": "channels_last"}},
              {"class_name": "Conv2D", "config": {"name": "c", "trainable": false, "filters": 2, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "activation": "sigmoid",
                "use_bias": true, "kernel_initializer": {"class_name": "TruncatedNormal", "config": {"mean": 0.0, "stddev": 0.1, "seed": null}},
                "bias_initializer": {"class_name": "Constant", "config": {"value": 0.5}}}},
              {"class_name": "LayerNormalization", "config": {"name": "ln", "axis": [3], "epsilon": 0.001, "center": true, "scale": true}},
              {"class_name": "GroupNormalization", "config": {"name": "in", "groups": -1, "axis": -1, "epsilon": 0.001, "center": true, "scale": true}},
              {"class_name": "GlobalAveragePooling2D", "config": {"name": "gap", "data_format": "channels_last"}},
              {"class_name": "Dense", "config": {"name": "out", "units": 1, "activation": null}},
              {"class_name": "Activation", "config": {"name": "prob", "activation": "sigmoid"}}]},
             "keras_version": "2.4.0", "backend": "tensorflow"}
            """;
        var model = Model.FromKerasJson(json, seed: 2);
        Assert.Equal(new Shape(8, 8, 1), model.InputShape);
        Assert.Equal(new Shape(10, 10, 1), model.GetLayer("pad").OutputShape);
        Assert.Equal(new Shape(5, 5, 1), model.GetLayer("avg").OutputShape);   // strides null: the pool size
        Assert.False(model.GetLayer("c").Trainable);
        Assert.IsType<InstanceNormalization>(model.GetLayer("in"));   // Keras's GroupNormalization(groups=-1)
        var bias = model.GetLayer("c").Parameters.Single(p => p.Name == "bias").Value.Data;
        Assert.All(bias, v => Assert.Equal(0.5f, v));
        Assert.Equal(Activation.Linear, Assert.IsType<Dense>(model.GetLayer("out")).Activation);
        Assert.Equal(new Shape(1), model.OutputShape);
    }

    [Theory]
    [InlineData("""{"class_name": "RandomUniform", "config": {"minval": -0.2, "maxval": 0.1, "seed": null}}""", -0.2, 0.1)]
    [InlineData("""{"class_name": "Constant", "config": {"value": 0.25}}""", 0.25, 0.25)]
    [InlineData("\"he_uniform\"", -0.7746, 0.7746)]   // sqrt(6 / fan_in), fan_in 10
    public void Initializers_with_parameters_fill_within_their_bounds_and_survive_a_save(string config, double low, double high)
    {
        var initializer = Initializer.FromConfig(JsonNode.Parse(config));
        var values = new float[2000];
        initializer.Fill(values, new Shape(10, 200), new Rng(4));
        Assert.All(values, v => Assert.InRange(v, low - 1e-6, high + 1e-6));
        // The .naani file keeps it (an object where it has parameters) and reads the same initializer back.
        var again = Initializer.FromConfig(JsonNode.Parse(initializer.ToConfig().ToJsonString()));
        var other = new float[2000];
        again.Fill(other, new Shape(10, 200), new Rng(4));
        Assert.Equal(values, other);
    }
}
