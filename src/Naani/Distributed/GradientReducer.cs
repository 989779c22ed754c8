using Naani.Layers;

namespace Naani.Distributed;

/// Averages the gradients of a data-parallel step across ranks while backward is still running, as
/// PyTorch's DistributedDataParallel and Horovod do. The trainable parameters, in the order backward
/// produces their gradients (last layer first), are grouped into buckets of about BucketBytes; when the
/// backward pass has finished every layer of a bucket, its gradients (each scaled by this rank's share of
/// the global batch) are copied into the bucket's buffer and a non-blocking allreduce starts, overlapping
/// the rest of the backward pass. Finish waits for all of them and copies the sums back. Buckets start in
/// index order on every rank (a bucket ready early waits for its predecessors), so every rank issues the
/// same collectives in the same order, even a rank that had no samples and ran no backward at all.
internal sealed class GradientReducer
{
    sealed class Bucket(Parameter[] parameters)
    {
        public readonly Parameter[] Parameters = parameters;
        public readonly float[] Buffer = GC.AllocateArray<float>(parameters.Sum(p => p.Size), pinned: true);
        public int Remaining;
        public IPendingReduction? Pending;
    }

    readonly ICommunicator communicator;
    readonly Bucket[] buckets;
    readonly Dictionary<Layer, (int Bucket, int Count)[]> bucketsOfLayer = [];
    int nextToStart;
    float scale;

    public GradientReducer(ICommunicator communicator, IReadOnlyList<Parameter> parameters, long bucketBytes)
    {
        this.communicator = communicator;
        var list = new List<Bucket>();
        var current = new List<Parameter>();
        long bytes = 0;
        for (int i = parameters.Count - 1; i >= 0; i--)
        {
            var p = parameters[i];
            if (!p.Trainable) continue;
            if (current.Count > 0 && bytes + 4L * p.Size > bucketBytes)
            {
                list.Add(new Bucket([.. current]));
                (current, bytes) = ([], 0);
            }
            current.Add(p);
            bytes += 4L * p.Size;
        }
        if (current.Count > 0) list.Add(new Bucket([.. current]));
        buckets = [.. list];
        foreach (var layer in buckets.SelectMany(b => b.Parameters).Select(p => p.Owner).Distinct())
            bucketsOfLayer[layer] = [.. buckets.Select((b, k) => (k, b.Parameters.Count(p => p.Owner == layer))).Where(t => t.Item2 > 0)];
        Layers = bucketsOfLayer.Count;
    }

    /// How many buckets, and the layers with trainable weights whose gradients are reduced.
    public int BucketCount => buckets.Length;
    public int Layers { get; }

    /// Before backward: this rank's gradients will be multiplied by scale (its samples / the global batch's).
    public void BeginStep(float scale)
    {
        this.scale = scale;
        nextToStart = 0;
        foreach (var b in buckets)
        {
            b.Remaining = b.Parameters.Length;
            b.Pending = null;
        }
    }

    /// Called by the graph after each layer's backward: starts the buckets it completed, and lets the
    /// reductions in flight progress.
    public void LayerDone(Layer layer)
    {
        if (bucketsOfLayer.TryGetValue(layer, out var entries))
            foreach (var (k, count) in entries) buckets[k].Remaining -= count;
        while (nextToStart < buckets.Length && buckets[nextToStart].Remaining == 0) Start(buckets[nextToStart++]);
        for (int k = 0; k < nextToStart; k++) buckets[k].Pending?.Test();
    }

    /// After backward: starts what is left (layers below the lowest trainable one, or every bucket on a rank
    /// without samples), waits for every reduction and writes the summed gradients back.
    public void Finish()
    {
        while (nextToStart < buckets.Length) Start(buckets[nextToStart++]);
        foreach (var b in buckets)
        {
            b.Pending!.Wait();
            int offset = 0;
            foreach (var p in b.Parameters)
            {
                b.Buffer.AsSpan(offset, p.Size).CopyTo(p.Gradient.Data);
                offset += p.Size;
            }
        }
    }

    void Start(Bucket b)
    {
        int offset = 0;
        foreach (var p in b.Parameters)
        {
            var source = p.Gradient.Data.AsSpan(0, p.Size);
            var target = b.Buffer.AsSpan(offset, p.Size);
            if (scale == 1) source.CopyTo(target);
            else Kernels.Activations.Scale(source, scale, target);
            offset += p.Size;
        }
        b.Pending = communicator.StartAllreduceSum(b.Buffer, b.Buffer.Length);
    }
}
