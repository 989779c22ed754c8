using Naani.Layers;

namespace Naani.Models;

/// A model made from a graph of layer calls, as keras.Model(inputs, outputs) (Keras's own class for
/// it is called Functional too). Layers called on nodes describe the graph; the model is everything
/// the outputs depend on, back to the inputs. Several inputs and several outputs are allowed; the
/// first output is the main one:
///
///     var inputs = Input.Create(28, 28, 1);
///     var x = new Conv2D(32, 3, activation: Activation.Relu).Call(inputs);
///     var a = new Conv2D(16, 1, activation: Activation.Relu).Call(x);
///     var b = new Conv2D(16, 3, padding: Padding.Same, activation: Activation.Relu).Call(x);
///     x = new Concatenate().Call(a, b);                       // (26, 26, 32)
///     var outputs = new Dense(10, Activation.Softmax).Call(new Flatten().Call(x));
///     var model = new Functional(inputs, outputs, name: "branches", seed: 1);
///
/// The layers are named (conv2d, conv2d_1, ...) and built, with weights drawn from seed, when the
/// model is made. Each layer may be called once per model (no shared layers).
public sealed class Functional : Model
{
    readonly Graph graph;
    readonly Layer[] layers;
    readonly Shape[] inputShapes, outputShapes;
    readonly Layer[] outputLayers;

    public Functional(Node input, Node output, string name = "functional", int? seed = null)
        : this([input], [output], name, seed) { }

    public Functional(Node input, IReadOnlyList<Node> outputs, string name = "functional", int? seed = null)
        : this([input], outputs, name, seed) { }

    public Functional(IReadOnlyList<Node> inputs, IReadOnlyList<Node> outputs, string name = "functional", int? seed = null)
        : base(name, seed)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(outputs);
        graph = new Graph(inputs, outputs, name);
        // A shared layer is one layer, listed once, at its first call in this graph; its later calls' copies compute but
        // are not listed. A layer taken from another model (transfer learning) may compute here only through a copy.
        layers = [.. graph.Nodes.Select(n => n.Layer.SharedFrom ?? n.Layer).Distinct()];
        for (int i = 0; i < layers.Length; i++)
        {
            var layer = layers[i];
            if (string.IsNullOrEmpty(layer.Name)) layer.Name = UniqueLayerName(layer, layers.Take(i));
            else if (layers.Take(i).Any(l => l.Name == layer.Name))
                throw new ArgumentException($"Model '{name}' has two layers named '{layer.Name}'; names must be unique within a model.");
        }
        foreach (var node in graph.Nodes)
            if (node.Layer.SharedFrom is { } original) node.Layer.Name = original.Name;
        graph.Build(Random);
        inputShapes = [.. graph.Inputs.Select(n => n.Shape)];
        outputShapes = [.. graph.Outputs.Select(n => n.Shape)];
        outputLayers = [.. graph.Outputs.Select(n => n.Layer)];
    }

    /// The graph's input nodes and output nodes (the main output first).
    public IReadOnlyList<Node> Inputs => graph.Inputs;
    public IReadOnlyList<Node> Outputs => graph.Outputs;

    /// The graph's nodes in execution order (a node per layer call: a shared layer has several, its later calls computed
    /// by copies that share its weights).
    internal IReadOnlyList<Node> Nodes => graph.Nodes;

    internal override IReadOnlyList<Node>? GraphNodes => graph.Nodes;

    /// Every layer in execution order, inputs included (as Keras's model.layers).
    public override IReadOnlyList<Layer> Layers => layers;
    public override Shape InputShape => inputShapes[0];
    public override Shape OutputShape => outputShapes[0];
    public override IReadOnlyList<Shape> InputShapes => inputShapes;
    public override IReadOnlyList<Shape> OutputShapes => outputShapes;
    public override IReadOnlyList<Layer> OutputLayers => outputLayers;

    /// Built when made.
    public override void Build() { }

    private protected override Graph SummaryGraph => graph;
    private protected override bool OutputIsFusable(int output) => graph.OutputIsFusable(output);

    /// The main output; for a model with several outputs only the layers it depends on run (an
    /// auxiliary head costs nothing at inference).
    protected internal override Tensor ForwardBatch(Tensor x, bool training)
    {
        if (inputShapes.Length != 1)
            throw new InvalidOperationException($"Model '{Name}' has {inputShapes.Length} inputs: pass one tensor for each.");
        one[0] = x;
        return graph.Forward(one, training, Profiler, mainOnly: true)[0];
    }
    readonly Tensor[] one = new Tensor[1];

    protected internal override void BackwardBatch(Tensor outputGradient)
    {
        if (outputShapes.Length != 1)
            throw new InvalidOperationException($"Model '{Name}' has {outputShapes.Length} outputs: back-propagate a gradient for each with BackwardBatch(outputGradients).");
        one[0] = outputGradient;
        graph.Backward(one, Profiler, BackwardLayerDone);
    }

    protected internal override IReadOnlyList<Tensor> ForwardBatch(IReadOnlyList<Tensor> inputs, bool training, bool mainOutputOnly = false) =>
        graph.Forward(inputs, training, Profiler, mainOutputOnly);

    protected internal override void BackwardBatch(IReadOnlyList<Tensor> outputGradients) => graph.Backward(outputGradients, Profiler, BackwardLayerDone);

    internal override void KeepWorkspaces(int batchSizes)
    {
        Build();
        graph.WorkspaceCapacity = Math.Max(graph.WorkspaceCapacity, batchSizes);
    }
}
