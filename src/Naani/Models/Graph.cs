using Naani.Kernels;
using Naani.Layers;

namespace Naani.Models;

/// The engine that Sequential and Functional both run on: a directed acyclic graph of layer calls.
///
/// The nodes are kept in topological order (every node after the nodes it reads; Node.Order gives
/// it). Forward runs the layers in that order. Backward runs them in reverse, so when a layer's
/// Backward reads the gradient of its output, every layer that read that output has already added
/// its share. Layers keep their single-input contract (Backward OVERWRITES dx), and the graph does
/// the summing where a tensor feeds several layers (fan-out, e.g. a ResNet block's input feeds the
/// block and the shortcut): the first consumer to run backward writes the tensor's gradient, every
/// later one writes into a scratch buffer that is then added to it, so dL/dx = sum over consumers.
/// Which edge writes first is fixed by the order, so it is decided once, here.
///
/// Inputs are the caller's tensors, used as they are; nothing computes their gradient (the layers
/// reading them get dx = null). Activations, gradients and scratch buffers are allocated once per
/// batch size (Workspace) and reused by every step: a training step allocates nothing.
internal sealed class Graph
{
    readonly Node[] nodes;             // topological order
    readonly int[][] inbound;          // inbound[i][k]: position of the node that is node i's k-th input
    readonly int[] inputs;             // positions of the graph's inputs, in the model's order
    readonly int[] outputs;            // positions of the graph's outputs, in the model's order
    readonly bool[] direct;            // an output read by no layer and listed once: its gradient is the caller's tensor
    readonly bool[] outputWritesFirst; // backward: output k's gradient is the first to reach its node
    readonly bool[][] writesFirst;     // backward: edge (i, k) is the first gradient to reach node inbound[i][k]
    readonly bool[] neededByMain;      // the nodes output 0 depends on: inference of the main output runs only these

    public Graph(IReadOnlyList<Node> inputNodes, IReadOnlyList<Node> outputNodes, string modelName)
    {
        nodes = Reachable(outputNodes);
        Check(nodes, inputNodes, outputNodes, modelName);
        var position = new Dictionary<Node, int>();
        for (int i = 0; i < nodes.Length; i++) position[nodes[i]] = i;
        inbound = [.. nodes.Select(n => n.Inbound.Select(source => position[source]).ToArray())];
        inputs = [.. inputNodes.Select(n => position[n])];
        outputs = [.. outputNodes.Select(n => position[n])];

        var consumers = new int[nodes.Length];
        soleReader = new int[nodes.Length];
        Array.Fill(soleReader, -1);
        for (int i = 0; i < nodes.Length; i++)
            foreach (var source in inbound[i])
                soleReader[source] = ++consumers[source] == 1 ? i : -1;
        foreach (var o in outputs) soleReader[o] = -1;   // an output's value is read by the caller too
        direct = new bool[nodes.Length];
        foreach (var o in outputs) direct[o] = consumers[o] == 0 && outputs.Count(x => x == o) == 1;

        // Replay the backward order once to see which gradient reaches each node first: the outputs'
        // gradients, then the layers' dx from the last node to the first.
        var reachedBackward = new bool[nodes.Length];
        outputWritesFirst = new bool[outputs.Length];
        for (int k = 0; k < outputs.Length; k++)
        {
            outputWritesFirst[k] = !reachedBackward[outputs[k]];
            reachedBackward[outputs[k]] = true;
        }
        writesFirst = [.. inbound.Select(sources => new bool[sources.Length])];
        for (int i = nodes.Length - 1; i >= 0; i--)
            for (int k = 0; k < inbound[i].Length; k++)
            {
                writesFirst[i][k] = !reachedBackward[inbound[i][k]];
                reachedBackward[inbound[i][k]] = true;
            }

        neededByMain = new bool[nodes.Length];
        var pending = new Stack<int>([outputs[0]]);
        while (pending.Count > 0)
        {
            int i = pending.Pop();
            if (neededByMain[i]) continue;
            neededByMain[i] = true;
            foreach (var source in inbound[i]) pending.Push(source);
        }

        gradientNeeded = new bool[nodes.Length];
        // A Conv2D whose output only a MaxPooling2D reads (and is no output): inference fuses the two (the
        // convolution pools its rows as it computes them, Conv2D.ForwardPooled), and in training the
        // pooling's backward applies a ReLU convolution's derivative (see Backward).
        fusedPooling = new int[nodes.Length];
        fusedFrom = new int[nodes.Length];
        Array.Fill(fusedPooling, -1);
        Array.Fill(fusedFrom, -1);
        for (int i = 0; i < nodes.Length; i++)
            if (nodes[i].Layer is Conv2D && soleReader[i] is int j and >= 0 && nodes[j].Layer is MaxPooling2D)
                (fusedPooling[i], fusedFrom[j]) = (j, i);
    }

    readonly int[] fusedPooling;   // per Conv2D node: the MaxPooling2D node that alone reads it, or -1
    readonly int[] fusedFrom;      // the reverse: per MaxPooling2D node, the Conv2D node it may be fused into, or -1

    // Whether node i (a Conv2D) computes the pooling after it in this forward pass. In training only for a ReLU
    // convolution: its backward pass then never reads its own output (the pooling applies the ReLU's derivative from
    // its pooled output, see Backward), so the output need not be written at all, only pooled with its argmax.
    bool PoolsInto(int i, bool training) =>
        fusedPooling[i] >= 0 && (!training || ReluThroughPooling(i))
        && ((Conv2D)nodes[i].Layer).CanFusePooling((MaxPooling2D)nodes[fusedPooling[i]].Layer);

    /// Every node the outputs depend on, in creation order: a topological order, and the order the
    /// model was written in.
    static Node[] Reachable(IReadOnlyList<Node> outputNodes)
    {
        var reached = new HashSet<Node>();
        var stack = new Stack<Node>(outputNodes);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (!reached.Add(node)) continue;
            foreach (var source in node.Inbound) stack.Push(source);
        }
        return [.. reached.OrderBy(n => n.Order)];
    }

    /// The mistakes a graph can hold, each with a message naming the layer.
    static void Check(Node[] nodes, IReadOnlyList<Node> inputNodes, IReadOnlyList<Node> outputNodes, string modelName)
    {
        if (inputNodes.Count == 0) throw new ArgumentException($"Model '{modelName}' needs at least one input.");
        if (outputNodes.Count == 0) throw new ArgumentException($"Model '{modelName}' needs at least one output.");
        foreach (var node in inputNodes)
            if (node.Layer is not Input || node.Inbound.Count != 0)
                throw new ArgumentException($"Model '{modelName}': the inputs must be nodes made by Input.Create; '{node}' is the output of a {node.Layer.TypeName} layer.");
        if (inputNodes.Distinct().Count() != inputNodes.Count)
            throw new ArgumentException($"Model '{modelName}' lists the same input twice.");
        foreach (var node in inputNodes)
            if (!nodes.Contains(node))
                throw new ArgumentException($"Model '{modelName}': input '{node.Layer.Name}' {((Input)node.Layer).Shape.ToKerasString()} is not connected to any output.");
        foreach (var node in outputNodes)
            if (node.Layer is Input)
                throw new ArgumentException($"Model '{modelName}': output '{node.Layer.Name}' is an input; an output must be computed by a layer.");
        foreach (var node in nodes)
        {
            var layer = node.Layer;
            if (layer is Input input && node.Inbound.Count == 0 && !inputNodes.Contains(node))
                throw new ArgumentException($"Model '{modelName}': the outputs depend on input '{layer.Name}' {input.Shape.ToKerasString()}, which is not among the model's inputs.");
            if (layer is Input && node.Inbound.Count != 0)
                throw new ArgumentException($"Model '{modelName}': input layer '{layer.Name}' was called on a node; inputs take no inputs.");
            if (layer is MergeLayer && node.Inbound.Count < 2)
                throw new ArgumentException($"Model '{modelName}': {layer.TypeName} layer '{layer.Name}' needs at least 2 inputs; it was called on {node.Inbound.Count}.");
            if (layer is not (MergeLayer or Input) && node.Inbound.Count != 1)
                throw new ArgumentException($"Model '{modelName}': {layer.TypeName} layer '{layer.Name}' takes one input; it was called on {node.Inbound.Count}.");
        }
        // A layer keeps per-call state between Forward and Backward (MaxPooling2D's argmax, Dropout's mask, Conv2D's
        // buffers), so each node has its own layer object: a shared layer's later calls are copies sharing its weights
        // (Layer.SharedFrom), made by Call. One object on two nodes would be a bug in that mechanism.
        foreach (var group in nodes.GroupBy(n => n.Layer))
            if (group.Count() > 1)
                throw new InvalidOperationException($"Model '{modelName}': layer object '{group.Key}' computes for {group.Count()} nodes; each call needs its own (Layer.Call makes one).");
    }

    /// The nodes in execution order (inputs included).
    public IReadOnlyList<Node> Nodes => nodes;
    public IReadOnlyList<Node> Inputs => [.. inputs.Select(i => nodes[i])];
    public IReadOnlyList<Node> Outputs => [.. outputs.Select(i => nodes[i])];

    /// Whether the loss may hand output k's layer a gradient taken through its activation (a fused
    /// softmax/sigmoid cross-entropy): only if nothing else reads that output, whose other gradients
    /// would be with respect to the activation's output.
    public bool OutputIsFusable(int k) => direct[outputs[k]];

    /// Builds every layer in order: inputs first, each layer for the shapes of the nodes it reads. Each
    /// layer except the inputs gets its own stream forked from random, in this order, so the same seed
    /// gives the same weights (and Sequential's weights are the ones it always had).
    public void Build(Rng random)
    {
        for (int i = 0; i < nodes.Length; i++)
        {
            var layer = nodes[i].Layer;
            switch (layer)
            {
                case Input input:
                    input.Build(input.Shape, random);   // draws nothing
                    break;
                case MergeLayer merge:
                    merge.Build([.. inbound[i].Select(source => nodes[source].Shape)], random.Fork());
                    break;
                default:
                    layer.Build(nodes[inbound[i][0]].Shape, random.Fork());
                    break;
            }
        }
    }

    /// What one batch size needs, allocated on first use and kept.
    sealed class Workspace
    {
        public required Tensor?[] Values;            // per node; an input's is the caller's tensor, set by Forward
        public required Tensor?[] OwnValues;         // per node, the buffer allocated for it (Values may point elsewhere, see Forward)
        public required Tensor?[][] Views;           // per reshaping node, up to two views of its input's memory
        public required Tensor?[] Gradients;         // per node, dL/d(value); a direct output's is the caller's, set by Backward; null for inputs
        public required Tensor?[][] InputGradients;  // per node and input: where Backward writes dx_k (a gradient, a scratch buffer, or null)
        public required Tensor?[][] GivenGradients;  // per node and input: what this Backward passes (InputGradients, or null where not needed)
        public required Tensor[][] LayerInputs;      // per merge node: the values it reads, gathered by Forward
        public required Tensor[] Outputs;            // the values of the outputs, gathered by Forward
    }

    readonly Dictionary<int, Workspace> workspaces = [];

    /// How many batch sizes keep their workspaces before the oldest is dropped.
    internal int WorkspaceCapacity { get; set; } = 3;
    Workspace? current;
    bool lastForwardWasComplete;

    Workspace For(int batch)
    {
        if (workspaces.TryGetValue(batch, out var ws)) return ws;
        int n = nodes.Length;
        var values = new Tensor?[n];
        var gradients = new Tensor?[n];
        for (int i = 0; i < n; i++)
        {
            if (nodes[i].Layer is Input) continue;
            if (!IsView(i)) values[i] = new Tensor(nodes[i].Shape.WithBatch(batch));   // a view gets its tensor in Forward
            if (!direct[i]) gradients[i] = new Tensor(nodes[i].Shape.WithBatch(batch));
        }
        // A reshaping layer (Flatten) whose input feeds nothing else and is no output: the input's gradient
        // shares the memory of the output's, so its backward copies nothing (as its forward, a view).
        for (int i = n - 1; i >= 0; i--)
            if (SharesGradient(i))
                gradients[i] = new Tensor(nodes[i].Shape.WithBatch(batch), gradients[soleReader[i]]!.Data);
        // Scratch buffers are only written and at once added, so edges share them by shape; the inputs of
        // one merge layer are written together, so they share by (shape, input index).
        var scratch = new Dictionary<(Shape, int), Tensor>();
        var inputGradients = new Tensor?[n][];
        for (int i = 0; i < n; i++)
        {
            inputGradients[i] = new Tensor?[inbound[i].Length];
            for (int k = 0; k < inbound[i].Length; k++)
            {
                int source = inbound[i][k];
                if (nodes[source].Layer is Input) continue;   // nobody needs the gradient of an input
                if (writesFirst[i][k]) inputGradients[i][k] = gradients[source];
                else
                {
                    var key = (nodes[source].Shape, k);
                    if (!scratch.TryGetValue(key, out var buffer)) scratch[key] = buffer = new Tensor(nodes[source].Shape.WithBatch(batch));
                    inputGradients[i][k] = buffer;
                }
            }
        }
        // Keep at most the training batch, the last partial batch and an inference batch (a Predictor keeps one per batch bucket).
        if (workspaces.Count >= WorkspaceCapacity) workspaces.Remove(workspaces.First(w => w.Value != current).Key);
        return workspaces[batch] = new Workspace
        {
            Values = values,
            OwnValues = (Tensor?[])values.Clone(),
            Views = [.. nodes.Select(_ => new Tensor?[2])],
            Gradients = gradients,
            InputGradients = inputGradients,
            GivenGradients = [.. inputGradients.Select(g => new Tensor?[g.Length])],
            LayerInputs = [.. nodes.Select((node, i) => new Tensor[node.Layer is MergeLayer ? inbound[i].Length : 0])],
            Outputs = new Tensor[outputs.Length],
        };
    }

    /// Runs the layers on one batch (one tensor per input) and returns every output; with mainOnly, only
    /// the layers the main output (output 0) depends on run, and only Outputs[0] is meaningful. The
    /// returned tensors belong to the graph and are overwritten by the next call.
    public IReadOnlyList<Tensor> Forward(IReadOnlyList<Tensor> inputValues, bool training, Profiler? profiler, bool mainOnly = false)
    {
        var ws = current = For(inputValues[0].Batch);
        for (int k = 0; k < inputs.Length; k++) ws.Values[inputs[k]] = inputValues[k];
        for (int i = 0; i < nodes.Length; i++)
        {
            var layer = nodes[i].Layer;
            if (layer is Input || (mainOnly && !neededByMain[i])) continue;
            long t0 = profiler is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            if (layer is MergeLayer merge)
            {
                var xs = ws.LayerInputs[i];
                for (int k = 0; k < xs.Length; k++) xs[k] = ws.Values[inbound[i][k]]!;
                merge.Forward(xs, ws.Values[i]!, training);
            }
            else
            {
                int source = inbound[i][0];
                var x = ws.Values[source]!;
                if (fusedFrom[i] >= 0 && PoolsInto(fusedFrom[i], training))
                {
                    // Already computed by the convolution before it, which pooled its rows straight into this node's value.
                    profiler?.NoteFused(layer.Name, nodes[fusedFrom[i]].Layer.Name);
                    continue;
                }
                else if (layer is Conv2D conv && PoolsInto(i, training))
                {
                    int pool = fusedPooling[i];
                    ws.Values[pool] = ws.OwnValues[pool];
                    ws.Values[i] = ws.OwnValues[i];   // left unwritten; the backward passes are given it but do not read it
                    conv.ForwardPooled(x, ws.Values[pool]!, (MaxPooling2D)nodes[pool].Layer, training);
                }
                else if (layer.PassesThrough(training))
                    ws.Values[i] = x;   // Dropout in inference: the next layer reads the input itself, nothing is copied
                else if (layer.IsReshape && nodes[source].Layer is not Input)
                    ws.Values[i] = ViewOf(ws.Views[i], x, nodes[i].Shape);   // Flatten: the same values in a new shape
                else
                {
                    ws.Values[i] = ws.OwnValues[i];
                    layer.Forward(x, ws.Values[i]!, training);
                }
            }
            profiler?.AddForward(layer.Name, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
        }
        for (int k = 0; k < outputs.Length; k++) ws.Outputs[k] = ws.Values[outputs[k]]!;
        lastForwardWasComplete = !mainOnly || outputs.Length == 1;
        return ws.Outputs;
    }

    // A tensor of the given per-sample shape over x's memory, made once per distinct x buffer (two are
    // kept: in training and in inference the source may be different buffers) and then reused.
    static Tensor ViewOf(Tensor?[] views, Tensor x, Shape shape)
    {
        for (int v = 0; v < views.Length; v++)
            if (views[v] is { } view && ReferenceEquals(view.Data, x.Data)) return view;
        var made = new Tensor(shape.WithBatch(x.Batch), x.Data);
        views[1] = views[0];
        views[0] = made;
        return made;
    }

    /// Back-propagates dL/d(output k) = outputGradients[k] through the last Forward (which must have run
    /// every layer); each layer adds into its parameters' gradients. May overwrite outputGradients.
    public void Backward(IReadOnlyList<Tensor> outputGradients, Profiler? profiler, Action<Layer>? layerDone = null)
    {
        var ws = current ?? throw new InvalidOperationException("Backward needs a Forward first.");
        if (!lastForwardWasComplete) throw new InvalidOperationException("Backward needs a Forward that ran every output, not only the main one.");
        for (int k = 0; k < outputs.Length; k++)
        {
            int o = outputs[k];
            if (direct[o]) ws.Gradients[o] = outputGradients[k];
            else if (outputWritesFirst[k]) outputGradients[k].Data.AsSpan().CopyTo(ws.Gradients[o]!.Data);
            else Activations.AddInPlace(ws.Gradients[o]!.Data, outputGradients[k].Data);
        }
        // Which values need a gradient: those of layers with trainable weights and of everything after
        // them. Below the lowest trainable layer (a frozen base in transfer learning) backward stops.
        var needed = gradientNeeded;
        for (int i = 0; i < nodes.Length; i++)
        {
            var layer = nodes[i].Layer;
            bool need = layer is not Input && HasTrainableWeights(layer);
            foreach (var source in inbound[i]) need |= needed[source];
            needed[i] = need;
        }
        for (int i = nodes.Length - 1; i >= 0; i--)
        {
            var layer = nodes[i].Layer;
            if (layer is Input || !needed[i]) continue;
            var dy = ws.Gradients[i]!;
            var dxs = ws.InputGradients[i];
            // A ReLU convolution read only by a max pooling: the pooling zeroes the gradient where its output
            // is 0 (exactly where the ReLU's derivative at the maximum is 0), so the convolution skips its own
            // ReLU pass and never reads its large output again. Set for this call, cleared after it. Where the
            // training forward pass fused the two, so does this pass: the convolution does the pooling's part.
            if (layer is Conv2D conv) conv.ReluAppliedByNextLayer = ReluThroughPooling(i);
            else if (layer is MaxPooling2D pooling) pooling.MasksGradientByOutput = fusedFrom[i] >= 0 && ReluThroughPooling(fusedFrom[i]);
            var given = ws.GivenGradients[i];
            for (int k = 0; k < dxs.Length; k++) given[k] = needed[inbound[i][k]] ? dxs[k] : null;
            dxs = given;
            long t0 = profiler is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            if (fusedFrom[i] >= 0 && PoolsInto(fusedFrom[i], training: true))
            {
                // A pooling whose training forward pass its convolution did: the convolution's backward pass does its
                // backward pass too (Conv2D.BackwardPooled), reading this node's gradient, which stays as it is till then.
                profiler?.NoteFused(layer.Name, nodes[fusedFrom[i]].Layer.Name);
                layerDone?.Invoke(layer);
                continue;
            }
            if (layer is MergeLayer merge) merge.Backward(ws.LayerInputs[i], ws.Values[i]!, dy, dxs);
            else if (layer is Conv2D fusedConv && PoolsInto(i, training: true))
            {
                int pool = fusedPooling[i];
                fusedConv.BackwardPooled(ws.Values[inbound[i][0]]!, ws.Values[pool]!, ws.Gradients[pool]!, (MaxPooling2D)nodes[pool].Layer, dxs[0]);
            }
            else layer.Backward(ws.Values[inbound[i][0]]!, ws.Values[i]!, dy, dxs[0]);
            // The flags hold for this graph's call only: a layer called on its own afterwards computes in full.
            if (layer is Conv2D c) c.ReluAppliedByNextLayer = false;
            else if (layer is MaxPooling2D m) m.MasksGradientByOutput = false;
            // Fan-out: a gradient that did not reach its node first was written to scratch; add it.
            for (int k = 0; k < dxs.Length; k++)
                if (dxs[k] is { } dx && !writesFirst[i][k])
                    Activations.AddInPlace(ws.Gradients[inbound[i][k]]!.Data, dx.Data);
            profiler?.AddBackward(layer.Name, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
            // The layer's weight gradients are complete (a layer appears once per graph): data-parallel training starts reducing them.
            layerDone?.Invoke(layer);
        }
    }

    readonly bool[] gradientNeeded;
    readonly int[] soleReader;      // per node, the one layer that reads its value (it is no output), or -1

    // Node i's value is a view of its input's (a Flatten after a layer).
    bool IsView(int i) => nodes[i].Layer.IsReshape && nodes[inbound[i][0]].Layer is not Input;

    // Node i's gradient is the memory of the gradient of the reshaping layer that alone reads it.
    bool SharesGradient(int i) =>
        nodes[i].Layer is not Input && soleReader[i] is int j and >= 0 && nodes[j].Layer.IsReshape && !direct[j];

    bool ReluThroughPooling(int conv) => fusedPooling[conv] >= 0 && ((Conv2D)nodes[conv].Layer).Activation == Activation.Relu;

    static bool HasTrainableWeights(Layer layer)
    {
        var ps = layer.Parameters;
        for (int p = 0; p < ps.Count; p++)
            if (ps[p].Trainable) return true;
        return false;
    }

    /// Float values per sample of the buffers a training step uses: every node's output (inputs
    /// included), every gradient the graph keeps, and the scratch buffers of fan-out.
    /// A Flatten's value is a view of its input's, and its input's gradient shares the Flatten's (see For).
    public (long Activations, long Gradients, long Scratch) TrainingValuesPerSample()
    {
        long activations = 0, gradients = 0;
        for (int i = 0; i < nodes.Length; i++)
        {
            if (!IsView(i)) activations += nodes[i].Shape.LongSize;
            if (nodes[i].Layer is not Input && !direct[i] && !SharesGradient(i)) gradients += nodes[i].Shape.LongSize;
        }
        var scratch = new HashSet<(Shape, int)>();
        for (int i = 0; i < nodes.Length; i++)
            for (int k = 0; k < inbound[i].Length; k++)
                if (!writesFirst[i][k] && nodes[inbound[i][k]].Layer is not Input) scratch.Add((nodes[inbound[i][k]].Shape, k));
        return (activations, gradients, scratch.Sum(s => s.Item1.LongSize));
    }
}
