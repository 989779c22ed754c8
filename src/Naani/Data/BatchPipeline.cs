using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Naani.Data;

/// One batch of labelled images: Images is (n, H, W, C), Labels[i] the class of image i, Indices[i] its index in the source.
public sealed class ImageBatch(Tensor images, int[] labels, int[] indices)
{
    public Tensor Images { get; } = images;
    public int[] Labels { get; } = labels;
    public int[] Indices { get; } = indices;
    public int Count => Labels.Length;

    internal float[]? Buffer { get; init; }
}

/// Batches of labelled images, epoch after epoch: what Model.Fit(IBatchSource, ...) trains on when the data is not
/// one tensor in memory. A batch's tensors stay valid until the next batch of the same epoch is requested.
public interface IBatchSource
{
    /// Images in one epoch (readable ones; an unreadable image found during an epoch is left out of the next).
    int Count { get; }
    int BatchSize { get; }
    Shape ImageShape { get; }
    IReadOnlyList<string> ClassNames { get; }
    int StepsPerEpoch => (Count + BatchSize - 1) / BatchSize;

    /// The batches of one epoch, in order (shuffled per epoch when the source shuffles).
    IEnumerable<ImageBatch> GetEpoch(int epoch);

    /// What identifies the data and the order it comes in, for the checksum a checkpoint keeps so that a run resumes
    /// only on the same data (Model.Fit hashes it).
    string Identity => $"{Count} images of {ImageShape} in batches of {BatchSize}, classes {string.Join(", ", ClassNames)}";
}

/// How a BatchPipeline reads.
public sealed record PipelineOptions
{
    public int BatchSize { get; init; } = 32;

    /// Shuffle the order every epoch (seeded by Seed and the epoch number).
    public bool Shuffle { get; init; } = true;
    public int Seed { get; init; }

    /// Random changes per image (training only); null for none.
    public Augmentation? Augmentation { get; init; }

    /// Background threads that read, decode and augment batches; 0 reads each batch on the caller's thread when it
    /// is asked for (no overlap with training: what "without the pipeline" measures).
    /// The default, half the cores (at least 1), leaves the other half to the training step's threads: a multithreaded
    /// step waits for its slowest thread, so decoding threads competing for every core slow training down.
    public int Workers { get; init; } = DefaultWorkers;

    public static int DefaultWorkers => Math.Clamp(Environment.ProcessorCount / 2, 1, 8);

    /// Run the workers at a lower scheduling priority (Linux: nice 10). Measured on 2 cores that all train, this starves
    /// decoding more than it shields training, so it is off by default.
    public bool LowPriorityWorkers { get; init; }

    /// Batches read ahead of the one being trained on: the bound of the queue (memory: Prefetch x batch size x image size x 4 bytes).
    public int Prefetch { get; init; } = DefaultWorkers + 2;

    /// Throw on the first unreadable image instead of leaving it out with a warning.
    public bool Strict { get; init; }

    /// Receives one warning per unreadable image; null: Console.Error.
    public Action<string>? Warning { get; init; }
}

/// Figures a pipeline keeps: how long training waited for data is the one that says whether decoding keeps up.
public sealed record PipelineStatistics(long Batches, long Images, double WaitSeconds, double ReadSeconds, int Unreadable)
{
    /// Fraction of the time spent reading (on all workers together) that the consumer spent waiting.
    public override string ToString() =>
        FormattableString.Invariant($"{Batches:N0} batches, {Images:N0} images, waited {WaitSeconds:0.00} s for data, read/decode {ReadSeconds:0.00} s (all workers), {Unreadable} unreadable");
}

/// Reads batches from an image source on background threads into a bounded queue, so that reading, decoding and
/// augmenting the next batches overlaps training on the current one:
///
///   source.TryRead (decode, resize) -> augment -> batch buffer ─┐ Workers threads, up to Prefetch batches ahead
///                                                               └─► GetEpoch yields batch k, in order ──► Fit
///
/// Batch k of an epoch holds the same images, with the same augmentation, whatever the number of workers:
/// the order comes from (Seed, epoch) and each image's augmentation from (Seed, epoch, position).
/// Memory stays at Prefetch + 1 batch buffers, whatever the size of the source.
public sealed class BatchPipeline : IBatchSource, IDisposable
{
    readonly IImageSource source;
    readonly PipelineOptions options;
    readonly int imageSize;
    readonly ConcurrentDictionary<int, string> unreadable = new();
    readonly ConcurrentBag<float[]> buffers = [];
    readonly Lock statisticsGate = new();
    long batches, images;
    double waitSeconds, readSeconds;

    public BatchPipeline(IImageSource source, PipelineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= new PipelineOptions();
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), $"Batch size must be positive; got {options.BatchSize}.");
        if (options.Workers < 0) throw new ArgumentOutOfRangeException(nameof(options), $"Workers must be 0 or more; got {options.Workers}.");
        if (options.Prefetch < 1) throw new ArgumentOutOfRangeException(nameof(options), $"Prefetch must be at least 1; got {options.Prefetch}.");
        if (source.Count == 0) throw new ArgumentException("The image source is empty: there is nothing to batch.", nameof(source));
        this.source = source;
        this.options = options;
        imageSize = source.ImageShape.Size;
    }

    public IImageSource Source => source;
    public PipelineOptions Options => options;
    public int Count => source.Count - unreadable.Count;
    public int BatchSize => options.BatchSize;
    public Shape ImageShape => source.ImageShape;
    public IReadOnlyList<string> ClassNames => source.ClassNames;

    /// Every image's origin (a file and its size, or a sample number) and label, the classes, the batch size and
    /// what decides the order and the augmentation (seed, shuffling, augmentation settings).
    public string Identity
    {
        get
        {
            var text = new System.Text.StringBuilder();
            text.Append(System.Globalization.CultureInfo.InvariantCulture,
                $"{source.Count} images of {ImageShape}, batches of {BatchSize}, seed {options.Seed}, shuffle {options.Shuffle}, augmentation {options.Augmentation}, classes {string.Join("|", ClassNames)}\n");
            for (int i = 0; i < source.Count; i++)
            {
                string origin = source.Describe(i);
                long size = File.Exists(origin) ? new FileInfo(origin).Length : -1;
                text.Append(System.Globalization.CultureInfo.InvariantCulture, $"{origin}\t{size}\t{source.GetLabel(i)}\n");
            }
            return text.ToString();
        }
    }

    /// The images found unreadable so far, with the reason.
    public IReadOnlyDictionary<int, string> Unreadable => unreadable;

    /// The figures of each finished epoch, in order (the pass of an evaluation counts as an epoch too).
    public IReadOnlyList<PipelineStatistics> EpochStatistics
    {
        get
        {
            lock (statisticsGate) return [.. epochStatistics];
        }
    }
    readonly List<PipelineStatistics> epochStatistics = [];

    public PipelineStatistics Statistics
    {
        get
        {
            lock (statisticsGate)
                return new PipelineStatistics(batches, images, waitSeconds, readSeconds, unreadable.Count);
        }
    }

    /// The order of one epoch: every readable index, shuffled from (Seed, epoch) when shuffling.
    public int[] Order(int epoch)
    {
        var order = new int[Count];
        int n = 0;
        for (int i = 0; i < source.Count && n < order.Length; i++)
            if (!unreadable.ContainsKey(i)) order[n++] = i;
        if (options.Shuffle) new Rng(((ulong)(uint)options.Seed << 32 | (uint)epoch) ^ 0x5DEECE66DUL).Shuffle(order);
        return order;
    }

    public IEnumerable<ImageBatch> GetEpoch(int epoch)
    {
        var order = Order(epoch);
        int steps = (order.Length + BatchSize - 1) / BatchSize;
        return options.Workers == 0 ? Synchronous(order, steps, epoch) : Overlapped(order, steps, epoch);
    }

    IEnumerable<ImageBatch> Synchronous(int[] order, int steps, int epoch)
    {
        var scratch = options.Augmentation is null ? null : new float[imageSize];
        var before = Statistics;
        for (int k = 0; k < steps; k++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var batch = Fill(order, k, epoch, RentBuffer(), scratch);
            double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            Record(batch, seconds, seconds);
            if (batch is null) continue;
            yield return batch;
            Return(batch);
        }
        EndEpoch(before);
    }

    void EndEpoch(PipelineStatistics before)
    {
        var now = Statistics;
        lock (statisticsGate)
            epochStatistics.Add(new PipelineStatistics(now.Batches - before.Batches, now.Images - before.Images,
                now.WaitSeconds - before.WaitSeconds, now.ReadSeconds - before.ReadSeconds, now.Unreadable));
    }

    IEnumerable<ImageBatch> Overlapped(int[] order, int steps, int epoch)
    {
        var before = Statistics;
        using var run = new EpochRun(this, order, steps, epoch);
        for (int k = 0; k < steps; k++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var (batch, readTime) = run.Take(k);
            Record(batch, Stopwatch.GetElapsedTime(t0).TotalSeconds, readTime);
            if (batch is null) continue;
            yield return batch;
            Return(batch);
            run.ReleaseSlot();
        }
        EndEpoch(before);
    }

    void Record(ImageBatch? batch, double wait, double read)
    {
        lock (statisticsGate)
        {
            waitSeconds += wait;
            readSeconds += read;
            if (batch is null) return;
            batches++;
            images += batch.Count;
        }
    }

    float[] RentBuffer() => buffers.TryTake(out var b) ? b : new float[BatchSize * imageSize];

    void Return(ImageBatch batch)
    {
        if (batch.Buffer is { } b) buffers.Add(b);
    }

    /// Reads batch k of an epoch into buffer; null when none of its images could be read.
    ImageBatch? Fill(int[] order, int k, int epoch, float[] buffer, float[]? scratch)
    {
        int start = k * BatchSize, end = Math.Min(order.Length, start + BatchSize);
        var labels = new List<int>(end - start);
        var indices = new List<int>(end - start);
        var shape = source.ImageShape;
        for (int position = start; position < end; position++)
        {
            int index = order[position];
            var slot = buffer.AsSpan(labels.Count * imageSize, imageSize);
            bool ok;
            string? reason;
            try
            {
                ok = source.TryRead(index, slot, out reason);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                (ok, reason) = (false, e.Message);
            }
            if (!ok)
            {
                reason ??= "unreadable";
                if (options.Strict)
                    throw new InvalidDataException($"{source.Describe(index)}: {reason} (strict mode: stopping at the first unreadable image).");
                if (unreadable.TryAdd(index, reason))
                    (options.Warning ?? (m => Console.Error.WriteLine(m)))($"warning: skipping {source.Describe(index)}: {reason}");
                continue;
            }
            if (options.Augmentation is { IsIdentity: false } augmentation)
                augmentation.Apply(slot, shape[0], shape[1], shape[2], Augmentation.RandomFor(options.Seed, epoch, position), scratch);
            labels.Add(source.GetLabel(index));
            indices.Add(index);
        }
        int n = labels.Count;
        if (n == 0)
        {
            buffers.Add(buffer);
            return null;
        }
        if (n == BatchSize)
            return new ImageBatch(new Tensor(shape.WithBatch(n), buffer), [.. labels], [.. indices]) { Buffer = buffer };
        // The last batch of an epoch (or one that lost images) is smaller: give it a tensor of its own size.
        var images = new Tensor(shape.WithBatch(n));
        buffer.AsSpan(0, n * imageSize).CopyTo(images.Data);
        buffers.Add(buffer);
        return new ImageBatch(images, [.. labels], [.. indices]);
    }

    /// The workers of one epoch. Each takes a free buffer (at most Prefetch of them are in use, which bounds the
    /// queue), claims the next batch number, fills it and posts it; the consumer takes batch k when it is posted.
    sealed class EpochRun : IDisposable
    {
        readonly BatchPipeline pipeline;
        readonly int[] order;
        readonly int steps, epoch;
        readonly Thread[] threads;
        readonly SemaphoreSlim slots;
        readonly object gate = new();
        readonly (ImageBatch? Batch, double Seconds, bool Done)[] results;
        int next = -1;
        volatile bool cancelled;
        Exception? failure;

        public EpochRun(BatchPipeline pipeline, int[] order, int steps, int epoch)
        {
            this.pipeline = pipeline;
            this.order = order;
            this.steps = steps;
            this.epoch = epoch;
            results = new (ImageBatch?, double, bool)[steps];
            slots = new SemaphoreSlim(pipeline.options.Prefetch);
            int workers = Math.Min(pipeline.options.Workers, Math.Max(1, steps));
            threads = new Thread[workers];
            for (int i = 0; i < workers; i++)
            {
                threads[i] = new Thread(Work) { IsBackground = true, Name = $"naani-batches-{i + 1}" };
                threads[i].Start();
            }
        }

        void Work()
        {
            if (pipeline.options.LowPriorityWorkers) LowerThisThreadsPriority();
            var scratch = pipeline.options.Augmentation is null ? null : new float[pipeline.imageSize];
            try
            {
                while (!cancelled)
                {
                    slots.Wait();
                    if (cancelled) return;
                    int k = Interlocked.Increment(ref next);
                    if (k >= steps)
                    {
                        slots.Release();
                        return;
                    }
                    long t0 = Stopwatch.GetTimestamp();
                    var batch = pipeline.Fill(order, k, epoch, pipeline.RentBuffer(), scratch);
                    double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                    // An empty batch holds no buffer: its slot is free again at once.
                    if (batch is null) slots.Release();
                    lock (gate)
                    {
                        results[k] = (batch, seconds, true);
                        Monitor.PulseAll(gate);
                    }
                }
            }
            catch (Exception e)
            {
                lock (gate)
                {
                    failure ??= e;
                    Monitor.PulseAll(gate);
                }
            }
        }

        /// Waits for batch k; rethrows a worker's failure.
        public (ImageBatch? Batch, double Seconds) Take(int k)
        {
            lock (gate)
            {
                while (!results[k].Done && failure is null) Monitor.Wait(gate);
                if (failure is not null && !results[k].Done)
                    throw failure is InvalidDataException ? new InvalidDataException(failure.Message, failure) : new InvalidOperationException($"Reading batch {k} failed: {failure.Message}", failure);
                var result = results[k];
                results[k] = default;
                return (result.Batch, result.Seconds);
            }
        }

        /// The consumer is done with a batch: its buffer may be refilled.
        public void ReleaseSlot() => slots.Release();

        public void Dispose()
        {
            cancelled = true;
            slots.Release(threads.Length);
            foreach (var t in threads) t.Join();
            slots.Dispose();
            // Batches read ahead but never taken (training stopped early) give their buffers back.
            foreach (var r in results)
                if (r.Batch is { } b) pipeline.Return(b);
        }
    }

    // .NET ignores Thread.Priority on Linux; setpriority on the thread id (a Linux thread is a task) does it.
    // An unprivileged process may always lower its own priority. Elsewhere, or if libc says no, the workers run as they are.
    static void LowerThisThreadsPriority()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            _ = SetPriority(0 /* PRIO_PROCESS */, GetThreadId(), 10);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    [DllImport("libc", EntryPoint = "setpriority")]
    static extern int SetPriority(int which, int who, int priority);

    [DllImport("libc", EntryPoint = "gettid")]
    static extern int GetThreadId();

    public void Dispose()
    {
        buffers.Clear();
        if (source is IDisposable d) d.Dispose();
    }
}
