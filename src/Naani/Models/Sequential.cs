using Naani.Layers;

namespace Naani.Models;

/// A plain stack of layers, each feeding the next, as Keras's Sequential. The first layer is an
/// Input (or give inputShape to the constructor). Built, it is the simplest graph: a chain from one
/// input to one output, run by the same Graph as a Functional model.
public sealed class Sequential : Model
{
    readonly List<Layer> layers = [];
    Shape? inputShape;
    Graph? graph;

    public Sequential(string name = "sequential", int? seed = null, Shape? inputShape = null) : base(name, seed) => this.inputShape = inputShape;

    public Sequential(IEnumerable<Layer> layers, string name = "sequential", int? seed = null) : this(name, seed)
    {
        foreach (var l in layers) Add(l);
    }

    public override IReadOnlyList<Layer> Layers => layers;

    public override Shape InputShape
    {
        get
        {
            Build();
            return inputShape!;
        }
    }

    public override Shape OutputShape
    {
        get
        {
            Build();
            return layers.Count == 0 ? inputShape! : layers[^1].OutputShape;
        }
    }

    /// The chain's input and output nodes (once built), to make a Functional model on top of this one:
    /// new Functional(model.Inputs, new Dense(5).Call(model.GetLayer("dense").Output)).
    public IReadOnlyList<Node> Inputs => Graph.Inputs;
    public IReadOnlyList<Node> Outputs => Graph.Outputs;

    public Sequential Add(Layer layer)
    {
        if (graph is not null) throw new InvalidOperationException($"Model '{Name}' is already built; layers cannot be added after Compile, Summary or training.");
        if (layer is Input input)
        {
            if (layers.Count > 0 || inputShape is not null)
                throw new InvalidOperationException($"An Input layer must come first in Sequential model '{Name}'.");
            inputShape = input.Shape;
            return this;   // as in Keras, the input is not one of the model's layers
        }
        if (layer is MergeLayer)
            throw new ArgumentException($"{layer.TypeName} layer '{layer.Name}' merges several inputs and cannot be added to Sequential model '{Name}': build the graph with the functional API (layer.Call) and a Functional model.");
        if (string.IsNullOrEmpty(layer.Name)) layer.Name = UniqueLayerName(layer, layers);
        else if (layers.Any(l => l.Name == layer.Name))
            throw new ArgumentException($"Model '{Name}' already has a layer named '{layer.Name}'.");
        layers.Add(layer);
        return this;
    }

    public override void Build()
    {
        if (graph is not null) return;
        using var exclusive = ExclusiveUse();   // two threads' first Predict must not both build the graph
        if (graph is not null) return;
        if (inputShape is null)
            throw new InvalidOperationException($"Model '{Name}' does not know its input shape: add an Input layer first, e.g. model.Add(new Input(28, 28, 1)).");
        if (layers.Count == 0)
            throw new InvalidOperationException($"Model '{Name}' has no layers.");
        var node = Input.Create(inputShape, "input_layer");
        var first = node;
        foreach (var layer in layers) node = layer.Call(node);
        var chain = new Graph([first], [node], Name);
        chain.Build(Random);
        graph = chain;
    }

    Graph Graph
    {
        get
        {
            Build();
            return graph!;
        }
    }

    private protected override Graph? SummaryGraph => Graph;

    internal override IReadOnlyList<Node>? GraphNodes => Graph.Nodes;

    protected internal override Tensor ForwardBatch(Tensor x, bool training)
    {
        one[0] = x;
        return Graph.Forward(one, training, Profiler)[0];
    }
    readonly Tensor[] one = new Tensor[1];

    protected internal override void BackwardBatch(Tensor outputGradient)
    {
        one[0] = outputGradient;
        Graph.Backward(one, Profiler, BackwardLayerDone);
    }

    protected internal override IReadOnlyList<Tensor> ForwardBatch(IReadOnlyList<Tensor> inputs, bool training, bool mainOutputOnly = false) =>
        Graph.Forward(inputs, training, Profiler);

    protected internal override void BackwardBatch(IReadOnlyList<Tensor> outputGradients) => Graph.Backward(outputGradients, Profiler, BackwardLayerDone);

    internal override void KeepWorkspaces(int batchSizes)
    {
        Build();
        graph!.WorkspaceCapacity = Math.Max(graph!.WorkspaceCapacity, batchSizes);
    }
}
