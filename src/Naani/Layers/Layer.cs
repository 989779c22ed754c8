using System.Text.Json.Nodes;
using Naani.Initializers;

namespace Naani.Layers;

/// A layer: declares its weights in Build once the input shape is known, computes in Forward,
/// and differentiates in Backward. Shapes here are per sample (no batch axis); tensors passed to
/// Forward/Backward carry the batch axis first.
public abstract class Layer
{
    readonly List<Parameter> parameters = [];
    Rng? rng;

    protected Layer(string? name) => Name = name ?? "";

    /// Unique within a model; assigned Keras-style (conv2d, conv2d_1, ...) when left empty.
    public string Name { get; set; }

    /// When false, the optimizer leaves this layer's weights alone (transfer learning).
    public bool Trainable
    {
        get => SharedFrom?.Trainable ?? trainable;
        set
        {
            if (SharedFrom is not null) SharedFrom.Trainable = value;
            else trainable = value;
        }
    }
    bool trainable = true;

    /// For a layer called more than once (a shared layer, as in a Siamese network): the second and later calls compute
    /// with a copy of the layer, made by Call, that uses the same Parameter objects (so both calls' gradients add up in
    /// them and the optimizer updates them once) but keeps its own per-call state (pooling's argmax, dropout's mask,
    /// workspaces). SharedFrom is the layer the copy shares with; null for a layer itself.
    public Layer? SharedFrom { get; private set; }

    /// Keras's class name, shown in Summary and stored in saved files.
    public virtual string TypeName => GetType().Name;

    public Shape InputShape => inputShape ?? throw new InvalidOperationException($"Layer '{Name}' is not built yet: add it to a model with a known input shape.");
    public Shape OutputShape => outputShape ?? throw new InvalidOperationException($"Layer '{Name}' is not built yet: add it to a model with a known input shape.");
    Shape? inputShape, outputShape;
    public bool IsBuilt => outputShape is not null;

    public IReadOnlyList<Parameter> Parameters => parameters;
    public long ParameterCount => parameters.Sum(p => (long)p.Size);
    public long TrainableParameterCount => Trainable ? parameters.Where(p => p.TrainableByKind).Sum(p => (long)p.Size) : 0;

    /// The activation applied at the end of Forward, if the layer has one.
    public virtual Activation OutputActivation => Activation.Linear;

    /// Set by the model when the loss hands Backward a gradient already taken through the output
    /// activation (softmax + categorical cross-entropy, sigmoid + binary cross-entropy).
    internal bool GradientIsPreActivation { get; set; }

    /// This layer's own random stream (dropout masks), derived from the model's seed.
    protected Rng Random => rng ?? throw new InvalidOperationException($"Layer '{Name}' has no random generator: it is not built.");

    /// The layer's stream, for checkpoints (null before Build).
    internal Rng? Generator => rng;

    // While a model file is read, the values its data holds: the weights the header's layers create may not exceed
    // them, so a config asking for a billion units is refused before the memory is taken. Per thread: loads run in parallel.
    [ThreadStatic] static long? weightLimit;

    /// Until the returned scope is disposed, the layers built on this thread may create at most values weight values in
    /// all; one more is an InvalidOperationException naming the layer and the weight.
    internal static IDisposable LimitWeights(long values)
    {
        var outer = weightLimit;
        weightLimit = values;
        return new WeightLimitScope(outer);
    }

    sealed class WeightLimitScope(long? outer) : IDisposable
    {
        public void Dispose() => weightLimit = outer;
    }

    /// Creates the weights for this input shape and returns the output shape.
    public void Build(Shape input, Rng random)
    {
        if (IsBuilt)
        {
            if (input != inputShape)
                throw new InvalidOperationException($"Layer '{Name}' was built for input {inputShape!.ToKerasString()} and cannot take {input.ToKerasString()}.");
            return;
        }
        rng = random;
        building = input;
        outputShape = Build(input);
        inputShape = input;
        building = null;
    }
    Shape? building;

    protected abstract Shape Build(Shape input);

    protected Parameter AddWeight(string name, Shape shape, Initializer initializer, bool trainable = true)
    {
        if (SharedFrom is { } original)
        {
            // A shared layer's later call: the weight the first call made, which must fit this call's input.
            if (!original.IsBuilt || original.parameters.Count <= parameters.Count)
                throw new InvalidOperationException($"Layer '{Name}' ({TypeName}) is shared, but its first call has not made weight '{name}'.");
            var shared = original.parameters[parameters.Count];
            if (shared.Name != name || shared.Shape != shape)
                throw new ArgumentException($"Layer '{Name}' ({TypeName}) is called on input {building?.ToKerasString()}, which needs weight '{name}' of shape {shape}, " +
                    $"but its weights were made for input {original.InputShape.ToKerasString()} ({shared.Shape}): a shared or reused layer takes only inputs its weights fit.");
            parameters.Add(shared);
            return shared;
        }
        if (weightLimit is long left)
        {
            if (shape.LongSize > left)
                throw new InvalidOperationException(
                    $"Layer '{Name}' ({TypeName}) would create weight '{name}' of shape {shape} ({shape.LongSize:N0} values), more than the {left:N0} values left in the file's data.");
            weightLimit = left - shape.LongSize;
        }
        var value = new Tensor(shape);
        initializer.Fill(value.Data, shape, Random);
        var p = new Parameter(this, name, value, trainable);
        parameters.Add(p);
        return p;
    }

    /// y = layer(x) for a batch. y has been allocated with the output shape and the same batch.
    public abstract void Forward(Tensor x, Tensor y, bool training);

    /// Given x, y and dy = dL/dy, writes dx = dL/dx (skipped when dx is null: the first layer) and
    /// ADDS each parameter's gradient into Parameter.Gradient. May overwrite dy.
    public abstract void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx);

    /// True when, in this mode, the output equals the input (Dropout in inference): the graph then hands
    /// the input on without calling Forward.
    public virtual bool PassesThrough(bool training) => false;

    /// True when the output holds the input's values in the same order in another shape (Flatten): the
    /// graph may let the output share the input's memory instead of calling Forward.
    public virtual bool IsReshape => false;

    /// The constructor arguments, for saving; the keys are Keras's names.
    public virtual JsonObject GetConfig() => new();

    /// Checks that a batch tensor matches the shape the layer was built for.
    protected void CheckInput(Tensor x)
    {
        var shape = InputShape;
        bool ok = x.Rank == shape.Rank + 1;
        for (int i = 0; ok && i < shape.Rank; i++) ok = x.Shape[i + 1] == shape[i];
        if (!ok)
            throw new ArgumentException($"Layer '{Name}' ({TypeName}) expects input {shape.ToKerasString()}; got a batch of shape {x.Shape}.");
    }

    public override string ToString() => $"{Name} ({TypeName})";

    // The functional API: a layer is called on symbolic tensors (Nodes) to describe a graph.

    readonly List<Node> calls = [];

    /// Applies the layer to a symbolic tensor and returns its symbolic output, as calling a Keras layer
    /// does: var x = new Conv2D(32, 3).Call(inputs). Nothing is computed or built here; the layer is
    /// built when a Functional model is made from the graph's inputs and outputs.
    public Node Call(Node input) => CallOn([input]);

    /// The symbolic output of this layer's one call, e.g. to put a new head on part of a trained model:
    /// new Dense(10).Call(baseModel.GetLayer("flatten").Output).
    public Node Output => calls.Count switch
    {
        1 => calls[0],
        0 => throw new InvalidOperationException($"Layer '{Name}' has not been called on a node, so it has no symbolic output: use layer.Call(input) (the functional API)."),
        _ => throw new InvalidOperationException($"Layer '{Name}' was called {calls.Count} times, so its output is ambiguous; keep the Node each Call returned."),
    };

    private protected Node CallOn(Node[] inputs)
    {
        foreach (var input in inputs) ArgumentNullException.ThrowIfNull(input, nameof(inputs));
        if (SharedFrom is { } original) return original.CallOn(inputs);
        // A second call shares this layer's weights through a copy that computes for that call (see SharedFrom).
        var node = new Node(calls.Count == 0 || this is Input ? this : CallCopy(), inputs);
        calls.Add(node);
        return node;
    }

    /// The nodes this layer has been called on, in order (a shared layer has several).
    public IReadOnlyList<Node> Calls => calls;

    // A new instance of this layer's type and config, sharing its weights once built.
    Layer CallCopy()
    {
        if (this is Input) throw new InvalidOperationException("An Input is not called.");
        Layer copy;
        try
        {
            copy = Serialization.LayerFactory.CreateLayer(TypeName, GetConfig(), Name, Trainable, "the shared layer's config");
        }
        catch (InvalidDataException e)
        {
            throw new NotSupportedException($"Layer '{Name}' ({TypeName}) cannot be called twice: its type cannot be copied from its config ({e.Message}).", e);
        }
        copy.SharedFrom = this;
        return copy;
    }

    /// For layers built from several input shapes (MergeLayer): does what Build(Shape, Rng) does, with
    /// build computing the output shape. The input shape kept is the first input's.
    private protected void BuildFrom(Shape firstInput, Rng random, Func<Shape> build)
    {
        rng = random;
        outputShape = build();
        inputShape = firstInput;
    }
}
