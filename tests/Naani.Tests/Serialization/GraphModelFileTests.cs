using System.Buffers.Binary;
using System.Text.Json.Nodes;
using Naani.Kernels;
using Naani.Layers;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Naani.Serialization;
using Xunit;
using static Naani.Tests.Serialization.SerializationTestData;

namespace Naani.Tests.Serialization;

/// Format version 2: graph models (layers with their inbound layers, inputs, outputs) and one loss per
/// output with loss weights; version 1 is still written for what it can hold, and read.
public sealed class GraphModelFileTests : IDisposable
{
    readonly TempDirectory directory = new();

    public void Dispose() => directory.Dispose();

    /// A residual fork, an Inception-style Concatenate and two outputs, one frozen layer.
    static Functional Branched(int seed = 3, double dropout = 0.2)
    {
        var inputs = Input.Create(new Shape(8, 8, 2), "image");
        var stem = new Conv2D(4, 3, padding: Padding.Same, activation: Activation.Relu, name: "stem").Call(inputs);
        var a = new Conv2D(4, 1, name: "a").Call(stem);
        var sum = new ActivationLayer(Activation.Relu, "relu").Call(new Add(name: "residual").Call(a, stem));
        var b = new Conv2D(2, 3, padding: Padding.Same, activation: Activation.Tanh, name: "b").Call(sum);
        var c = new MaxPooling2D(3, strides: 1, padding: Padding.Same, name: "pool").Call(sum);
        var joined = new Concatenate(name: "joined").Call(b, c);
        var main = new Dense(3, Activation.Softmax, name: "main").Call(new Flatten(name: "flatten").Call(new MaxPooling2D(2).Call(joined)));
        var aux = new Dense(3, Activation.Softmax, name: "aux").Call(new Dropout(dropout, "aux_dropout").Call(new Flatten(name: "aux_flatten").Call(stem)));
        var model = new Functional(inputs, [main, aux], "branched", seed);
        model.GetLayer("a").Trainable = false;
        model.ClassNames = ["x", "y", "z"];
        return model;
    }

    [Fact]
    public void A_branched_model_with_two_outputs_round_trips_and_keeps_training_identically()
    {
        // No dropout: a loaded model starts its dropout stream afresh (docs/FORMAT.md), and the last step must match.
        var model = Branched(dropout: 0);
        model.Compile(new Adam(0.01), [new CategoricalCrossEntropy(), new MeanSquaredError()], [1, 0.3], "accuracy");
        TrainSteps(model, 2);
        string path = directory.File("branched.naani");

        model.Save(path);
        var loaded = Assert.IsType<Functional>(Model.Load(path));

        Assert.Equal("branched", loaded.Name);
        Assert.Equal(model.Layers.Select(l => $"{l.Name} {l.TypeName} {l.Trainable}"), loaded.Layers.Select(l => $"{l.Name} {l.TypeName} {l.Trainable}"));
        Assert.Equal(model.Summary(), loaded.Summary());
        Assert.Equal(["main", "aux"], loaded.OutputNames);
        Assert.Equal(["categorical_crossentropy", "mean_squared_error"], loaded.Losses.Select(l => l.Name));
        Assert.Equal([1, 0.3], loaded.LossWeights);
        Assert.Equal(["x", "y", "z"], loaded.ClassNames);
        Assert.Equal(model.Optimizer!.Iterations, loaded.Optimizer!.Iterations);
        AssertSameWeights(model, loaded);
        var (x, _) = Batch(model, 5, seed: 7);
        var expected = model.PredictOutputs([x]);
        var actual = loaded.PredictOutputs([x]);
        for (int k = 0; k < 2; k++) AssertBitIdentical(expected[k].Data, actual[k].Data, $"output {k}");

        // The optimizer's state came along: one more identical step on both gives identical weights.
        TrainSteps(model, 1, seed: 50);
        TrainSteps(loaded, 1, seed: 50);
        AssertSameWeights(model, loaded);
    }

    [Fact]
    public void A_graph_is_stored_as_layers_with_their_inbound_layers_inputs_and_outputs_in_version_2()
    {
        var model = Branched();
        model.Compile(new Adam(), new CategoricalCrossEntropy(), lossWeights: [1, 0.3]);
        string path = directory.File("graph.naani");
        model.Save(path);

        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(File.ReadAllBytes(path).AsSpan(8)));
        var header = ReadHeader(path);
        Assert.Equal(2, (int)header["format_version"]!);
        Assert.Equal("Functional", (string)header["model_class"]!);
        Assert.Equal(["image"], header["inputs"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(["main", "aux"], header["outputs"]!.AsArray().Select(n => (string)n!));
        var layers = header["layers"]!.AsArray().ToDictionary(l => (string)l!["name"]!, l => l!.AsObject());
        Assert.Equal("InputLayer", (string)layers["image"]["type"]!);
        Assert.Empty(layers["image"]["inbound"]!.AsArray());
        Assert.Equal(["a", "stem"], layers["residual"]["inbound"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(["b", "pool"], layers["joined"]["inbound"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(-1, (int)layers["joined"]["config"]!["axis"]!);
        Assert.False(header.ContainsKey("input_shape"));
        var compile = header["compile"]!.AsObject();
        Assert.Equal([1, 0.3], compile["loss_weights"]!.AsArray().Select(w => (double)w!));
        Assert.Equal(2, compile["losses"]!.AsArray().Count);
    }

    [Fact]
    public void A_Sequential_with_one_loss_is_still_written_as_version_1_and_with_a_loss_weight_as_version_2()
    {
        var model = EveryLayerModel();
        model.Compile(new Adam(), new CategoricalCrossEntropy());
        string v1 = directory.File("v1.naani");
        model.Save(v1);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(File.ReadAllBytes(v1).AsSpan(8)));
        Assert.Equal("categorical_crossentropy", (string)ReadHeader(v1)["compile"]!["loss"]!["name"]!);

        model.Compile(new Adam(), new CategoricalCrossEntropy(), lossWeights: [0.5]);
        string v2 = directory.File("v2.naani");
        model.Save(v2);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(File.ReadAllBytes(v2).AsSpan(8)));
        var loaded = Assert.IsType<Sequential>(Model.Load(v2));
        Assert.Equal([0.5], loaded.LossWeights);
    }

    [Fact]
    public void Googlenet_mini_round_trips_with_its_auxiliary_loss_weights()
    {
        var model = Architectures.GoogLeNetMini(seed: 1);
        model.Compile(new Adam(), new SparseCategoricalCrossEntropy(), Architectures.GoogLeNetLossWeights, "accuracy");
        string path = directory.File("googlenet.naani");
        model.Save(path);

        var loaded = Model.Load(path);

        Assert.Equal(180_678, loaded.ParameterCount);
        Assert.Equal([1, 0.3, 0.3], loaded.LossWeights);
        Assert.Equal(["predictions", "aux1", "aux2"], loaded.OutputNames);
        var x = Uniform(new Rng(2), 3, 28, 28, 1);
        AssertBitIdentical(model.Predict(x).Data, loaded.Predict(x).Data, "predictions");
    }

    string SavedGraph()
    {
        var model = Branched();
        model.Compile(new Adam(), new CategoricalCrossEntropy());
        string path = directory.File("edited.naani");
        model.Save(path);
        return path;
    }

    static JsonObject Layer(JsonObject header, string name) =>
        header["layers"]!.AsArray().Single(l => (string)l!["name"]! == name)!.AsObject();

    [Fact]
    public void An_inbound_layer_that_is_not_listed_before_is_named_in_the_error()
    {
        string path = SavedGraph();
        RewriteHeader(path, header => Layer(header, "joined")["inbound"] = new JsonArray("b", "nowhere"));
        var e = Assert.Throws<InvalidDataException>(() => Model.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("'joined' reads 'nowhere'", e.Message);
    }

    [Fact]
    public void An_unknown_output_and_a_wrong_arity_are_refused_with_the_file_named()
    {
        string path = SavedGraph();
        RewriteHeader(path, header => header["outputs"] = new JsonArray("main", "missing"));
        var e = Assert.Throws<InvalidDataException>(() => Model.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("'missing'", e.Message);

        path = SavedGraph();
        RewriteHeader(path, header => Layer(header, "b")["inbound"] = new JsonArray("relu", "stem"));
        e = Assert.Throws<InvalidDataException>(() => Model.Load(path));
        Assert.Contains("'b'", e.Message);
        Assert.Contains("2 inbound", e.Message);
    }

    [Fact]
    public void A_Functional_header_in_a_version_1_file_is_refused()
    {
        string path = SavedGraph();
        var bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 1);
        FixTrailer(bytes);
        File.WriteAllBytes(path, bytes);
        RewriteHeader(path, header => header["format_version"] = 1);
        var e = Assert.Throws<InvalidDataException>(() => Model.Load(path));
        Assert.Contains("format version 1 stores only Sequential models", e.Message);
    }

    [Fact]
    public void A_model_class_the_file_cannot_hold_is_refused_at_save_time()
    {
        var e = Assert.Throws<NotSupportedException>(() => new Custom().Save(directory.File("custom.naani")));
        Assert.Contains("only Sequential models and Functional graphs", e.Message);
        Assert.Empty(Directory.GetFiles(directory.Path));
    }

    sealed class Custom() : Model("custom", 1)
    {
        public override IReadOnlyList<Layer> Layers => [];
        public override Shape InputShape => new(1);
        public override Shape OutputShape => new(1);
        public override void Build() { }
        protected internal override Tensor ForwardBatch(Tensor x, bool training) => x;
        protected internal override void BackwardBatch(Tensor outputGradient) { }
    }
}
