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

    /// Takes a name for a graph input or output before any node can, with a suffix if it is taken; returns it.
    public string Reserve(string preferred) => Unique(preferred);

    // Each image value's Transpose into the other layout, both ways (a value and its transpose map to each other),
    // so that a value read by several layers in the layout it is not in is transposed once.
    readonly Dictionary<string, OnnxValue> otherLayout = [];

    /// Whether x is available in layout without a new node: it is in it, is not an image, or was transposed to it.
    public bool HasLayout(OnnxValue x, Layout layout) => !x.IsImage || x.Layout == layout || otherLayout.ContainsKey(x.Name);

    /// x in the given layout: itself, its earlier transpose, or a new Transpose named "{scope}/Transpose".
    public OnnxValue InLayout(OnnxValue x, Layout layout, string scope)
    {
        if (!x.IsImage || x.Layout == layout) return x;
        if (otherLayout.TryGetValue(x.Name, out var existing)) return existing;
        long[] perm = layout == Layout.ChannelsFirst ? [0, 3, 1, 2] : [0, 2, 3, 1];
        var y = new OnnxValue(Node("Transpose", scope, [x.Name], AttributeProto.IntList("perm", perm)), x.Rank, layout);
        otherLayout[x.Name] = y;
        otherLayout[y.Name] = x;
        return y;
    }

    /// NHWC -> NCHW for an image value that is not NCHW yet; anything else passes through.
    public OnnxValue ChannelsFirst(OnnxValue x, string scope) => InLayout(x, Layout.ChannelsFirst, scope);

    /// NCHW -> NHWC for an image value in NCHW; anything else passes through.
    public OnnxValue ChannelsLast(OnnxValue x, string scope) => InLayout(x, Layout.ChannelsLast, scope);

    // A value already made an output, by its old name: a second output of the same value copies the first.
    readonly Dictionary<string, string> outputs = [];

    /// Makes a value the graph output named output (reserved beforehand): the value is renamed, in its producer
    /// and in the nodes that read it. A graph input, or a value that is already an output, is carried over by
    /// an Identity instead. Call it once every node is in: later nodes would read the old name.
    public void MarkOutput(string value, string output)
    {
        var producer = Nodes.FirstOrDefault(n => n.Output.Contains(value));
        if (producer is null || outputs.ContainsKey(value))
        {
            var identity = new NodeProto { OpType = "Identity", Name = output };
            identity.Input.Add(outputs.GetValueOrDefault(value, value));
            identity.Output.Add(output);
            Nodes.Add(identity);
            return;
        }
        producer.Output[producer.Output.IndexOf(value)] = output;
        foreach (var node in Nodes)
            for (int i = 0; i < node.Input.Count; i++)
                if (node.Input[i] == value) node.Input[i] = output;
        outputs[value] = output;
    }
}
