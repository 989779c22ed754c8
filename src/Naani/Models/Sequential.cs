using Naani.Layers;

namespace Naani.Models;

/// A plain stack of layers, each feeding the next, as Keras's Sequential. The first layer is an
/// Input (or give inputShape to the constructor).
public sealed class Sequential : Model
{
    readonly List<Layer> layers = [];
    Shape? inputShape;
    bool built;

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

    public Sequential Add(Layer layer)
    {
        if (built) throw new InvalidOperationException($"Model '{Name}' is already built; layers cannot be added after Compile, Summary or training.");
        if (layer is Input input)
        {
            if (layers.Count > 0 || inputShape is not null)
                throw new InvalidOperationException($"An Input layer must come first in Sequential model '{Name}'.");
            inputShape = input.Shape;
            return this;   // as in Keras, the input is not one of the model's layers
        }
        if (string.IsNullOrEmpty(layer.Name)) layer.Name = UniqueName(layer);
        else if (layers.Any(l => l.Name == layer.Name))
            throw new ArgumentException($"Model '{Name}' already has a layer named '{layer.Name}'.");
        layers.Add(layer);
        return this;
    }

    string UniqueName(Layer layer)
    {
        string stem = SnakeCase(layer.TypeName);
        string name = stem;
        for (int i = 1; layers.Any(l => l.Name == name); i++) name = $"{stem}_{i}";
        return name;
    }

    static string SnakeCase(string typeName)
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < typeName.Length; i++)
        {
            char c = typeName[i];
            if (char.IsUpper(c) && i > 0 && (char.IsLower(typeName[i - 1]) || (i + 1 < typeName.Length && char.IsLower(typeName[i + 1]))))
                sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString().Replace("2_d", "2d").Replace("1_d", "1d");
    }

    public override void Build()
    {
        if (built) return;
        if (inputShape is null)
            throw new InvalidOperationException($"Model '{Name}' does not know its input shape: add an Input layer first, e.g. model.Add(new Input(28, 28, 1)).");
        if (layers.Count == 0)
            throw new InvalidOperationException($"Model '{Name}' has no layers.");
        var shape = inputShape;
        foreach (var layer in layers)
        {
            layer.Build(shape, Random.Fork());
            shape = layer.OutputShape;
        }
        built = true;
    }

    // Activations and gradients for each batch size seen, allocated once and reused every step.
    sealed class Workspace(Tensor[] activations, Tensor[] gradients)
    {
        public readonly Tensor[] Activations = activations;
        public readonly Tensor[] Gradients = gradients;
    }

    readonly Dictionary<int, Workspace> workspaces = [];
    Workspace? current;

    Workspace For(int batch)
    {
        if (workspaces.TryGetValue(batch, out var ws)) return ws;
        var acts = new Tensor[layers.Count + 1];
        var grads = new Tensor[layers.Count + 1];
        for (int i = 0; i < layers.Count; i++)
        {
            acts[i + 1] = new Tensor(layers[i].OutputShape.WithBatch(batch));
            grads[i + 1] = new Tensor(layers[i].OutputShape.WithBatch(batch));
        }
        // Keep at most the training batch, the last partial batch and an inference batch.
        if (workspaces.Count >= 3) workspaces.Remove(workspaces.Keys.First(k => k != current?.Activations[1].Batch));
        return workspaces[batch] = new Workspace(acts, grads);
    }

    protected internal override Tensor ForwardBatch(Tensor x, bool training)
    {
        Build();
        var ws = current = For(x.Batch);
        ws.Activations[0] = x;
        var profiler = Profiler;
        for (int i = 0; i < layers.Count; i++)
        {
            long t0 = profiler is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            layers[i].Forward(ws.Activations[i], ws.Activations[i + 1], training);
            profiler?.AddForward(layers[i].Name, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
        }
        return ws.Activations[^1];
    }

    protected internal override void BackwardBatch(Tensor outputGradient)
    {
        var ws = current ?? throw new InvalidOperationException("BackwardBatch needs a ForwardBatch first.");
        var grads = ws.Gradients;
        var dy = outputGradient;
        for (int i = layers.Count - 1; i >= 0; i--)
        {
            // The first layer's input gradient is never needed: skip computing it.
            var dx = i == 0 ? null : grads[i];
            long t0 = Profiler is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            layers[i].Backward(ws.Activations[i], ws.Activations[i + 1], dy, dx);
            Profiler?.AddBackward(layers[i].Name, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
            if (dx is null) break;
            dy = dx;
        }
    }
}
