using System.Diagnostics;
using Naani.Callbacks;
using Naani.Data;
using Naani.Distributed;
using Naani.Kernels;
using Naani.Layers;
using Naani.Losses;
using Naani.Optimizers;

namespace Naani.Models;

/// What every model shares: compile, the training loop (Fit), Evaluate, Predict, Summary and weights.
/// A subclass supplies the graph: how a batch flows forward and its gradient backward. Sequential and
/// Functional both run on Graph; a model may have several inputs and several outputs, the first
/// output being the main one (Predict returns it, "accuracy" measures it, auxiliary outputs only
/// add their weighted losses to training, as GoogLeNet's auxiliary classifiers do).
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

    /// The model's own stream (Random), for checkpoints.
    internal Rng RandomGenerator => Random;

    public Optimizer? Optimizer { get; private set; }

    /// The main output's loss (null before Compile).
    public Loss? Loss => Losses.Count == 0 ? null : Losses[0];

    /// One loss per output, in output order.
    public IReadOnlyList<Loss> Losses { get; private set; } = [];

    /// The weight of each output's loss in the total that training minimizes: total = sum_k w_k loss_k.
    public IReadOnlyList<double> LossWeights { get; private set; } = [];

    public IReadOnlyList<string> Metrics { get; private set; } = [];
    public bool StopTraining { get; set; }

    /// When set, training steps record time per layer (see Profiler.Report()).
    public Profiler? Profiler { get; set; }

    /// Names of the classes the outputs stand for, kept with the model when saved (null if unknown).
    public IReadOnlyList<string>? ClassNames { get; set; }

    /// How images became inputs when the model was trained, kept with the model so that a Predictor or a server
    /// turns an image file into the same values (null: values in [0, 1], resized to the input, no crop).
    public ImagePreprocessing? Preprocessing { get; set; }

    public abstract IReadOnlyList<Layer> Layers { get; }

    /// The (first) input's per-sample shape.
    public abstract Shape InputShape { get; }

    /// The main (first) output's per-sample shape.
    public abstract Shape OutputShape { get; }

    /// Every input's shape, in the order Fit, Evaluate and Predict take the input tensors.
    public virtual IReadOnlyList<Shape> InputShapes => [InputShape];

    /// Every output's shape, in the order of Compile's losses; the first is the main output.
    public virtual IReadOnlyList<Shape> OutputShapes => [OutputShape];

    /// The layer that computes each output.
    public virtual IReadOnlyList<Layer> OutputLayers => [Layers[^1]];

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
    public long ParameterCount
    {
        get
        {
            Build();
            return Layers.Sum(l => l.ParameterCount);
        }
    }

    public long TrainableParameterCount
    {
        get
        {
            Build();
            return Layers.Sum(l => l.TrainableParameterCount);
        }
    }

    /// y = model(x) for one batch of a single-input model: the main output. The returned tensor is
    /// owned by the model and reused.
    protected internal abstract Tensor ForwardBatch(Tensor x, bool training);

    /// Back-propagates dL/d(output) of the last ForwardBatch of a single-output model; adds into parameter gradients.
    protected internal abstract void BackwardBatch(Tensor outputGradient);

    /// Every output for one batch, given one tensor per input. With mainOutputOnly, a model may compute
    /// only what the main output needs (inference), and only element 0 is meaningful. The tensors are
    /// owned by the model and reused. This default serves models with one input and one output.
    protected internal virtual IReadOnlyList<Tensor> ForwardBatch(IReadOnlyList<Tensor> inputs, bool training, bool mainOutputOnly = false)
    {
        singleOutput[0] = ForwardBatch(inputs[0], training);
        return singleOutput;
    }
    readonly Tensor[] singleOutput = new Tensor[1];

    /// Back-propagates dL/d(output k) = outputGradients[k] of the last ForwardBatch; adds into parameter gradients.
    protected internal virtual void BackwardBatch(IReadOnlyList<Tensor> outputGradients) => BackwardBatch(outputGradients[0]);

    /// Whether output k's gradient may be taken through its activation by the loss (nothing else reads that output).
    private protected virtual bool OutputIsFusable(int output) => true;

    public void Compile(Optimizer optimizer, Loss loss, params string[] metrics) => Compile(optimizer, [loss], null, metrics);

    public void Compile(string optimizer, string loss, params string[] metrics) => Compile(Optimizers.Optimizer.Parse(optimizer), Naani.Losses.Loss.Parse(loss), metrics);

    /// One loss for every output, weighted: GoogLeNet's total = loss1 + 0.3 loss2 + 0.3 loss3 is
    /// Compile(optimizer, loss, lossWeights: [1, 0.3, 0.3], "accuracy").
    public void Compile(Optimizer optimizer, Loss loss, IReadOnlyList<double>? lossWeights, params string[] metrics) =>
        Compile(optimizer, [loss], lossWeights, metrics);

    /// One loss per output (or one for all), with the weights of their sum (default: all 1). Metrics
    /// ("accuracy") measure the main output.
    public void Compile(Optimizer optimizer, IReadOnlyList<Loss> losses, IReadOnlyList<double>? lossWeights, params string[] metrics)
    {
        Build();
        foreach (var m in metrics)
            if (m is not ("accuracy" or "acc"))
                throw new ArgumentException($"Unknown training metric '{m}'. Fit tracks 'accuracy'; precision, recall, F1 and the confusion matrix come from Naani.Metrics after Predict.");
        int outputs = OutputShapes.Count;
        string names = string.Join(", ", OutputLayers.Select(l => l.Name));
        if (losses.Count != 1 && losses.Count != outputs)
            throw new ArgumentException($"Model '{Name}' has {outputs} outputs ({names}); give one loss for all of them or one per output, not {losses.Count}.");
        if (lossWeights is not null && lossWeights.Count != outputs)
            throw new ArgumentException($"Model '{Name}' has {outputs} outputs ({names}); give one loss weight per output, not {lossWeights.Count}.");
        if (lossWeights is not null && lossWeights.Any(w => !(w >= 0 && double.IsFinite(w))))
            throw new ArgumentException($"Loss weights must be finite and at least 0; got [{string.Join(", ", lossWeights)}].");
        Optimizer = optimizer;
        Losses = losses.Count == outputs ? [.. losses] : [.. Enumerable.Repeat(losses[0], outputs)];
        LossWeights = lossWeights is null ? [.. Enumerable.Repeat(1.0, outputs)] : [.. lossWeights];
        Metrics = metrics.Length == 0 ? [] : ["accuracy"];
        foreach (var l in Layers) l.GradientIsPreActivation = false;
        fused = new bool[outputs];
        mainActivation = OutputLayers[0].OutputActivation;
        for (int k = 0; k < outputs; k++)
        {
            var layer = OutputLayers[k];
            fused[k] = OutputIsFusable(k) && Losses[k].FusesWith(layer.OutputActivation);
            layer.GradientIsPreActivation = fused[k];
        }
        outputLosses = new double[outputs];
        outputGradients = new Tensor[outputs];
        targetsPerOutput = new Tensor[outputs];
    }

    public void Compile(string optimizer, IReadOnlyList<string> losses, IReadOnlyList<double>? lossWeights, params string[] metrics) =>
        Compile(Optimizers.Optimizer.Parse(optimizer), [.. losses.Select(Naani.Losses.Loss.Parse)], lossWeights, metrics);

    // Per output, set by Compile: whether the loss hands the layer its gradient through the activation.
    bool[] fused = [];
    Activation mainActivation;

    /// The names of the outputs (their layers' names), which prefix their losses in Fit's and Evaluate's logs.
    public IReadOnlyList<string> OutputNames => [.. OutputLayers.Select(l => l.Name)];

    /// Trains for a number of epochs on mini-batches of (x, y). validationSplit takes the last
    /// fraction of the samples (before shuffling), as Keras does. For a model with several outputs,
    /// y is the target of every output (GoogLeNet's auxiliary classifiers learn the same labels).
    public History Fit(Tensor x, Tensor y, int batchSize = 32, int epochs = 1,
        (Tensor X, Tensor Y)? validationData = null, double validationSplit = 0, bool shuffle = true,
        IEnumerable<Callback>? callbacks = null, ICommunicator? distributed = null) =>
        Fit([x], [y], batchSize, epochs, validationData is { } v ? ([v.X], [v.Y]) : null, validationSplit, shuffle, callbacks, distributed);

    /// Fit for several inputs or outputs: x holds one tensor per input; y one per output, or one for all.
    /// The logs hold the total loss ("loss"), the main output's accuracy and, with several outputs,
    /// each output's loss ("{output layer}_loss").
    /// With distributed (a communicator whose ranks all call Fit with the same data and arguments), training is
    /// synchronous data-parallel: batchSize is each rank's share of a global batch of Size x batchSize samples, the
    /// gradients are averaged across ranks, validation is split across them, and only rank 0's callbacks that write
    /// files (ModelCheckpoint, BackupAndRestore) save anything. See Model.Distributed.cs and docs/DISTRIBUTED.md.
    public History Fit(IReadOnlyList<Tensor> x, IReadOnlyList<Tensor> y, int batchSize = 32, int epochs = 1,
        (IReadOnlyList<Tensor> X, IReadOnlyList<Tensor> Y)? validationData = null, double validationSplit = 0, bool shuffle = true,
        IEnumerable<Callback>? callbacks = null, ICommunicator? distributed = null)
    {
        if (Optimizer is null || Loss is null) throw new InvalidOperationException($"Model '{Name}' must be compiled before Fit: call Compile(optimizer, loss, metrics).");
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"Batch size must be positive; got {batchSize}.");
        if (epochs < 0) throw new ArgumentOutOfRangeException(nameof(epochs), $"Epochs must be at least 0; got {epochs}.");
        if (!(validationSplit >= 0 && validationSplit < 1)) throw new ArgumentOutOfRangeException(nameof(validationSplit), $"Validation split must be in [0, 1); got {validationSplit}.");
        CheckData(x, y, "training");
        int total = x[0].Batch;
        if (validationData is null && validationSplit > 0)
        {
            int nVal = (int)(total * validationSplit);
            if (nVal == 0 || nVal == total) throw new ArgumentException($"Validation split {validationSplit} of {total} samples leaves no training or no validation data.");
            int start = total - nVal;
            validationData = ([.. x.Select(t => t.SliceBatch(start, nVal))], [.. y.Select(t => t.SliceBatch(start, nVal))]);
            total -= nVal;
        }
        if (validationData is { } vd) CheckData(vd.X, vd.Y, "validation");

        int size = distributed?.Size ?? 1, rank = distributed?.Rank ?? 0;
        if ((long)batchSize * size > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(batchSize), $"A global batch of {size} ranks x {batchSize} samples is too large.");
        int globalBatch = batchSize * size;
        int steps = (total + globalBatch - 1) / globalBatch;
        var shuffleRng = Random.Fork();
        var order = Enumerable.Range(0, total).ToArray();
        // Two sets of batch tensors: the step trains on one while a background thread gathers the next batch into the other.
        Tensor[][] xb = [[.. x.Select(t => BatchTensor(t, batchSize))], [.. x.Select(t => BatchTensor(t, batchSize))]];
        Tensor[][] yb = [[.. y.Select(t => BatchTensor(t, batchSize))], [.. y.Select(t => BatchTensor(t, batchSize))]];
        Tensor[]? xr = null, yr = null;
        // This rank's slice of the last global batch, which may be short (every other batch gives each rank batchSize samples).
        var (_, rest) = Shard(total - (steps - 1) * globalBatch, rank, size);
        if (rest != batchSize && rest > 0) { xr = [.. x.Select(t => BatchTensor(t, rest))]; yr = [.. y.Select(t => BatchTensor(t, rest))]; }

        // Step's global batch count, this rank's offset in it and its count, and the tensors that hold its samples.
        (Tensor[] X, Tensor[] Y, int Count, int GlobalCount, int Offset) Slot(int step, int slot)
        {
            int globalCount = Math.Min(globalBatch, total - step * globalBatch);
            var (offset, count) = Shard(globalCount, rank, size);
            return count == batchSize || count == 0 ? (xb[slot], yb[slot], count, globalCount, offset) : (xr!, yr!, count, globalCount, offset);
        }

        // A data-parallel run is described by its global batch: a checkpoint of it resumes on any number of ranks (or one
        // process) that keeps that global batch.
        var info = new TrainingInfo(epochs, steps, total, globalBatch, validationData?.X[0].Batch ?? 0);
        int trainSamples = total;
        var run = NewRun(info, callbacks,
            () => DataFingerprint.Of([.. x.Select(t => (t, trainSamples)), .. y.Select(t => (t, trainSamples))]),
            $"{trainSamples} training samples of {string.Join(" and ", x.Select(t => string.Join("x", t.Shape.ToArray()[1..])))}");
        run.ShuffleRandom = shuffleRng;
        run.Order = order;

        // The samples of one epoch from firstStep on, shuffled at the epoch's start (a run resumed in the middle of an
        // epoch has that epoch's order back), gathered one step ahead into the same batch tensors every epoch.
        IEnumerable<TrainingBatch> Batches(int epoch, int firstStep)
        {
            // A restored checkpoint may have replaced the generator and the order.
            var (random, samples) = (run.ShuffleRandom!, run.Order!);
            if (shuffle && firstStep == 0) random.Shuffle(samples);
            if (firstStep >= steps) yield break;
            using var prefetch = new Prefetcher(steps - firstStep, (i, slot) =>
            {
                int step = firstStep + i;
                var (bx, by, count, _, offset) = Slot(step, slot);
                if (count == 0) return;
                var indices = samples.AsSpan(step * globalBatch + offset, count);
                for (int j = 0; j < x.Count; j++) x[j].GatherSamples(indices, bx[j]);
                for (int j = 0; j < y.Count; j++) y[j].GatherSamples(indices, by[j]);
            });
            for (int step = firstStep; step < steps; step++)
            {
                var (bx, by, count, globalCount, offset) = Slot(step, prefetch.Next());
                yield return new TrainingBatch(bx, by, count, globalCount, offset);
            }
        }

        if (distributed is null)
        {
            Func<Dictionary<string, double>>? validate = validationData is { } v ? () => Evaluate(v.X, v.Y, batchSize) : null;
            return RunEpochs(run, Batches, validate);
        }
        run.Communicator = distributed;
        BeginDataParallel(distributed, shuffleRng);
        try
        {
            Func<Dictionary<string, double>>? validate = validationData is { } v ? () => EvaluateDataParallel(v.X, v.Y, batchSize) : null;
            return RunEpochs(run, Batches, validate);
        }
        finally
        {
            EndDataParallel();
        }
    }

    /// One batch of an epoch: a tensor per input, the targets (one per output, or one for all) and the sample count;
    /// in data-parallel training, the global batch's count and this rank's first sample in it.
    protected readonly record struct TrainingBatch(IReadOnlyList<Tensor> X, IReadOnlyList<Tensor> Y, int Count, int GlobalCount, int Offset)
    {
        public TrainingBatch(IReadOnlyList<Tensor> x, IReadOnlyList<Tensor> y, int count) : this(x, y, count, count, 0) { }
    }

    /// What to do when a step's loss or gradient is NaN or infinite and no callback decides (TerminateOnNaN does):
    /// Stop (the default) ends Fit with a NonFiniteTrainingException that names the epoch, the step and the first
    /// layer whose gradient went non-finite; the weights are those before that step.
    public NonFiniteAction OnNonFinite { get; set; } = NonFiniteAction.Stop;

    /// The Fit in progress (null outside Fit): what a checkpoint saves and restores.
    public TrainingRun? CurrentRun { get; private set; }

    /// A run for this Fit's callbacks, BackupAndRestore moved last so that what it saves includes the others' state.
    private protected TrainingRun NewRun(TrainingInfo info, IEnumerable<Callback>? callbacks, Func<string> fingerprint, string description)
    {
        var list = callbacks?.ToList() ?? [];
        list = [.. list.Where(c => c is not BackupAndRestore), .. list.Where(c => c is BackupAndRestore)];
        return new TrainingRun(info, OutputShapes.Count, list, fingerprint, description);
    }

    /// The epoch loop every Fit shares: callbacks, the running loss and accuracy, each output's loss,
    /// validation after the epoch, the history, and the guard against non-finite steps. It starts where
    /// run stands, which a callback (BackupAndRestore) may move in OnTrainBegin by restoring a checkpoint;
    /// batchesOfEpoch(epoch, firstStep) gives an epoch's batches from step firstStep on.
    private protected History RunEpochs(TrainingRun run, Func<int, int, IEnumerable<TrainingBatch>> batchesOfEpoch,
        Func<Dictionary<string, double>>? validate)
    {
        var info = run.Info;
        var list = run.Callbacks;
        foreach (var c in list) c.Model = this;
        int outputs = OutputShapes.Count;
        var names = OutputNames;

        StopTraining = false;
        CurrentRun = run;
        try
        {
            foreach (var c in list) c.OnTrainBegin(info);
            if (run.Stopped) StopTraining = true;
            bool ended = false;
            while (run.Epoch < info.Epochs && !StopTraining && !ended)
            {
                int epoch = run.Epoch;
                if (run.Step == 0) run.StartEpoch();
                foreach (var c in list) c.OnEpochBegin(epoch);
                var clock = Stopwatch.StartNew();
                double secondsBefore = run.EpochSeconds;
                NonFiniteStep? lastSkipped = null;
                foreach (var batch in batchesOfEpoch(epoch, run.Step))
                {
                    var (loss, right, bad) = dataParallel is null ? GuardedStep(batch.X, batch.Y)
                        : DataParallelStep(batch.X, batch.Y, batch.Count, batch.GlobalCount, batch.Offset);
                    if (bad is not null)
                    {
                        var detail = bad with { Epoch = epoch, Step = run.Step + 1 };
                        var action = list.Select(c => c.OnNonFinite(detail)).FirstOrDefault(a => a is not null) ?? OnNonFinite;
                        string? poisoned = null;
                        if (action == NonFiniteAction.SkipBatch && detail.WeightsIntact && NonTrainableWeightsAreFinite(out poisoned))
                        {
                            run.SkippedBatches++;
                            run.Step++;
                            lastSkipped = detail;
                            continue;
                        }
                        if (action == NonFiniteAction.EndTraining)
                        {
                            ended = true;
                            break;
                        }
                        if (action == NonFiniteAction.SkipBatch)
                            detail = detail with
                            {
                                Reason = detail.WeightsIntact
                                    ? $"{detail.Reason}; the batch could not be skipped: it left {poisoned} non-finite (moving statistics are updated in the forward pass)"
                                    : $"{detail.Reason}; the batch could not be skipped: its update was already applied",
                            };
                        throw new NonFiniteTrainingException(detail, run.History);
                    }
                    run.LossSum += loss * batch.GlobalCount;
                    for (int k = 0; k < outputs; k++) run.OutputLossSums[k] += outputLosses[k] * batch.GlobalCount;
                    run.Correct += right;
                    run.Seen += batch.GlobalCount;
                    run.Step++;
                    run.EpochSeconds = secondsBefore + clock.Elapsed.TotalSeconds;
                    var progress = new BatchProgress(epoch, run.Step, Math.Max(info.StepsPerEpoch, run.Step), run.Seen,
                        run.LossSum / run.Seen, (double)run.Correct / run.Seen, run.EpochSeconds);
                    foreach (var c in list) c.OnBatchEnd(progress);
                }
                if (run.Seen == 0)
                {
                    if (ended) break;
                    if (lastSkipped is not null)
                        throw new NonFiniteTrainingException(lastSkipped with { Reason = $"every batch of the epoch was skipped as non-finite, the last because {lastSkipped.Reason}" }, run.History);
                    throw new InvalidOperationException($"Epoch {epoch + 1} had no training samples.");
                }
                double seconds = secondsBefore + clock.Elapsed.TotalSeconds;
                var logs = new Dictionary<string, double> { ["loss"] = run.LossSum / run.Seen };
                if (Metrics.Count > 0) logs["accuracy"] = (double)run.Correct / run.Seen;
                if (outputs > 1)
                    for (int k = 0; k < outputs; k++) logs[$"{names[k]}_loss"] = run.OutputLossSums[k] / run.Seen;
                if (dataParallel is not null) CheckRanksAgree(epoch);
                if (validate is not null)
                    foreach (var (key, value) in validate()) logs["val_" + key] = value;
                if (OnNonFinite == NonFiniteAction.SkipBatch) logs["skipped_batches"] = run.SkippedBatches;
                logs["images_per_second"] = run.Seen / seconds;
                logs["seconds"] = seconds;
                run.History.Add(logs);
                // The state after an epoch is the next epoch's start, which a checkpoint taken in OnEpochEnd records.
                run.Epoch++;
                run.StartEpoch();
                foreach (var c in list) c.OnEpochEnd(epoch, logs);
            }
            foreach (var c in list) c.OnTrainEnd();
            return run.History;
        }
        finally
        {
            CurrentRun = null;
        }
    }

    /// One optimization step on one batch; returns the batch's mean loss (the weighted total, for
    /// several outputs) and the main output's correct predictions. A NaN or infinite loss or gradient
    /// throws a NonFiniteTrainingException before the optimizer changes any weight.
    public (double Loss, int Correct) TrainStep(Tensor x, Tensor y)
    {
        singleInput[0] = x;
        singleTarget[0] = y;
        return TrainStep(singleInput, singleTarget);
    }
    readonly Tensor[] singleInput = new Tensor[1], singleTarget = new Tensor[1];

    /// TrainStep for several inputs (one tensor each) and outputs (one target each, or one for all).
    public (double Loss, int Correct) TrainStep(IReadOnlyList<Tensor> x, IReadOnlyList<Tensor> y)
    {
        var (loss, correct, bad) = GuardedStep(x, y);
        if (bad is not null) throw new NonFiniteTrainingException(bad with { Epoch = -1, Step = (int)Math.Min(int.MaxValue, Optimizer!.Iterations + 1) }, null);
        return (loss, correct);
    }

    /// The step: forward, loss, backward, and the optimizer's update only when the loss and every gradient are
    /// finite; otherwise what went wrong (epoch and step left for the caller to fill in).
    (double Loss, int Correct, NonFiniteStep? Bad) GuardedStep(IReadOnlyList<Tensor> x, IReadOnlyList<Tensor> y)
    {
        using var exclusive = ExclusiveUse();
        if (Optimizer is null || Loss is null) throw new InvalidOperationException($"Model '{Name}' must be compiled before training.");
        var targets = TargetsPerOutput(y);
        var ps = Parameters;
        for (int i = 0; i < ps.Count; i++) ps[i].ResetGradient();
        var outputs = ForwardBatch(x, training: true);
        long t0 = Stopwatch.GetTimestamp();
        double total = 0;
        for (int k = 0; k < outputs.Count; k++)
        {
            var grad = outputGradients[k] = GradientBuffer(k, outputs[k]);
            double loss = Losses[k].Compute(outputs[k], targets[k], grad, fused[k]);
            if (!double.IsFinite(loss))
            {
                string output = outputs.Count > 1 ? $" of output '{OutputNames[k]}'" : "";
                return (loss, 0, new NonFiniteStep(0, 0, $"the loss{output} became {loss}", null, null, loss));
            }
            double weight = LossWeights[k];
            if (weight != 1)
            {
                float w = (float)weight;
                var g = grad.Data;
                for (int i = 0; i < g.Length; i++) g[i] *= w;
            }
            outputLosses[k] = loss;
            total += weight * loss;
        }
        int correct = CountCorrect(outputs[0], targets[0]);
        long t1 = Stopwatch.GetTimestamp();
        BackwardBatch(outputGradients);
        if (FirstNonFiniteGradient(ps, total) is { } badGradient) return (total, correct, badGradient);
        long t2 = Stopwatch.GetTimestamp();
        Optimizer.Step(ps);
        if (NonFiniteUpdate(total) is { } badUpdate) return (total, correct, badUpdate);
        if (Profiler is { } profiler)
        {
            profiler.LossTicks += t1 - t0;
            profiler.OptimizerTicks += Stopwatch.GetTimestamp() - t2;
            profiler.Steps++;
        }
        return (total, correct, null);
    }

    /// The first parameter whose gradient is NaN or infinite, as a step's verdict. Parameters are in layer order, so from
    /// the last one back is the order backward produced their gradients: the first found is where the problem started.
    static NonFiniteStep? FirstNonFiniteGradient(IReadOnlyList<Parameter> ps, double loss)
    {
        for (int i = ps.Count - 1; i >= 0; i--)
            if (!Finite.All(ps[i].Gradient.Data))
            {
                var p = ps[i];
                return new NonFiniteStep(0, 0,
                    $"the gradient of layer '{p.Owner.Name}' (weight {p.FullName}) went non-finite, the first layer in backward order to do so (the loss was {loss:G6})",
                    p.Owner.Name, p.FullName, loss);
            }
        return null;
    }

    /// After the optimizer's step: the weight its update made non-finite, as a step's verdict (the weights are changed).
    NonFiniteStep? NonFiniteUpdate(double loss) => Optimizer!.FirstNonFiniteWeight is { } overflowed
        ? new NonFiniteStep(0, 0,
            $"the update made weight {overflowed.FullName} of layer '{overflowed.Owner.Name}' non-finite (its gradient was finite: the learning rate is too large for it)",
            overflowed.Owner.Name, overflowed.FullName, loss, WeightsIntact: false)
        : null;

    /// Whether every non-trainable weight (batch normalization's moving statistics) is finite; names the first that is not.
    bool NonTrainableWeightsAreFinite(out string? first)
    {
        foreach (var p in Parameters)
            if (!p.TrainableByKind && !Finite.All(p.Value.Data))
            {
                first = p.FullName;
                return false;
            }
        first = null;
        return true;
    }

    // Per output, reused by every step: the last step's losses, the gradients handed to BackwardBatch, the targets.
    double[] outputLosses = [];
    Tensor[] outputGradients = [];
    Tensor[] targetsPerOutput = [];

    /// One target per output: y itself, or its one tensor repeated for every output.
    IReadOnlyList<Tensor> TargetsPerOutput(IReadOnlyList<Tensor> y)
    {
        if (y.Count == targetsPerOutput.Length) return y;
        if (y.Count != 1)
            throw new ArgumentException($"Model '{Name}' has {targetsPerOutput.Length} outputs; give one target tensor per output, or one for all of them, not {y.Count}.");
        for (int k = 0; k < targetsPerOutput.Length; k++) targetsPerOutput[k] = y[0];
        return targetsPerOutput;
    }

    readonly Dictionary<(int Output, int Batch), Tensor> gradientBuffers = [];
    Tensor GradientBuffer(int output, Tensor value)
    {
        if (!gradientBuffers.TryGetValue((output, value.Batch), out var g) || g.Shape != value.Shape)
            gradientBuffers[(output, value.Batch)] = g = new Tensor(value.Shape);
        return g;
    }

    /// Mean loss (and accuracy if compiled with it) over (x, y), in inference mode.
    public Dictionary<string, double> Evaluate(Tensor x, Tensor y, int batchSize = 32) => Evaluate([x], [y], batchSize);

    /// Evaluate for several inputs or outputs: "loss" is the weighted total, "accuracy" the main
    /// output's, and with several outputs "{output layer}_loss" each output's loss.
    public Dictionary<string, double> Evaluate(IReadOnlyList<Tensor> x, IReadOnlyList<Tensor> y, int batchSize = 32)
    {
        using var exclusive = ExclusiveUse();
        if (Loss is null) throw new InvalidOperationException($"Model '{Name}' must be compiled before Evaluate.");
        CheckData(x, y, "evaluation");
        var targets = TargetsPerOutput(y).ToArray();
        var lossSums = new double[targets.Length];
        long correct = 0;
        ForEachBatch(x, batchSize, mainOutputOnly: false, (start, outputs) =>
        {
            int count = outputs[0].Batch;
            for (int k = 0; k < targets.Length; k++)
            {
                var yb = targets[k].SliceBatch(start, count);
                lossSums[k] += Losses[k].Compute(outputs[k], yb, null) * count;
                if (k == 0) correct += CountCorrect(outputs[0], yb);
            }
        });
        int n = x[0].Batch;
        double total = 0;
        for (int k = 0; k < targets.Length; k++) total += LossWeights[k] * (lossSums[k] / n);
        var result = new Dictionary<string, double> { ["loss"] = total };
        if (Metrics.Count > 0) result["accuracy"] = (double)correct / n;
        if (targets.Length > 1)
            for (int k = 0; k < targets.Length; k++) result[$"{OutputNames[k]}_loss"] = lossSums[k] / n;
        return result;
    }

    /// A Predictor for this model: thread-safe inference on samples, batches of up to maxBatch in one pass, with
    /// the classes' names and probabilities; it allocates nothing per call beyond the result.
    public Predictor CreatePredictor(int maxBatch = 32) => new(this, maxBatch);

    /// The model's main output for every sample of x, in inference mode (dropout off, auxiliary outputs not computed).
    public Tensor Predict(Tensor x, int batchSize = 32) => Predict([x], batchSize);

    /// Predict for a model with several inputs: one tensor per input; returns the main output.
    public Tensor Predict(IReadOnlyList<Tensor> x, int batchSize = 32) => Predict(x, batchSize, mainOutputOnly: true)[0];

    /// Every output of the model (main first) for every sample of x, in inference mode.
    public IReadOnlyList<Tensor> PredictOutputs(IReadOnlyList<Tensor> x, int batchSize = 32) => Predict(x, batchSize, mainOutputOnly: false);

    List<Tensor> Predict(IReadOnlyList<Tensor> x, int batchSize, bool mainOutputOnly)
    {
        using var exclusive = ExclusiveUse();
        Build();
        CheckInputs(x, "prediction");
        var shapes = mainOutputOnly ? new[] { OutputShape } : OutputShapes;
        List<Tensor> result = [.. shapes.Select(s => new Tensor(s.WithBatch(x[0].Batch)))];
        ForEachBatch(x, batchSize, mainOutputOnly, (start, outputs) =>
        {
            for (int k = 0; k < result.Count; k++)
                outputs[k].Data.AsSpan().CopyTo(result[k].Data.AsSpan(start * outputs[k].SampleSize));
        });
        return result;
    }

    void ForEachBatch(IReadOnlyList<Tensor> x, int batchSize, bool mainOutputOnly, Action<int, IReadOnlyList<Tensor>> body)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"Batch size must be positive; got {batchSize}.");
        Build();
        int total = x[0].Batch;
        if (total <= batchSize)
        {
            // One batch: the layers read x where it is (inference writes nothing into its input), no copy.
            body(0, ForwardBatch(x, training: false, mainOutputOnly));
            return;
        }
        Tensor[] xb = [.. x.Select(t => BatchTensor(t, Math.Min(batchSize, total)))];
        for (int start = 0; start < total; start += batchSize)
        {
            int count = Math.Min(batchSize, total - start);
            Tensor[] bx = count == xb[0].Batch ? xb : [.. x.Select(t => BatchTensor(t, count))];
            for (int i = 0; i < x.Count; i++)
                x[i].Data.AsSpan(start * x[i].SampleSize, count * x[i].SampleSize).CopyTo(bx[i].Data);
            body(start, ForwardBatch(bx, training: false, mainOutputOnly));
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
                bool predicted = fused[0] || mainActivation == Activation.Sigmoid ? row[0] >= 0.5f : row[0] >= 0f;
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

    void CheckInputs(IReadOnlyList<Tensor> x, string what)
    {
        var shapes = InputShapes;
        if (x.Count != shapes.Count)
            throw new ArgumentException($"Model '{Name}' has {shapes.Count} inputs ({string.Join(", ", shapes.Select(s => s.ToKerasString()))}); the {what} data gives {x.Count} tensors.");
        for (int k = 0; k < shapes.Count; k++)
        {
            var shape = shapes[k];
            bool ok = x[k].Rank == shape.Rank + 1 && x[k].Batch == x[0].Batch;
            for (int i = 0; ok && i < shape.Rank; i++) ok = x[k].Shape[i + 1] == shape[i];
            if (!ok)
                throw new ArgumentException($"Model '{Name}' expects {what} inputs of shape {shape.ToKerasString()}; got {x[k].Shape}.");
        }
    }

    void CheckData(IReadOnlyList<Tensor> x, IReadOnlyList<Tensor> y, string what)
    {
        Build();
        CheckInputs(x, what);
        int outputs = OutputShapes.Count;
        if (y.Count != 1 && y.Count != outputs)
            throw new ArgumentException($"Model '{Name}' has {outputs} outputs; the {what} data gives {y.Count} target tensors (give one per output, or one for all).");
        foreach (var t in y)
            if (t.Rank == 0 || t.Batch != x[0].Batch)
                throw new ArgumentException($"The {what} data has {x[0].Batch} inputs but labels of shape {t.Shape}: the first axes must match.");
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
        using var exclusive = ExclusiveUse();
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

    /// A name for an unnamed layer, unique among taken, as Keras makes them: conv2d, conv2d_1, ...
    private protected static string UniqueLayerName(Layer layer, IEnumerable<Layer> taken)
    {
        string stem = Serialization.KerasJson.SnakeCase(layer.TypeName);
        string name = stem;
        for (int i = 1; taken.Any(l => l.Name == name); i++) name = $"{stem}_{i}";
        return name;
    }

    /// Saves architecture, weights, class names, compile settings and (by default) the optimizer's state; see docs/FORMAT.md.
    public void Save(string path, bool includeOptimizer = true)
    {
        using var exclusive = ExclusiveUse();
        Serialization.ModelFile.Save(this, path, includeOptimizer);
    }

    /// Loads a model written by Save, built and, if it was compiled, compiled again.
    public static Model Load(string path) => Serialization.ModelFile.Load(path);

    /// The graph's nodes, for models that run on one (Sequential, Functional); null otherwise.
    internal virtual IReadOnlyList<Node>? GraphNodes => null;

    /// Every layer object that computes, keyed as the model file names a node: a layer's name for its first call in the
    /// graph, "name#k" for a later call of a shared layer (computed by a copy with its own random stream).
    internal IEnumerable<(string Key, Layer Layer)> ComputingLayers()
    {
        if (GraphNodes is not { } nodes) return Layers.Select(l => (l.Name, l));
        var keys = NodeKeys(nodes);
        return nodes.Select((n, i) => (keys[i], n.Layer));
    }

    /// Each node's key, as the model file and checkpoints name it: its layer's name for the layer's first call in the
    /// graph, "name#k" for the (k+1)-th call of a shared layer (whose copies carry the layer's name).
    internal static string[] NodeKeys(IReadOnlyList<Node> nodes)
    {
        var keys = new string[nodes.Count];
        var seen = new Dictionary<string, int>();
        for (int i = 0; i < nodes.Count; i++)
        {
            string name = nodes[i].Layer.Name;
            int k = seen.TryGetValue(name, out int count) ? count + 1 : 0;
            seen[name] = k;
            keys[i] = k == 0 ? name : $"{name}#{k}";
        }
        return keys;
    }

    /// A model from Keras's JSON (model.to_json(), or a .keras file's config.json): Keras 2 or 3, Sequential or
    /// Functional. A layer or option Naani lacks is refused with an InvalidDataException naming it.
    public static Model FromKerasJson(string json, int? seed = null) => Serialization.KerasJson.Read(json, "Keras JSON", seed);

    /// FromKerasJson on a file (its path named in messages).
    public static Model FromKerasJsonFile(string path, int? seed = null) => Serialization.KerasJson.Read(File.ReadAllText(path), path, seed);

    /// This model's architecture as Keras 3's JSON, which keras.models.model_from_json reads.
    public string ToKerasJson() => Serialization.KerasJson.Write(this);
}
