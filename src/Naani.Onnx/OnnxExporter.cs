using System.Reflection;
using System.Security.Cryptography;
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
/// NCHW in between. Conv2D kernels go from HWIO to OIHW; Keras's 'same' padding, whose odd pixel goes at the
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

    /// Writes the model to path atomically: a temporary file beside it, then a rename over path.
    public static void Export(Model model, string path, int opset = MinOpset)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var proto = ToModelProto(model, opset);
        string target = Path.GetFullPath(path);
        string temp = $"{target}.tmp-{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                proto.WriteTo(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// The ONNX file's bytes, e.g. for new InferenceSession(bytes).
    public static byte[] ExportToBytes(Model model, int opset = MinOpset)
    {
        ArgumentNullException.ThrowIfNull(model);
        return ToModelProto(model, opset).ToByteArray();
    }

    internal static ModelProto ToModelProto(Model model, int opset)
    {
        if (opset is < MinOpset or > MaxOpset)
            throw new ArgumentOutOfRangeException(nameof(opset), $"ONNX export supports opsets {MinOpset} to {MaxOpset}; got {opset}.");
        model.Build();
        if (model is not Sequential)
            throw new NotSupportedException($"ONNX export supports Sequential models; '{model.Name}' is a {model.GetType().Name}.");
        // A protobuf message is at most 2 GiB; bigger models need ONNX's external data files, which this exporter does not write.
        if (model.ParameterCount * sizeof(float) > int.MaxValue - (64 << 20))
            throw new NotSupportedException(
                $"Model '{model.Name}' has {model.ParameterCount:N0} parameters ({model.ParameterCount * 4.0 / (1 << 30):0.0} GiB): too large for one ONNX file (2 GiB).");

        var graph = new OnnxGraph(opset);
        var x = new OnnxValue(OnnxGraph.InputName, model.InputShape.Rank + 1, Layout.ChannelsLast);
        foreach (var layer in model.Layers)
            x = Emit(layer, x, graph);
        x = graph.ChannelsLast(x, "output");
        graph.MarkOutput(x.Name);

        var graphProto = new GraphProto { Name = model.Name };
        graphProto.Node.AddRange(graph.Nodes);
        graphProto.Initializer.AddRange(graph.Initializers);
        graphProto.Input.Add(ValueInfoProto.FloatTensor(OnnxGraph.InputName, BatchShape(model.InputShape)));
        graphProto.Output.Add(ValueInfoProto.FloatTensor(OnnxGraph.OutputName, BatchShape(model.OutputShape)));

        var proto = new ModelProto
        {
            IrVersion = IrVersion(opset),
            ProducerName = "Naani",
            ProducerVersion = typeof(Model).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? typeof(Model).Assembly.GetName().Version?.ToString(),
            DocString = $"Naani model '{model.Name}': input [N, {string.Join(", ", model.InputShape.ToArray())}] float32 (NHWC).",
            Graph = graphProto,
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        if (model.ClassNames is { Count: > 0 } classes)
            proto.MetadataProps.Add(new StringStringEntryProto { Key = "class_names", Value = JsonSerializer.Serialize(classes) });
        return proto;
    }

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
