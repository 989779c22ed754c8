using System.Reflection;
using System.Text.Json;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;

namespace Naani.Onnx;

/// Writes a Naani model as an ONNX file for deployment (ONNX Runtime, TensorRT, browsers...), inference only.
///
/// The graph takes "input", float32 [N, H, W, C] with a dynamic batch N (Naani's NHWC), and gives "output"
/// with the model's output shape. ONNX's Conv and pools work on NCHW, so a Transpose goes in before the first
/// of them and another where an NHWC value is needed again (Flatten, a Dense on images, the output); values stay
/// NCHW in between.
///
/// Sequential and Functional models take the same path: the graph's nodes in the model's execution order, each
/// node's ONNX value (name, rank, layout) kept in a map, so a value read by several layers (a ResNet shortcut, the
/// input of an Inception module) is computed once and transposed at most once per layout. Concatenate and Add
/// bring their inputs to one layout, the one that needs the fewest new Transposes (NCHW on a tie, where the
/// convolutions around them work), and Concatenate joins on that layout's channel axis. Only the main output (the
/// first) is exported by default, with only the nodes it depends on: auxiliary heads such as GoogLeNet's are for
/// training. allOutputs exports every output, the others named after their layers (e.g. "aux1"); a model with
/// several inputs takes "input" and then the other inputs by their layers' names. Conv2D kernels go from HWIO to OIHW; Keras's 'same' padding, whose odd pixel goes at the
/// bottom/right, becomes explicit pads (never auto_pad); Dropout is the identity and leaves no node; a layer's
/// activation becomes its own node (Relu, Sigmoid, Tanh, Softmax), which runtimes fuse back.
///
/// Flatten transposes back to NHWC first, so the flattened order is Naani's and every Dense kernel is written
/// as it is. The alternative, permuting the next Dense's kernel rows into NCHW order, would save one transpose of
/// the last feature map (small next to the convolutions) but would tie Flatten to whatever layer follows it, and
/// the exported graph would no longer read like the model.
///
/// Adding a layer type: one method in OnnxExporter.Layers.cs that emits its nodes, and one case in Emit there.
public static partial class OnnxExporter
{
    /// Opset 13 is the first where Softmax works on one axis as Keras's does; 23 is the newest checked in the tests.
    public const int MinOpset = 13;
    public const int MaxOpset = 23;

    /// Writes the model to path atomically: a temporary file beside it, then a rename over path. allOutputs
    /// exports the auxiliary outputs of a model that has several, besides the main one.
    public static void Export(Model model, string path, int opset = MinOpset, bool allOutputs = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var proto = ToModelProto(model, opset, allOutputs);
        Naani.IO.AtomicFile.Write(path, proto.WriteTo);
    }

    /// The ONNX file's bytes, e.g. for new InferenceSession(bytes).
    public static byte[] ExportToBytes(Model model, int opset = MinOpset, bool allOutputs = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        return ToModelProto(model, opset, allOutputs).ToByteArray();
    }

    internal static ModelProto ToModelProto(Model model, int opset, bool allOutputs = false)
    {
        if (opset is < MinOpset or > MaxOpset)
            throw new ArgumentOutOfRangeException(nameof(opset), $"ONNX export supports opsets {MinOpset} to {MaxOpset}; got {opset}.");
        model.Build();
        var (inputs, outputs) = model switch
        {
            Sequential sequential => (sequential.Inputs, sequential.Outputs),
            Functional functional => (functional.Inputs, allOutputs ? functional.Outputs : functional.Outputs.Take(1).ToArray()),
            _ => throw new NotSupportedException(
                $"ONNX export supports Sequential and Functional models; '{model.Name}' is a {model.GetType().Name}."),
        };
        // A protobuf message is at most 2 GiB; bigger models need ONNX's external data files, which this exporter does not write.
        if (model.ParameterCount * sizeof(float) > int.MaxValue - (64 << 20))
            throw new NotSupportedException(
                $"Model '{model.Name}' has {model.ParameterCount:N0} parameters ({model.ParameterCount * 4.0 / (1 << 30):0.0} GiB): too large for one ONNX file (2 GiB).");

        var graph = new OnnxGraph(opset);
        // The first input and the main output keep the names every caller knows; the others go by their layers.
        string[] inputNames = [.. inputs.Select((n, k) => k == 0 ? OnnxGraph.InputName : graph.Reserve(n.Layer.Name))];
        string[] outputNames = [.. outputs.Select((n, k) => k == 0 ? OnnxGraph.OutputName : graph.Reserve(n.Layer.Name))];

        var values = new Dictionary<Node, OnnxValue>();
        for (int k = 0; k < inputs.Count; k++)
            values[inputs[k]] = new OnnxValue(inputNames[k], inputs[k].Shape.Rank + 1, Layout.ChannelsLast);
        foreach (var node in ExecutionOrder(model, outputs))
        {
            if (node.Inbound.Count == 0) continue;   // an input, named above
            values[node] = node.Layer is MergeLayer merge
                ? Merge(merge, [.. node.Inbound.Select(source => values[source])], graph)
                : Emit(node.Layer, values[node.Inbound[0]], graph);
        }
        // Every Transpose first, then the renames: a value may be read by other nodes or be two outputs at once.
        var results = outputs.Select((n, k) => graph.ChannelsLast(values[n], outputNames[k])).ToArray();
        for (int k = 0; k < outputs.Count; k++)
            graph.MarkOutput(results[k].Name, outputNames[k]);

        var graphProto = new GraphProto { Name = model.Name };
        graphProto.Node.AddRange(graph.Nodes);
        graphProto.Initializer.AddRange(graph.Initializers);
        for (int k = 0; k < inputs.Count; k++)
            graphProto.Input.Add(ValueInfoProto.FloatTensor(inputNames[k], BatchShape(inputs[k].Shape)));
        for (int k = 0; k < outputs.Count; k++)
            graphProto.Output.Add(ValueInfoProto.FloatTensor(outputNames[k], BatchShape(outputs[k].Shape)));

        var proto = new ModelProto
        {
            IrVersion = IrVersion(opset),
            ProducerName = "Naani",
            ProducerVersion = typeof(Model).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? typeof(Model).Assembly.GetName().Version?.ToString(),
            DocString = inputs.Count == 1 && outputs.Count == 1
                ? $"Naani model '{model.Name}': input [N, {string.Join(", ", model.InputShape.ToArray())}] float32 (NHWC)."
                : $"Naani model '{model.Name}': inputs {Describe(inputNames, inputs)}; outputs {Describe(outputNames, outputs)}; float32, images NHWC.",
            Graph = graphProto,
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        if (model.ClassNames is { Count: > 0 } classes)
            proto.MetadataProps.Add(new StringStringEntryProto { Key = "class_names", Value = JsonSerializer.Serialize(classes) });
        return proto;
    }

    /// The nodes the outputs depend on, in the model's execution order: the order of model.Layers (each layer is
    /// called once per model), which is topological. Sequential's input is not among its layers and comes first.
    static Node[] ExecutionOrder(Model model, IReadOnlyList<Node> outputs)
    {
        var position = new Dictionary<Layer, int>();
        for (int i = 0; i < model.Layers.Count; i++) position[model.Layers[i]] = i;
        var reached = new HashSet<Node>();
        var pending = new Stack<Node>(outputs);
        while (pending.Count > 0)
        {
            var node = pending.Pop();
            if (!reached.Add(node)) continue;
            foreach (var source in node.Inbound) pending.Push(source);
        }
        return [.. reached.OrderBy(n => position.GetValueOrDefault(n.Layer, -1))];
    }

    /// "input [N, 28, 28, 1] (input_layer), ..." for the doc string of a model with several inputs or outputs.
    static string Describe(string[] names, IReadOnlyList<Node> nodes) => string.Join(", ",
        nodes.Select((n, k) => $"{names[k]} [N, {string.Join(", ", n.Shape.ToArray())}] ({n.Layer.Name})"));

    /// [N, d1, d2, ...] with the batch a symbol, so that any batch size runs.
    static IEnumerable<TensorShapeProto.Dimension> BatchShape(Shape shape) =>
        [TensorShapeProto.Dimension.Named("N"), .. shape.ToArray().Select(d => (TensorShapeProto.Dimension)d)];

    /// The oldest IR version that carries the opset (onnx/docs/Versioning.md), so older runtimes load the file too.
    static long IrVersion(int opset) => opset switch
    {
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        <= 22 => 10,
        _ => 11,
    };
}
