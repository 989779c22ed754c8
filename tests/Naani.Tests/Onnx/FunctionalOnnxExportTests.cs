using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Onnx;

namespace Naani.Tests.Onnx;

/// Functional models (DAGs with Concatenate and Add, several inputs and outputs) exported to ONNX, loaded by
/// ONNX Runtime and run on the same random batch as model.Predict (or PredictOutputs for every output); the two
/// must agree within 1e-4 everywhere. Biases and normalization statistics are randomized so that they count too.
public sealed class FunctionalOnnxExportTests
{
    const float Tolerance = 1e-4f;

    [Theory]
    [InlineData("resnet-mini")]
    [InlineData("googlenet-mini")]
    [InlineData("inception-naive")]
    [InlineData("inception-reduced")]
    public void Built_in_graph_runs_in_OnnxRuntime_like_Predict_at_batch_1_and_3(string name)
    {
        var model = Architectures.Create(name, seed: 0);
        RandomizeBiases(model, seed: 1);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model));

        Assert.Equal(["output"], session.OutputMetadata.Keys);
        AssertSameOutputs(model, session, allOutputs: false, batch: 1, seed: 2);
        AssertSameOutputs(model, session, allOutputs: false, batch: 3, seed: 3);
    }

    /// With their tops at 32x32 and 10 classes, to stay fast: VGG16's five pools leave 1x1x512 for fc1 (33.6M
    /// parameters); ResNet50's stem and strided stages leave 1x1x2048 for the global pooling.
    [Theory]
    [InlineData("vgg16")]
    [InlineData("resnet50")]
    public void Keras_application_with_top_at_a_small_input_runs_in_OnnxRuntime_like_Predict(string name)
    {
        var model = Architectures.Create(name, seed: 0, inputShape: new Shape(32, 32, 3), classes: 10);
        RandomizeBiases(model, seed: 1);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model));

        AssertSameOutputs(model, session, allOutputs: false, batch: 1, seed: 2);
        AssertSameOutputs(model, session, allOutputs: false, batch: 3, seed: 3);
    }

    [Fact]
    public void GoogLeNet_with_all_outputs_gives_the_auxiliary_heads_by_their_layer_names()
    {
        var model = Architectures.Create("googlenet-mini", seed: 0);
        RandomizeBiases(model, seed: 4);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model, allOutputs: true));

        Assert.Equal(["output", "aux1", "aux2"], session.OutputMetadata.Keys);
        Assert.Equal([-1, 10], session.OutputMetadata["aux2"].Dimensions);
        AssertSameOutputs(model, session, allOutputs: true, batch: 1, seed: 5);
        AssertSameOutputs(model, session, allOutputs: true, batch: 3, seed: 6);
    }

    [Fact]
    public void Main_output_only_leaves_out_the_nodes_of_the_auxiliary_heads()
    {
        var model = Architectures.Create("googlenet-mini", seed: 0);

        var main = OnnxExporter.ToModelProto(model, OnnxExporter.MinOpset);
        var all = OnnxExporter.ToModelProto(model, OnnxExporter.MinOpset, allOutputs: true);

        Assert.DoesNotContain(main.Graph!.Node, n => n.Name!.StartsWith("aux", StringComparison.Ordinal));
        Assert.DoesNotContain(main.Graph!.Initializer, t => t.Name!.StartsWith("aux", StringComparison.Ordinal));
        Assert.Contains(all.Graph!.Node, n => n.Name!.StartsWith("aux1_conv/", StringComparison.Ordinal));
    }

    /// The input goes to NCHW once however many layers read it, and back to NHWC only where a layer needs it
    /// (Flatten of an image); Concatenate and Add of NCHW branches stay in NCHW.
    [Theory]
    [InlineData("inception-naive", false, 2)]       // input; output image
    [InlineData("inception-reduced", false, 2)]
    [InlineData("resnet-mini", false, 1)]           // input; global pooling ends in (N, C)
    [InlineData("googlenet-mini", false, 1)]
    [InlineData("googlenet-mini", true, 3)]         // and each auxiliary head's Flatten
    [InlineData("vgg16", false, 2)]                 // input; Flatten
    public void Transposes_go_only_where_the_layout_changes(string name, bool allOutputs, int transposes)
    {
        var model = Architectures.Create(name, seed: 0, inputShape: name == "vgg16" ? new Shape(32, 32, 3) : null);

        var proto = OnnxExporter.ToModelProto(model, OnnxExporter.MinOpset, allOutputs);

        Assert.Equal(transposes, proto.Graph!.Node.Count(n => n.OpType == "Transpose"));
    }

    /// Branches in both layouts: a Dense on the image keeps NHWC while convolutions and pools go NCHW; the
    /// input is read by four layers; Add of three inputs; an output that other layers also read, in NCHW.
    static Functional Branched(bool withSideOutputs)
    {
        var input = Input.Create(new Shape(8, 7, 3), "image");
        var a = new Conv2D(4, 3, padding: Padding.Same, activation: Activation.Relu, name: "a").Call(input);
        var b = new Dense(4, Activation.Tanh, name: "b").Call(input);
        var c = new MaxPooling2D(3, strides: 1, padding: Padding.Same, name: "c").Call(input);
        var joined = new Concatenate("joined").Call(a, b, c, input);                       // (8, 7, 14)
        var d = new Conv2D(14, 1, name: "d").Call(joined);
        var e = new Dense(14, name: "e").Call(joined);
        var sum = new Add("sum").Call(d, e);
        var relu = new ActivationLayer(Activation.Relu, "relu").Call(e);
        var sum3 = new Add("sum3").Call(sum, joined, relu);
        var pooled = new MaxPooling2D(2, name: "pool").Call(sum3);
        var flat = new Flatten("flatten").Call(pooled);
        var predictions = new Dense(5, Activation.Softmax, name: "predictions").Call(flat);
        var side = new Conv2D(2, 1, activation: Activation.Sigmoid, name: "side").Call(sum);
        return withSideOutputs
            ? new Functional(input, [predictions, side, sum], "branched", seed: 7)
            : new Functional(input, predictions, "branched", seed: 7);
    }

    /// A shared layer's calls each become ONNX nodes reading the same weights (written once per call: ONNX names each
    /// initializer once, so the second call's is a copy under a suffixed name).
    [Fact]
    public void A_Siamese_model_with_a_shared_layer_runs_in_OnnxRuntime_like_Predict()
    {
        var left = Input.Create(6, 6, 2);
        var right = Input.Create(6, 6, 2);
        var conv = new Conv2D(3, 3, padding: Padding.Same, activation: Activation.Relu, name: "twin");
        var a = new GlobalAveragePooling2D().Call(conv.Call(left));
        var b = new GlobalAveragePooling2D().Call(conv.Call(right));
        var model = new Functional([left, right], [new Dense(2, Activation.Softmax).Call(new Concatenate().Call(a, b))], "siamese", seed: 4);
        RandomizeBiases(model, seed: 5);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model));

        AssertSameOutputs(model, session, allOutputs: false, batch: 3, seed: 6);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Branched_model_with_Concatenate_and_Add_runs_in_OnnxRuntime_like_Predict(bool allOutputs)
    {
        var model = Branched(withSideOutputs: allOutputs);
        RandomizeBiases(model, seed: 8);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model, allOutputs: allOutputs));

        Assert.Equal(allOutputs ? ["output", "side", "sum"] : ["output"], session.OutputMetadata.Keys);
        AssertSameOutputs(model, session, allOutputs, batch: 1, seed: 9);
        AssertSameOutputs(model, session, allOutputs, batch: 3, seed: 10);
    }

    [Fact]
    public void Several_inputs_take_input_and_then_their_layer_names()
    {
        var image = Input.Create(new Shape(6, 5, 2), "pixels");
        var meta = Input.Create(new Shape(3), "meta");
        var x = new Conv2D(4, 3, activation: Activation.Relu, name: "conv").Call(image);
        x = new GlobalAveragePooling2D(name: "gap").Call(x);
        var m = new Dense(4, Activation.Tanh, name: "meta_fc").Call(meta);
        x = new Concatenate("joined").Call(x, m);
        var output = new Dense(3, Activation.Softmax, name: "predictions").Call(x);
        var model = new Functional([image, meta], [output], "two-inputs", seed: 11);
        RandomizeBiases(model, seed: 12);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model));

        Assert.Equal(["input", "meta"], session.InputMetadata.Keys);
        AssertSameOutputs(model, session, allOutputs: false, batch: 3, seed: 13);
    }

    [Fact]
    public void The_same_output_twice_and_an_output_straight_after_the_input_are_copies()
    {
        var input = Input.Create(new Shape(4, 4, 2), "input_layer");
        var dropped = new Dropout(0.5, "dropout").Call(input);
        var conv = new Conv2D(3, 3, padding: Padding.Same, name: "conv").Call(input);
        var model = new Functional(input, [conv, dropped, conv], "copies", seed: 14);

        using var session = new InferenceSession(OnnxExporter.ExportToBytes(model, allOutputs: true));

        Assert.Equal(["output", "dropout", "conv"], session.OutputMetadata.Keys);
        AssertSameOutputs(model, session, allOutputs: true, batch: 2, seed: 15);
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

    /// Runs one random batch per input through the session and through Predict (the main output) or
    /// PredictOutputs (every output, matched to the session's outputs in order).
    static void AssertSameOutputs(Model model, InferenceSession session, bool allOutputs, int batch, int seed)
    {
        var random = new Rng((ulong)seed);
        var xs = model.InputShapes.Select(shape =>
        {
            var x = new Tensor(shape.WithBatch(batch));
            for (int i = 0; i < x.Length; i++) x.Data[i] = random.Uniform(-1, 1);
            return x;
        }).ToList();
        IReadOnlyList<Tensor> expected = allOutputs ? model.PredictOutputs(xs, batchSize: batch) : [model.Predict(xs, batchSize: batch)];

        var inputs = session.InputMetadata.Keys.Select((name, k) =>
            NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(xs[k].Data, xs[k].Shape.ToArray()))).ToList();
        using var results = session.Run(inputs);
        var outputNames = session.OutputMetadata.Keys.ToList();
        Assert.Equal(expected.Count, outputNames.Count);
        for (int k = 0; k < expected.Count; k++)
        {
            var actual = results.Single(r => r.Name == outputNames[k]).AsTensor<float>();
            Assert.Equal(expected[k].Shape.ToArray(), actual.Dimensions.ToArray());
            var values = actual.ToArray();
            float worst = 0;
            int worstAt = 0;
            for (int i = 0; i < values.Length; i++)
            {
                float diff = Math.Abs(values[i] - expected[k].Data[i]);
                if (!(diff <= worst)) (worst, worstAt) = (diff, i);
            }
            Assert.True(worst < Tolerance,
                $"'{model.Name}' output '{outputNames[k]}' batch {batch}: ONNX Runtime gives {values[worstAt]} at flat index {worstAt} " +
                $"of {expected[k].Shape}, Predict {expected[k].Data[worstAt]} (|diff| {worst}).");
        }
    }
}
