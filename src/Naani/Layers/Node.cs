namespace Naani.Layers;

/// A symbolic tensor of the functional API (Keras's KerasTensor): the output of one layer called on the
/// nodes in Inbound. It holds no values; it records the graph so that a Functional model can be made
/// from its inputs and outputs:
///
///     var inputs = Input.Create(28, 28, 1);
///     var a = new Conv2D(16, 1, activation: Activation.Relu).Call(inputs);
///     var b = new Conv2D(16, 3, padding: Padding.Same, activation: Activation.Relu).Call(inputs);
///     var x = new Concatenate().Call(a, b);
///     var model = new Functional(inputs, new Dense(10, Activation.Softmax).Call(new Flatten().Call(x)));
public sealed class Node
{
    static long created;

    internal Node(Layer layer, Node[] inbound)
    {
        Layer = layer;
        Inbound = inbound;
        Order = Interlocked.Increment(ref created);
    }

    /// The layer whose output this is (an Input layer for a graph input).
    public Layer Layer { get; }

    /// The nodes the layer was called on, in order (empty for an input).
    public IReadOnlyList<Node> Inbound { get; }

    /// The per-sample shape; known once the model holding this node has been built.
    public Shape Shape => Layer.OutputShape;

    /// Creation order. A node is always created after the nodes it reads, so sorting a graph's nodes by
    /// it gives an order in which every node follows its inputs, and that order is the one the model
    /// was written in.
    internal long Order { get; }

    public override string ToString() => Layer.IsBuilt ? $"{Layer.Name} {Shape.ToKerasString()}" : $"{Layer.Name} ({Layer.TypeName})";
}
