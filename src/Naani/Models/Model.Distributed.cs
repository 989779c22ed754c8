using Naani.Distributed;
using Naani.Kernels;
using Naani.Layers;

namespace Naani.Models;

/// Synchronous data-parallel training (Fit(..., distributed: communicator)): every rank holds the whole model
/// and trains on its own slice of every global batch (global batch = ranks x batchSize, the slices partitioning
/// it); the gradients are averaged across ranks while backward runs (Distributed.GradientReducer), and every
/// rank applies the same update, so the weights stay identical. The result equals one process training on the
/// global batch, up to the order of the sums (dropout draws each sample's mask as that process would; batch
/// normalization normalizes with each rank's own statistics, as DistributedDataParallel without SyncBatchNorm,
/// and its moving statistics are averaged across ranks after every step).
public abstract partial class Model
{
    /// Called by the graph after each layer's backward pass (data-parallel training starts reducing its gradients).
    internal Action<Layer>? BackwardLayerDone;

    /// The size of the gradient buckets reduced while backward runs (bytes); smaller buckets start sooner and
    /// overlap more of backward, larger ones pay the per-message cost fewer times.
    public long GradientBucketBytes { get; set; } = 4 << 20;

    /// Where a batch of count samples splits across size ranks: rank's first sample and its number of samples
    /// (the first count % size ranks take one more).
    public static (int Offset, int Count) Shard(int count, int rank, int size)
    {
        int share = count / size, extra = count % size;
        return (rank * share + Math.Min(rank, extra), share + (rank < extra ? 1 : 0));
    }

    // The state of a data-parallel Fit: the communicator and the reducer of its gradients.
    sealed class DataParallel(ICommunicator communicator, GradientReducer reducer, Parameter[] shared, double[] metrics, Dropout[] dropouts)
    {
        public readonly ICommunicator Communicator = communicator;
        public readonly GradientReducer Reducer = reducer;
        public readonly Parameter[] NonTrainable = shared;
        public readonly double[] Metrics = metrics;
        public readonly Dropout[] Dropouts = dropouts;   // every dropout that computes (a shared one's copies too)
    }

    DataParallel? dataParallel;

    /// Before a data-parallel Fit: every rank starts from rank 0's weights and rank 0's shuffling generator.
    void BeginDataParallel(ICommunicator communicator, Rng? shuffle)
    {
        if (communicator.Size < 1 || communicator.Rank < 0 || communicator.Rank >= communicator.Size)
            throw new ArgumentException($"The communicator says rank {communicator.Rank} of {communicator.Size}.", nameof(communicator));
        var ps = Parameters;
        var counts = communicator.AllGather(ParameterCount);
        for (int r = 0; r < counts.Length; r++)
            if (counts[r] != counts[0])
                throw new InvalidOperationException($"Data-parallel training needs the same model on every rank: rank {r} has {counts[r]:N0} parameters, rank 0 has {counts[0]:N0}.");
        foreach (var p in ps) communicator.Broadcast(p.Value.Data.AsSpan(0, p.Size), 0);
        if (shuffle is not null)
        {
            var state = shuffle.GetState();
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(state.AsSpan());
            communicator.Broadcast(bytes, 0);
            shuffle.SetState(state);
        }
        var reducer = new GradientReducer(communicator, ps, GradientBucketBytes);
        dataParallel = new DataParallel(communicator, reducer, [.. ps.Where(p => !p.TrainableByKind)], new double[3 + OutputShapes.Count],
            [.. ComputingLayers().Select(c => c.Layer).OfType<Dropout>()]);
        BackwardLayerDone = reducer.LayerDone;
    }

    void EndDataParallel()
    {
        foreach (var d in dataParallel!.Dropouts) d.SampleOffset = 0;
        dataParallel = null;
        BackwardLayerDone = null;
    }

    /// One data-parallel step: this rank's slice (count samples starting at sampleOffset of a global batch of
    /// globalCount) forward and backward, the gradients averaged over the global batch, the same update on every
    /// rank. Returns the global batch's mean loss and correct predictions; every rank reaches the same verdict on
    /// non-finite values, since it is taken on reduced numbers.
    (double Loss, int Correct, NonFiniteStep? Bad) DataParallelStep(IReadOnlyList<Tensor> x, IReadOnlyList<Tensor> y, int count, int globalCount, int sampleOffset)
    {
        var dp = dataParallel!;
        using var exclusive = ExclusiveUse();
        var ps = Parameters;
        for (int i = 0; i < ps.Count; i++) ps[i].ResetGradient();
        var metrics = dp.Metrics;
        Array.Clear(metrics);
        dp.Reducer.BeginStep((float)count / globalCount);
        if (count > 0)
        {
            foreach (var d in dp.Dropouts) d.SampleOffset = sampleOffset;
            var targets = TargetsPerOutput(y);
            var outputs = ForwardBatch(x, training: true);
            // No early return on a non-finite loss: every rank must take part in every reduction. NaN gradients
            // reduce to NaN everywhere, and the verdict below is the same on every rank.
            for (int k = 0; k < outputs.Count; k++)
            {
                var grad = outputGradients[k] = GradientBuffer(k, outputs[k]);
                double loss = Losses[k].Compute(outputs[k], targets[k], grad, fused[k]);
                double weight = LossWeights[k];
                if (weight != 1) Activations.Scale(grad.Data, (float)weight, grad.Data);
                metrics[3 + k] = loss * count;
                metrics[0] += weight * loss * count;
            }
            metrics[1] = CountCorrect(outputs[0], targets[0]);
            BackwardBatch(outputGradients);
        }
        else
            foreach (var d in dp.Dropouts) d.SkipBatch();
        dp.Reducer.Finish();
        metrics[2] = count;
        dp.Communicator.AllreduceSum(metrics);
        double total = metrics[0] / globalCount;
        int correct = (int)Math.Round(metrics[1]);
        for (int k = 0; k < outputLosses.Length; k++) outputLosses[k] = metrics[3 + k] / globalCount;
        if ((int)Math.Round(metrics[2]) != globalCount)
            throw new InvalidOperationException($"The ranks trained on {metrics[2]} samples of a global batch of {globalCount}: their data or batch sizes differ.");
        if (!double.IsFinite(total))
            return (total, 0, new NonFiniteStep(0, 0, $"the loss became {total} (on at least one rank)", null, null, total));
        if (FirstNonFiniteGradient(ps, total) is { } badGradient) return (total, correct, badGradient);
        Optimizer!.Step(ps);
        // Moving statistics (batch normalization) are updated in the forward pass from each rank's own slice: average them.
        float inverse = 1f / dp.Communicator.Size;
        foreach (var p in dp.NonTrainable)
        {
            var values = p.Value.Data.AsSpan(0, p.Size);
            dp.Communicator.AllreduceSum(values);
            Activations.Scale(values, inverse, values);
        }
        return (total, correct, NonFiniteUpdate(total));
    }

    /// A 64-bit checksum of every weight's bits, for checking that the ranks hold the same model.
    public long WeightChecksum()
    {
        ulong hash = 14695981039346656037UL;
        foreach (var p in Parameters)
            foreach (var v in p.Value.Data.AsSpan(0, p.Size))
                hash = (hash ^ BitConverter.SingleToUInt32Bits(v)) * 1099511628211UL;
        return (long)hash;
    }

    /// At the end of every epoch: every rank must hold the same weights, or the run has gone wrong (a rank read other
    /// data, or a kernel is not deterministic across machines); stop rather than train on.
    void CheckRanksAgree(int epoch)
    {
        var all = dataParallel!.Communicator.AllGather(WeightChecksum());
        for (int r = 1; r < all.Length; r++)
            if (all[r] != all[0])
                throw new InvalidOperationException($"After epoch {epoch + 1} rank {r}'s weights differ from rank 0's (checksums {all[r]:x16} and {all[0]:x16}): the ranks no longer train the same model.");
    }

    /// Evaluate over a dataset split across the ranks: each evaluates its slice and the means are combined, weighted by the slices' sizes.
    Dictionary<string, double> EvaluateDataParallel(IReadOnlyList<Tensor> x, IReadOnlyList<Tensor> y, int batchSize)
    {
        var communicator = dataParallel!.Communicator;
        int n = x[0].Batch;
        if (n < communicator.Size) return Evaluate(x, y, batchSize);
        var (offset, count) = Shard(n, communicator.Rank, communicator.Size);
        var local = Evaluate([.. x.Select(t => t.SliceBatch(offset, count))], [.. y.Select(t => t.SliceBatch(offset, count))], batchSize);
        var keys = local.Keys.Order(StringComparer.Ordinal).ToArray();
        var sums = keys.Select(k => local[k] * count).ToArray();
        communicator.AllreduceSum(sums);
        return keys.Select((k, i) => (k, i)).ToDictionary(t => t.k, t => sums[t.i] / n);
    }

    /// Predict split across the ranks of a group: each rank computes the main output for its slice of x, and every
    /// rank receives the outputs for all of x (the slices are summed into a zeroed tensor, which is exact). Without a
    /// group, or with fewer samples than ranks, every rank predicts all of x.
    public Tensor Predict(Tensor x, int batchSize, ICommunicator? distributed)
    {
        if (distributed is null || distributed.Size == 1 || x.Batch < distributed.Size) return Predict(x, batchSize);
        var (offset, count) = Shard(x.Batch, distributed.Rank, distributed.Size);
        var mine = Predict(x.SliceBatch(offset, count), batchSize);
        var all = new Tensor(OutputShape.WithBatch(x.Batch));
        int perSample = OutputShape.Size;
        mine.Data.AsSpan(0, count * perSample).CopyTo(all.Data.AsSpan(offset * perSample));
        distributed.AllreduceSum(all.Data.AsSpan(0, all.Length));
        return all;
    }
}
