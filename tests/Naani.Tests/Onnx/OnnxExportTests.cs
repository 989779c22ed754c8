using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Onnx;
using Xunit;

namespace Naani.Tests.Onnx;

/// Every exported model is loaded by ONNX Runtime (which checks the graph) and run on the same random batch as
/// model.Predict; the two must agree within 1e-4 everywhere. Biases and normalization statistics are randomized
/// so that they count too.
public sealed class OnnxExportTests
{
    const float Tolerance = 1e-4f;

    [Theory]
    [InlineData("mnist-baseline")]
    [InlineData("small-32")]
    [InlineData("naani-128")]
    [InlineData("cats-dogs-150")]
    public void Built_in_architecture_runs_in_OnnxRuntime_like_Predict_at_batch_1_and_3(string name)
    {
        var model = Architectures.Create(name, seed: 0);
        RandomizeBiases(model, seed: 1);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model));

        AssertSameOutputs(model, session, batch: 1, seed: 2);
        AssertSameOutputs(model, session, batch: 3, seed: 3);
    }

    /// Small models that between them use every layer and every option the exporter translates.
    public static TheoryData<string> LayerCases => [.. Cases.Keys];

    static readonly Dictionary<string, Func<Sequential>> Cases = new()
    {
        ["conv same, odd sizes, strides 2 and (2,1), non-square kernels"] = () => Model(new Shape(9, 7, 3),
            new Conv2D(4, (3, 2), (2, 1), Padding.Same, Activation.Relu),
            new Conv2D(5, (2, 3), (2, 2), Padding.Same, Activation.Tanh),
            new Flatten(),
            new Dense(6, Activation.Softmax)),
        ["conv valid with leftover rows, strides (2,3), no bias, 1x1"] = () => Model(new Shape(10, 11, 2),
            new Conv2D(3, (3, 3), (2, 3), Padding.Valid, Activation.Sigmoid),
            new Conv2D(4, (1, 1), null, Padding.Valid, Activation.Linear, useBias: false),
            new Conv2D(2, (2, 1), (1, 1), Padding.Valid, Activation.Softmax),
            new Flatten(),
            new Dense(3, Activation.Linear, useBias: false)),
        ["max pooling same and valid, odd sizes, (3,2) pools with (2,1) strides"] = () => Model(new Shape(11, 8, 3),
            new Conv2D(4, 3, padding: Padding.Same, activation: Activation.Tanh),
            new MaxPooling2D((3, 2), (2, 1), Padding.Same),
            new MaxPooling2D((2, 3), null, Padding.Valid),
            new Flatten(),
            new Dense(4, Activation.Sigmoid)),
        ["average pooling same excludes padding, valid, strides"] = () => Model(new Shape(9, 10, 2),
            new AveragePooling2D((3, 3), (2, 2), Padding.Same),
            new Conv2D(3, 2, activation: Activation.Linear),
            new AveragePooling2D((2, 3), (1, 2), Padding.Valid),
            new AveragePooling2D(2, padding: Padding.Same),
            new Flatten(),
            new Dense(5, Activation.Relu)),
        ["activation layers on images and vectors, dropout"] = () => Model(new Shape(6, 6, 3),
            new Conv2D(4, 3, padding: Padding.Same),
            new ActivationLayer(Activation.Relu),
            new ActivationLayer(Activation.Tanh),
            new Dropout(0.5),
            new ActivationLayer(Activation.Softmax),
            new ActivationLayer(Activation.Sigmoid),
            new ActivationLayer(Activation.Linear),
            new Flatten(),
            new Dense(7),
            new Dropout(0.3),
            new ActivationLayer(Activation.Softmax)),
        ["dense on images (last axis), image output in NHWC"] = () => Model(new Shape(5, 4, 3),
            new Conv2D(6, 2, padding: Padding.Same, activation: Activation.Relu),
            new Dense(5, Activation.Tanh),
            new MaxPooling2D(2),
            new Conv2D(3, 1, activation: Activation.Softmax)),
        ["flatten straight from the input, layers named input and output"] = () => Model(new Shape(4, 5, 2),
            new Flatten(name: "input"),
            new Dense(8, Activation.Relu, name: "output"),
            new Dense(3, Activation.Softmax)),
        ["vector input, no spatial layers"] = () => Model(new Shape(12),
            new Dense(6, Activation.Sigmoid),
            new Dropout(0.1)),
        ["batch normalization on images and vectors, with and without gamma and beta"] = () => Model(new Shape(4, 5, 3),
            new Dense(4),
            new BatchNormalization(),                       // (4, 5, 4) straight from the NHWC input
            new Conv2D(5, 3, padding: Padding.Same),
            new BatchNormalization(epsilon: 0.01),          // NCHW: BatchNormalization
            new ActivationLayer(Activation.Relu),
            new BatchNormalization(center: false, scale: false),
            new Flatten(),
            new Dense(6),
            new BatchNormalization(scale: false),           // (N, C)
            new Dense(3, Activation.Softmax)),
        ["batch normalization on sequences (N, T, C), where the channels stay last"] = () => Model(new Shape(6, 5),
            new Dense(4),
            new BatchNormalization(epsilon: 0.1),
            new Flatten(),
            new Dense(3)),
        ["zero padding in NHWC and in NCHW, asymmetric"] = () => Model(new Shape(7, 6, 2),
            new ZeroPadding2D(((1, 2), (0, 3))),
            new Conv2D(4, 3, activation: Activation.Tanh),
            new ZeroPadding2D(((2, 0), (1, 2))),
            new Conv2D(3, 2),
            new Flatten(),
            new Dense(4, Activation.Softmax)),
        ["global pooling with and without keepdims"] = () => Model(new Shape(7, 6, 2),
            new Conv2D(4, 3, activation: Activation.Relu),
            new GlobalMaxPooling2D(keepDims: true),
            new Conv2D(3, 1, activation: Activation.Tanh),
            new ZeroPadding2D((2, 1)),
            new GlobalAveragePooling2D(),
            new Dense(4, Activation.Softmax)),
        ["group and instance normalization on images and vectors"] = () => Model(new Shape(5, 4, 3),
            new Conv2D(6, 3, padding: Padding.Same),
            new GroupNormalization(groups: 3),
            new ActivationLayer(Activation.Relu),
            new InstanceNormalization(),
            new GroupNormalization(groups: 1, center: false),
            new GroupNormalization(groups: 2, scale: false),
            new Flatten(),
            new Dense(8),
            new GroupNormalization(groups: 4),
            new Dense(3, Activation.Sigmoid)),
        ["layer normalization on channels, whole images and vectors (opset 17)"] = () => Model(new Shape(5, 4, 3),
            new Conv2D(4, 3, padding: Padding.Same),
            new LayerNormalization(),
            new Conv2D(3, 1, activation: Activation.Relu),
            new LayerNormalization([1, 2, 3], center: false),
            new Flatten(),
            new Dense(5),
            new LayerNormalization(scale: false),
            new Dense(3, Activation.Softmax)),
    };

    /// LayerNormalization needs opset 17; the rest runs on the default.
    static int OpsetFor(Model model) => model.Layers.Any(l => l is LayerNormalization) ? 17 : OnnxExporter.MinOpset;

    static Sequential Model(Shape input, params Layer[] layers)
    {
        var model = new Sequential(seed: 5).Add(new Input(input));
        foreach (var layer in layers) model.Add(layer);
        return model;
    }

    [Theory]
    [MemberData(nameof(LayerCases))]
    public void Layer_options_run_in_OnnxRuntime_like_Predict(string name)
    {
        var model = Cases[name]();
        RandomizeBiases(model, seed: 7);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model, OpsetFor(model)));

        AssertSameOutputs(model, session, batch: 1, seed: 8);
        AssertSameOutputs(model, session, batch: 3, seed: 9);
    }

    public static TheoryData<string, int> CasesAtEveryOpset
    {
        get
        {
            var data = new TheoryData<string, int>();
            foreach (var name in Cases.Keys)
                foreach (int opset in new[] { OnnxExporter.MinOpset, 17, 18, 21, OnnxExporter.MaxOpset })
                    if (opset >= OpsetFor(Cases[name]())) data.Add(name, opset);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(CasesAtEveryOpset))]
    public void Every_supported_opset_loads_and_agrees_with_Predict(string name, int opset)
    {
        var model = Cases[name]();
        RandomizeBiases(model, seed: 11);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model, opset));

        AssertSameOutputs(model, session, batch: 2, seed: 12);
    }

    [Fact]
    public void LayerNormalization_below_opset_17_fails_saying_which_opset_to_use()
    {
        var model = Model(new Shape(4, 4, 2), new LayerNormalization(name: "norm"), new Flatten(), new Dense(2));

        var e = Assert.Throws<NotSupportedException>(() => OnnxExporter.ExportToBytes(model, opset: 16));

        Assert.Contains("'norm'", e.Message);
        Assert.Contains("opset 17", e.Message);
    }

    [Fact]
    public void Graph_has_input_NHWC_with_a_dynamic_batch_and_output_of_the_model_shape()
    {
        var model = Architectures.Create("small-32", seed: 0);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model));

        var input = Assert.Single(session.InputMetadata);
        Assert.Equal("input", input.Key);
        Assert.Equal(typeof(float), input.Value.ElementType);
        Assert.Equal([-1, 32, 32, 3], input.Value.Dimensions);
        Assert.Equal("N", input.Value.SymbolicDimensions[0]);
        var output = Assert.Single(session.OutputMetadata);
        Assert.Equal("output", output.Key);
        Assert.Equal([-1, 10], output.Value.Dimensions);
        Assert.Equal("N", output.Value.SymbolicDimensions[0]);
        Assert.Equal("Naani", session.ModelMetadata.ProducerName);
        Assert.Equal("small-32", session.ModelMetadata.GraphName);
    }

    [Fact]
    public void Class_names_travel_in_the_metadata_as_a_JSON_list()
    {
        var model = Architectures.Create("mnist-baseline", seed: 0);
        model.ClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle \"boot\""];

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model));

        var names = JsonNode.Parse(session.ModelMetadata.CustomMetadataMap["class_names"])!.AsArray().Select(n => n!.GetValue<string>());
        Assert.Equal(model.ClassNames, names);
    }

    [Fact]
    public void Export_writes_the_file_atomically_and_replaces_an_existing_one()
    {
        var directory = Directory.CreateTempSubdirectory("naani-onnx-");
        try
        {
            string path = Path.Combine(directory.FullName, "small.onnx");
            File.WriteAllText(path, "an older file");
            var model = Architectures.Create("small-32", seed: 0);
            RandomizeBiases(model, seed: 1);

            OnnxExporter.Export(model, path);

            Assert.Equal([path], Directory.GetFiles(directory.FullName));
            Assert.Equal(OnnxExporter.ExportToBytes(model), File.ReadAllBytes(path));
            using var session = new InferenceSession(path);
            AssertSameOutputs(model, session, batch: 2, seed: 4);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void Export_is_deterministic()
    {
        var a = OnnxExporter.ExportToBytes(Architectures.Create("naani-128", seed: 3));
        var b = OnnxExporter.ExportToBytes(Architectures.Create("naani-128", seed: 3));

        Assert.Equal(a, b);
    }

    [Fact]
    public void Unsupported_layer_fails_naming_the_layer_and_its_type()
    {
        var model = Model(new Shape(4, 4, 1), new Conv2D(2, 3), new Doubling(name: "twice"), new Flatten(), new Dense(2));

        var e = Assert.Throws<NotSupportedException>(() => OnnxExporter.ExportToBytes(model));

        Assert.Contains("'twice'", e.Message);
        Assert.Contains(nameof(Doubling), e.Message);
    }

    [Theory]
    [InlineData(12)]
    [InlineData(OnnxExporter.MaxOpset + 1)]
    public void Opset_outside_the_supported_range_is_rejected(int opset)
    {
        var model = Architectures.Create("small-32", seed: 0);

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => OnnxExporter.ExportToBytes(model, opset));

        Assert.Contains($"{OnnxExporter.MinOpset} to {OnnxExporter.MaxOpset}", e.Message);
    }

    /// A layer the exporter cannot know: y = 2x.
    sealed class Doubling(string name) : Layer(name)
    {
        protected override Shape Build(Shape input) => input;

        public override void Forward(Tensor x, Tensor y, bool training)
        {
            for (int i = 0; i < x.Length; i++) y.Data[i] = 2 * x.Data[i];
        }

        public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
        {
            if (dx is null) return;
            for (int i = 0; i < dy.Length; i++) dx.Data[i] = 2 * dy.Data[i];
        }
    }

    /// Biases, shifts and normalization statistics start as zeros and ones, which would hide a wrong formula.
    static void RandomizeBiases(Model model, int seed)
    {
        var random = new Rng((ulong)seed);
        foreach (var p in model.Parameters)
        {
            (float low, float high) = p.Name switch
            {
                "bias" or "beta" or "moving_mean" => (-0.5f, 0.5f),
                "gamma" => (0.5f, 1.5f),
                "moving_variance" => (0.3f, 2f),
                _ => (0f, 0f),
            };
            if (high == 0) continue;
            for (int i = 0; i < p.Size; i++)
                p.Value.Data[i] = random.Uniform(low, high);
        }
    }

    static void AssertSameOutputs(Model model, InferenceSession session, int batch, int seed)
    {
        var random = new Rng((ulong)seed);
        var x = new Tensor(model.InputShape.WithBatch(batch));
        for (int i = 0; i < x.Length; i++) x.Data[i] = random.Uniform(-1, 1);
        var expected = model.Predict(x, batchSize: batch);

        var input = new DenseTensor<float>(x.Data, x.Shape.ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("input", input)]);
        var output = Assert.Single(results);
        Assert.Equal("output", output.Name);
        var actual = output.AsTensor<float>();

        Assert.Equal(expected.Shape.ToArray(), actual.Dimensions.ToArray());
        var values = actual.ToArray();
        float worst = 0;
        int worstAt = 0;
        for (int i = 0; i < values.Length; i++)
        {
            float diff = Math.Abs(values[i] - expected.Data[i]);
            if (!(diff <= worst)) (worst, worstAt) = (diff, i);
        }
        Assert.True(worst < Tolerance,
            $"'{model.Name}' batch {batch}: ONNX Runtime gives {values[worstAt]} at flat index {worstAt} of {expected.Shape}, Predict {expected.Data[worstAt]} (|diff| {worst}).");
    }
}
