namespace Naani.Onnx;

/// How a rank-4 value's axes are laid out: Naani's NHWC, or the NCHW that ONNX's Conv and pools take.
internal enum Layout
{
    ChannelsLast,
    ChannelsFirst,
}

/// A value flowing through the graph being built: its name, its rank with the batch axis, and, for rank 4, its layout.
internal readonly record struct OnnxValue(string Name, int Rank, Layout Layout)
{
    public bool IsImage => Rank == 4;
}

/// The graph under construction: nodes in topological order, initializers (weights and constants), and unique
/// value names. Each layer's values are named "{layer}/{OpType}", so the file reads like the model's summary.
internal sealed class OnnxGraph(int opset)
{
    public const string InputName = "input";
    public const string OutputName = "output";

    readonly HashSet<string> names = [InputName, OutputName];

    public int Opset { get; } = opset;
    public List<NodeProto> Nodes { get; } = [];
    public List<TensorProto> Initializers { get; } = [];

    /// The name, or the name with the first free suffix _1, _2, ...
    string Unique(string preferred)
    {
        string name = preferred;
        for (int i = 1; !names.Add(name); i++) name = $"{preferred}_{i}";
        return name;
    }

    /// Adds an operator with one output, named "{scope}/{opType}"; returns the output's name.
    public string Node(string opType, string scope, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        string output = Unique($"{scope}/{opType}");
        var node = new NodeProto { OpType = opType, Name = output };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        Nodes.Add(node);
        return output;
    }

    /// Adds a float initializer (a weight, e.g. "conv2d/kernel") and returns its name.
    public string Weight(string name, long[] dims, ReadOnlySpan<float> values)
    {
        name = Unique(name);
        Initializers.Add(TensorProto.FromFloats(name, dims, values));
        return name;
    }

    /// Adds a 1-D int64 initializer (a shape for Reshape, pads for Pad) and returns its name.
    public string Int64s(string name, params long[] values)
    {
        name = Unique(name);
        Initializers.Add(TensorProto.FromInt64s(name, [values.Length], values));
        return name;
    }

    /// NHWC -> NCHW for an image value that is not NCHW yet; anything else passes through.
    public OnnxValue ChannelsFirst(OnnxValue x, string scope) => x.IsImage && x.Layout == Layout.ChannelsLast
        ? x with { Name = Node("Transpose", scope, [x.Name], AttributeProto.IntList("perm", 0, 3, 1, 2)), Layout = Layout.ChannelsFirst }
        : x;

    /// NCHW -> NHWC for an image value in NCHW; anything else passes through.
    public OnnxValue ChannelsLast(OnnxValue x, string scope) => x.IsImage && x.Layout == Layout.ChannelsFirst
        ? x with { Name = Node("Transpose", scope, [x.Name], AttributeProto.IntList("perm", 0, 2, 3, 1)), Layout = Layout.ChannelsLast }
        : x;

    /// Makes a value the graph's output "output": its node's output is renamed (no node reads it yet), or,
    /// when the graph computes nothing, an Identity carries the input over.
    public void MarkOutput(string value)
    {
        var producer = Nodes.FirstOrDefault(n => n.Output.Contains(value));
        if (producer is null)
        {
            var identity = new NodeProto { OpType = "Identity", Name = OutputName };
            identity.Input.Add(value);
            identity.Output.Add(OutputName);
            Nodes.Add(identity);
            return;
        }
        producer.Output[producer.Output.IndexOf(value)] = OutputName;
    }
}
