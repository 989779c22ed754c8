namespace Naani.Layers;

/// A layer with several inputs (Concatenate, Add), called on several nodes: new Add().Call(a, b).
/// Its Build sees every input shape, its Forward reads every input, and its Backward writes the
/// gradient of every input, overwriting it as a single-input layer's Backward overwrites dx (the
/// model's graph sums the gradients of a tensor that feeds several layers). The single-input
/// Forward and Backward of Layer do not apply to it.
public abstract class MergeLayer(string? name) : Layer(name)
{
    Shape[]? inputShapes;

    /// Every input's per-sample shape, in the order of the Call.
    public IReadOnlyList<Shape> InputShapes => inputShapes
        ?? throw new InvalidOperationException($"Layer '{Name}' is not built yet: make a model from the graph it is called in.");

    /// Applies the layer to two or more symbolic tensors (the functional API).
    public Node Call(params Node[] inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Length < 2)
            throw new ArgumentException($"{TypeName} layer '{Name}' merges at least 2 inputs; it was called on {inputs.Length}.", nameof(inputs));
        return CallOn(inputs);
    }

    /// Checks the input shapes, creates the weights if any and records the output shape (idempotent).
    public void Build(IReadOnlyList<Shape> inputs, Rng random)
    {
        if (IsBuilt)
        {
            if (!inputs.SequenceEqual(InputShapes))
                throw new InvalidOperationException($"Layer '{Name}' was built for inputs {Describe(InputShapes)} and cannot take {Describe(inputs)}.");
            return;
        }
        BuildFrom(inputs[0], random, () => Build(inputs));
        inputShapes = [.. inputs];
    }

    /// Returns the output shape for these input shapes (and declares weights, if the layer has any).
    protected abstract Shape Build(IReadOnlyList<Shape> inputs);

    /// y = layer(x0, x1, ...) for a batch; y has been allocated with the output shape.
    public abstract void Forward(IReadOnlyList<Tensor> inputs, Tensor y, bool training);

    /// Given the inputs, y and dy = dL/dy, writes dL/dx_k into inputGradients[k] (skipping null entries)
    /// and ADDS into parameter gradients. May overwrite dy.
    public abstract void Backward(IReadOnlyList<Tensor> inputs, Tensor y, Tensor dy, IReadOnlyList<Tensor?> inputGradients);

    protected static string Describe(IEnumerable<Shape> shapes) => string.Join(" and ", shapes.Select(s => s.ToKerasString()));

    protected sealed override Shape Build(Shape input) =>
        throw new InvalidOperationException($"{TypeName} layer '{Name}' has several inputs: call it on nodes (new {TypeName}().Call(a, b)) in a Functional model; it cannot be added to a Sequential.");

    public sealed override void Forward(Tensor x, Tensor y, bool training) =>
        throw new InvalidOperationException($"{TypeName} layer '{Name}' has several inputs: use Forward(inputs, y, training).");

    public sealed override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx) =>
        throw new InvalidOperationException($"{TypeName} layer '{Name}' has several inputs: use Backward(inputs, y, dy, inputGradients).");
}
