using System.Diagnostics;
using System.Globalization;
using System.Text;
using Naani.Callbacks;
using Naani.Layers;
using Naani.Losses;
using Naani.Optimizers;

namespace Naani.Models;

/// What every model shares: compile, the training loop (Fit), Evaluate, Predict, Summary and weights.
/// A subclass supplies the graph: how a batch flows forward and its gradient backward.
public abstract partial class Model
{
    protected Model(string name, int? seed)
    {
        Name = name;
        Seed = seed ?? Environment.TickCount & 0x7fffffff;
        Random = new Rng((ulong)Seed);
    }

    public string Name { get; set; }

    /// The seed every random choice (initial weights, shuffling, dropout) derives from.
    public int Seed { get; }
    protected Rng Random { get; }

    public Optimizer? Optimizer { get; private set; }
    public Loss? Loss { get; private set; }
    public IReadOnlyList<string> Metrics { get; private set; } = [];
    public bool StopTraining { get; set; }

    /// When set, training steps record time per layer (see Profiler.Report()).
    public Profiler? Profiler { get; set; }

    /// Names of the classes the outputs stand for, kept with the model when saved (null if unknown).
    public IReadOnlyList<string>? ClassNames { get; set; }

    public abstract IReadOnlyList<Layer> Layers { get; }
    public abstract Shape InputShape { get; }
    public abstract Shape OutputShape { get; }

    /// Infers every layer's shapes and creates the weights (idempotent).
    public abstract void Build();

    public Layer GetLayer(string name) => Layers.FirstOrDefault(l => l.Name == name)
        ?? throw new KeyNotFoundException($"Model '{Name}' has no layer '{name}'; it has: {string.Join(", ", Layers.Select(l => l.Name))}.");

    /// Every parameter, layer by layer (kernel, bias, ...), in GetWeights order.
    public IReadOnlyList<Parameter> Parameters
    {
        get
        {
            Build();
            return parameters ??= [.. Layers.SelectMany(l => l.Parameters)];
        }
    }
    List<Parameter>? parameters;
    public long ParameterCount => Layers.Sum(l => l.ParameterCount);
    public long TrainableParameterCount => Layers.Sum(l => l.TrainableParameterCount);

    /// y = model(x) for one batch; the returned tensor is owned by the model and reused.
    protected internal abstract Tensor ForwardBatch(Tensor x, bool training);

    /// Back-propagates dL/d(output) of the last ForwardBatch; adds into parameter gradients.
    protected internal abstract void BackwardBatch(Tensor outputGradient);

    public void Compile(Optimizer optimizer, Loss loss, params string[] metrics)
    {
        Build();
        foreach (var m in metrics)
            if (m is not ("accuracy" or "acc"))
                throw new ArgumentException($"Unknown training metric '{m}'. Fit tracks 'accuracy'; precision, recall, F1 and the confusion matrix come from Naani.Metrics after Predict.");
        Optimizer = optimizer;
        Loss = loss;
        Metrics = metrics.Length == 0 ? [] : ["accuracy"];
        var last = Layers[^1];
        foreach (var l in Layers) l.GradientIsPreActivation = false;
        last.GradientIsPreActivation = loss.FusesWith(last.OutputActivation);
    }

    public void Compile(string optimizer, string loss, params string[] metrics) => Compile(Optimizers.Optimizer.Parse(optimizer), Losses.Loss.Parse(loss), metrics);

    bool FusedLoss => Layers[^1].GradientIsPreActivation;

    /// Trains for a number of epochs on mini-batches of (x, y). validationSplit takes the last
    /// fraction of the samples (before shuffling), as Keras does.
    public History Fit(Tensor x, Tensor y, int batchSize = 32, int epochs = 1,
        (Tensor X, Tensor Y)? validationData = null, double validationSplit = 0, bool shuffle = true,
        IEnumerable<Callback>? callbacks = null)
    {
        if (Optimizer is null || Loss is null) throw new InvalidOperationException($"Model '{Name}' must be compiled before Fit: call Compile(optimizer, loss, metrics).");
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"Batch size must be positive; got {batchSize}.");
        if (epochs < 0) throw new ArgumentOutOfRangeException(nameof(epochs), $"Epochs must be at least 0; got {epochs}.");
        if (!(validationSplit >= 0 && validationSplit < 1)) throw new ArgumentOutOfRangeException(nameof(validationSplit), $"Validation split must be in [0, 1); got {validationSplit}.");
        CheckData(x, y, "training");
        int total = x.Batch;
        if (validationData is null && validationSplit > 0)
        {
            int nVal = (int)(total * validationSplit);
            if (nVal == 0 || nVal == total) throw new ArgumentException($"Validation split {validationSplit} of {total} samples leaves no training or no validation data.");
            validationData = (x.SliceBatch(total - nVal, nVal), y.SliceBatch(total - nVal, nVal));
            total -= nVal;
        }
        if (validationData is { } vd) CheckData(vd.X, vd.Y, "validation");

        var list = callbacks?.ToList() ?? [];
        foreach (var c in list) c.Model = this;
        int steps = (total + batchSize - 1) / batchSize;
        var history = new History();
        var shuffleRng = Random.Fork();
        var order = Enumerable.Range(0, total).ToArray();
        var xb = BatchTensor(x, batchSize);
        var yb = BatchTensor(y, batchSize);
        Tensor? xr = null, yr = null;
        int rest = total % batchSize;
        if (rest != 0) { xr = BatchTensor(x, rest); yr = BatchTensor(y, rest); }

        StopTraining = false;
        foreach (var c in list) c.OnTrainBegin(new TrainingInfo(epochs, steps, total, batchSize, validationData?.X.Batch ?? 0));
        for (int epoch = 0; epoch < epochs && !StopTraining; epoch++)
        {
            foreach (var c in list) c.OnEpochBegin(epoch);
            if (shuffle) shuffleRng.Shuffle(order);
            var clock = Stopwatch.StartNew();
            double lossSum = 0;
            long correct = 0;
            int seen = 0;
            for (int step = 0; step < steps; step++)
            {
                int start = step * batchSize, count = Math.Min(batchSize, total - start);
                var (bx, by) = count == batchSize ? (xb, yb) : (xr!, yr!);
                x.GatherSamples(order.AsSpan(start, count), bx);
                y.GatherSamples(order.AsSpan(start, count), by);
                var (loss, right) = TrainStep(bx, by);
                lossSum += loss * count;
                correct += right;
                seen += count;
                var progress = new BatchProgress(epoch, step + 1, steps, seen, lossSum / seen, (double)correct / seen, clock.Elapsed.TotalSeconds);
                foreach (var c in list) c.OnBatchEnd(progress);
            }
            double seconds = clock.Elapsed.TotalSeconds;
            var logs = new Dictionary<string, double> { ["loss"] = lossSum / seen };
            if (Metrics.Count > 0) logs["accuracy"] = (double)correct / seen;
            if (validationData is { } v)
            {
                var val = Evaluate(v.X, v.Y, batchSize);
                foreach (var (key, value) in val) logs["val_" + key] = value;
            }
            logs["images_per_second"] = seen / seconds;
            logs["seconds"] = seconds;
            history.Add(logs);
            foreach (var c in list) c.OnEpochEnd(epoch, logs);
        }
        foreach (var c in list) c.OnTrainEnd();
        return history;
    }

    /// One optimization step on one batch; returns the batch's mean loss and its correct predictions.
    public (double Loss, int Correct) TrainStep(Tensor x, Tensor y)
    {
        if (Optimizer is null || Loss is null) throw new InvalidOperationException($"Model '{Name}' must be compiled before training.");
        var ps = Parameters;
        for (int i = 0; i < ps.Count; i++) ps[i].Gradient.Clear();
        var output = ForwardBatch(x, training: true);
        var grad = GradientBuffer(output);
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        double loss = Loss.Compute(output, y, grad, FusedLoss);
        if (!double.IsFinite(loss))
            throw new InvalidOperationException($"The loss became {loss} at step {Optimizer.Iterations + 1}: training diverged. Lower the learning rate or check the data for NaN/Inf values.");
        int correct = CountCorrect(output, y);
        long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
        BackwardBatch(grad);
        long t2 = System.Diagnostics.Stopwatch.GetTimestamp();
        Optimizer.Step(ps);
        if (Profiler is { } profiler)
        {
            profiler.LossTicks += t1 - t0;
            profiler.OptimizerTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t2;
            profiler.Steps++;
        }
        return (loss, correct);
    }

    readonly Dictionary<int, Tensor> gradientBuffers = [];
    Tensor GradientBuffer(Tensor output)
    {
        if (!gradientBuffers.TryGetValue(output.Batch, out var g) || g.Shape != output.Shape)
            gradientBuffers[output.Batch] = g = new Tensor(output.Shape);
        return g;
    }

    /// Mean loss (and accuracy if compiled with it) over (x, y), in inference mode.
    public Dictionary<string, double> Evaluate(Tensor x, Tensor y, int batchSize = 32)
    {
        if (Loss is null) throw new InvalidOperationException($"Model '{Name}' must be compiled before Evaluate.");
        CheckData(x, y, "evaluation");
        double lossSum = 0;
        long correct = 0;
        ForEachBatch(x, batchSize, (start, output) =>
        {
            var yb = y.SliceBatch(start, output.Batch);
            lossSum += Loss.Compute(output, yb, null) * output.Batch;
            correct += CountCorrect(output, yb);
        });
        var result = new Dictionary<string, double> { ["loss"] = lossSum / x.Batch };
        if (Metrics.Count > 0) result["accuracy"] = (double)correct / x.Batch;
        return result;
    }

    /// The model's outputs for every sample of x, in inference mode (dropout off).
    public Tensor Predict(Tensor x, int batchSize = 32)
    {
        Build();
        CheckInputs(x, "prediction");
        var result = new Tensor(OutputShape.WithBatch(x.Batch));
        ForEachBatch(x, batchSize, (start, output) => output.Data.AsSpan().CopyTo(result.Data.AsSpan(start * output.SampleSize)));
        return result;
    }

    void ForEachBatch(Tensor x, int batchSize, Action<int, Tensor> body)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"Batch size must be positive; got {batchSize}.");
        Build();
        var xb = BatchTensor(x, Math.Min(batchSize, x.Batch));
        for (int start = 0; start < x.Batch; start += batchSize)
        {
            int count = Math.Min(batchSize, x.Batch - start);
            var bx = count == xb.Batch ? xb : BatchTensor(x, count);
            x.Data.AsSpan(start * x.SampleSize, count * x.SampleSize).CopyTo(bx.Data);
            body(start, ForwardBatch(bx, training: false));
        }
    }

    static Tensor BatchTensor(Tensor like, int batch)
    {
        var dims = like.Shape.ToArray();
        dims[0] = batch;
        return new Tensor(new Shape(dims));
    }

    /// Correct predictions: argmax for several outputs (labels one-hot or sparse), p >= 0.5 for one sigmoid output.
    int CountCorrect(Tensor output, Tensor y)
    {
        if (Metrics.Count == 0) return 0;
        int n = output.Batch, classes = output.SampleSize, correct = 0;
        bool sparse = y.Length == n && classes > 1;
        for (int r = 0; r < n; r++)
        {
            var row = output.Data.AsSpan(r * classes, classes);
            if (classes == 1)
            {
                bool predicted = FusedLoss || Layers[^1].OutputActivation == Activation.Sigmoid ? row[0] >= 0.5f : row[0] >= 0f;
                if (predicted == (y.Data[r] >= 0.5f)) correct++;
                continue;
            }
            int best = 0;
            for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
            int label;
            if (sparse) label = (int)y.Data[r];
            else
            {
                var t = y.Data.AsSpan(r * classes, classes);
                label = 0;
                for (int c = 1; c < classes; c++) if (t[c] > t[label]) label = c;
            }
            if (best == label) correct++;
        }
        return correct;
    }

    void CheckInputs(Tensor x, string what)
    {
        var shape = InputShape;
        bool ok = x.Rank == shape.Rank + 1;
        for (int i = 0; ok && i < shape.Rank; i++) ok = x.Shape[i + 1] == shape[i];
        if (!ok)
            throw new ArgumentException($"Model '{Name}' expects {what} inputs of shape {shape.ToKerasString()}; got {x.Shape}.");
    }

    void CheckData(Tensor x, Tensor y, string what)
    {
        Build();
        CheckInputs(x, what);
        if (y.Rank == 0 || y.Batch != x.Batch)
            throw new ArgumentException($"The {what} data has {x.Batch} inputs but labels of shape {y.Shape}: the first axes must match.");
    }

    /// Copies of all weights, layer by layer (kernel, bias, ...), as Keras's get_weights.
    public List<Tensor> GetWeights()
    {
        Build();
        return [.. Parameters.Select(p => p.Value.Clone())];
    }

    /// Sets all weights from a list in GetWeights order; every shape must match.
    public void SetWeights(IReadOnlyList<Tensor> weights)
    {
        Build();
        var ps = Parameters;
        if (weights.Count != ps.Count)
            throw new ArgumentException($"Model '{Name}' has {ps.Count} weight tensors; {weights.Count} were given.");
        for (int i = 0; i < ps.Count; i++)
        {
            if (weights[i].Shape != ps[i].Shape)
                throw new ArgumentException($"Weight {i} ({ps[i].FullName}) has shape {ps[i].Shape}; the given tensor has {weights[i].Shape}.");
            weights[i].Data.AsSpan().CopyTo(ps[i].Value.Data);
        }
    }

    /// Saves architecture, weights, class names, compile settings and (by default) the optimizer's state; see docs/FORMAT.md.
    public void Save(string path, bool includeOptimizer = true) => Serialization.ModelFile.Save(this, path, includeOptimizer);

    /// Loads a model written by Save, built and, if it was compiled, compiled again.
    public static Model Load(string path) => Serialization.ModelFile.Load(path);

    /// Keras's summary table: Layer (type) | Output Shape | Param #, then the totals.
    public string Summary()
    {
        Build();
        var rows = Layers.Where(l => l is not Input)
            .Select(l => (Name: $"{l.Name} ({l.TypeName})", Shape: l.OutputShape.ToKerasString(), Params: l.ParameterCount.ToString("N0", CultureInfo.InvariantCulture)))
            .ToList();
        int w0 = Math.Max(29, rows.Max(r => r.Name.Length) + 3);
        int w1 = Math.Max(26, rows.Max(r => r.Shape.Length) + 3);
        int w2 = Math.Max(10, rows.Max(r => r.Params.Length) + 1);
        int width = w0 + w1 + w2;
        var sb = new StringBuilder();
        sb.AppendLine($"Model: \"{Name}\"");
        sb.AppendLine(new string('_', width));
        sb.AppendLine(" Layer (type)".PadRight(w0) + "Output Shape".PadRight(w1) + "Param #".PadRight(w2));
        sb.AppendLine(new string('=', width));
        for (int i = 0; i < rows.Count; i++)
        {
            sb.AppendLine((" " + rows[i].Name).PadRight(w0) + rows[i].Shape.PadRight(w1) + rows[i].Params.PadRight(w2));
            if (i < rows.Count - 1) sb.AppendLine();
        }
        sb.AppendLine(new string('=', width));
        long total = ParameterCount, trainable = TrainableParameterCount;
        sb.AppendLine($"Total params: {total.ToString("N0", CultureInfo.InvariantCulture)}");
        sb.AppendLine($"Trainable params: {trainable.ToString("N0", CultureInfo.InvariantCulture)}");
        sb.AppendLine($"Non-trainable params: {(total - trainable).ToString("N0", CultureInfo.InvariantCulture)}");
        sb.AppendLine(new string('_', width));
        return sb.ToString();
    }
}
