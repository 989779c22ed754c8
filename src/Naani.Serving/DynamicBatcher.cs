using System.Diagnostics;
using System.Threading.Channels;
using Naani.Models;

namespace Naani.Serving;

/// The queue was full: the server answers 503 with Retry-After.
public sealed class QueueFullException(string model, int capacity)
    : Exception($"Model '{model}' has {capacity} requests waiting, as many as --max-queue allows; try again shortly.");

/// Dynamic batching, as Triton and TensorFlow Serving do it: requests from many connections wait in one queue;
/// a loop takes the first, gathers whatever else arrives within MaxDelay (up to MaxBatch samples), runs them as one
/// forward pass through its Predictor, and hands each caller its own rows of the output. It waits only while other
/// requests are on their way (Arrive: received, body still being read or decoded), so a lone client is answered at
/// once rather than after MaxDelay; under load batches fill and the delay rarely runs out.
///
/// With one predictor, one loop runs each batch on all of Naani's threads. With several (replicas: copies of one
/// model), one loop per replica takes batches from the same queue and runs each on its own thread alone
/// (Threading.RunSerially), as TensorFlow Serving's inter-op parallelism does: while one replica computes, another
/// gathers, and no batch is split across a core that the HTTP work needs at that moment.
public sealed class DynamicBatcher : IAsyncDisposable
{
    readonly Predictor[] replicas;
    readonly Channel<Job> queue;
    readonly int maxBatch, capacity;
    readonly TimeSpan maxDelay;
    readonly Task[] loops;
    readonly CancellationTokenSource stopping = new();
    readonly int sampleSize;
    int waiting, arriving;

    /// One request: count samples (count x sample size values) and where its outputs go.
    sealed class Job(ReadOnlyMemory<float> samples, int count)
    {
        public readonly ReadOnlyMemory<float> Samples = samples;
        public readonly int Count = count;
        public readonly TaskCompletionSource<float[]> Result = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public DynamicBatcher(Predictor predictor, string name, int maxQueue, TimeSpan maxDelay, Action<int>? batchObserved = null)
        : this([predictor], name, maxQueue, maxDelay, batchObserved)
    {
    }

    /// replicas: predictors of the same model (same input and output shapes, same MaxBatch), each used by one loop.
    public DynamicBatcher(IReadOnlyList<Predictor> replicas, string name, int maxQueue, TimeSpan maxDelay, Action<int>? batchObserved = null)
    {
        ArgumentNullException.ThrowIfNull(replicas);
        if (replicas.Count == 0) throw new ArgumentException("Give at least one predictor.", nameof(replicas));
        var first = replicas[0];
        foreach (var r in replicas)
            if (r.MaxBatch != first.MaxBatch || r.InputShape != first.InputShape || r.OutputSize != first.OutputSize)
                throw new ArgumentException($"Replicas of '{name}' differ: every one must have the first's max batch, input shape and output size.", nameof(replicas));
        this.replicas = [.. replicas];
        Name = name;
        maxBatch = first.MaxBatch;
        capacity = maxQueue;
        this.maxDelay = maxDelay;
        this.batchObserved = batchObserved;
        sampleSize = first.InputShape.Size;
        queue = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = replicas.Count == 1 });
        loops = [.. this.replicas.Select(p => Task.Factory.StartNew(() => Run(p), TaskCreationOptions.LongRunning).Unwrap())];
    }

    /// How many copies of the model answer batches side by side.
    public int Replicas => replicas.Length;

    readonly Action<int>? batchObserved;

    /// Test hook: the loop waits for this task after taking a batch's first request, so a test can hold requests in
    /// flight (a full queue, a stop while requests wait).
    internal Task HoldForTests { get; set; } = Task.CompletedTask;

    public string Name { get; }

    /// Requests queued and not yet taken into a batch.
    public int QueueDepth => Volatile.Read(ref waiting);

    /// Says a request is on its way (its body is being read or decoded): until the returned token is disposed, or
    /// handed to PredictAsync, a batch being gathered waits for it (at most MaxDelay).
    public Arrival Arrive()
    {
        Interlocked.Increment(ref arriving);
        return new Arrival(this);
    }

    public sealed class Arrival(DynamicBatcher batcher) : IDisposable
    {
        int done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref done, 1) == 0) Interlocked.Decrement(ref batcher.arriving);
        }
    }

    /// The outputs (count x OutputSize values) for count samples laid end to end. Throws QueueFullException at once
    /// when MaxQueue requests are already waiting. arrival, if given, is disposed: the request has arrived.
    public Task<float[]> PredictAsync(float[] samples, int count, Arrival? arrival = null) =>
        PredictAsync(samples.AsMemory(), count, arrival);

    /// As above; the caller keeps samples unchanged until the task completes (then it may reuse a pooled array).
    public Task<float[]> PredictAsync(ReadOnlyMemory<float> samples, int count, Arrival? arrival = null)
    {
        arrival?.Dispose();
        if (samples.Length != count * sampleSize)
            throw new ArgumentException($"{count} samples of {replicas[0].InputShape} are {count * sampleSize} values; got {samples.Length}.");
        if (Interlocked.Increment(ref waiting) > capacity)
        {
            Interlocked.Decrement(ref waiting);
            throw new QueueFullException(Name, capacity);
        }
        var job = new Job(samples, count);
        if (!queue.Writer.TryWrite(job))
        {
            Interlocked.Decrement(ref waiting);
            throw new ObjectDisposedException(nameof(DynamicBatcher), $"Model '{Name}' is shutting down.");
        }
        return job.Result.Task;
    }

    async Task Run(Predictor predictor)
    {
        var inputs = new float[maxBatch * sampleSize];
        var outputs = new float[maxBatch * predictor.OutputSize];
        bool serial = replicas.Length > 1;
        var reader = queue.Reader;
        var batch = new List<Job>(maxBatch);
        Job? carried = null;
        var clock = new Stopwatch();
        try
        {
            while (true)
            {
                var first = carried ?? await reader.ReadAsync(stopping.Token).ConfigureAwait(false);
                carried = null;
                await HoldForTests.ConfigureAwait(false);
                batch.Clear();
                batch.Add(first);
                int samples = first.Count;
                clock.Restart();
                // Gather: take what is queued; when nothing is, wait for more until the first request has waited maxDelay.
                while (samples < maxBatch)
                {
                    if (reader.TryRead(out var next))
                    {
                        if (samples + next.Count > maxBatch)
                        {
                            carried = next;   // does not fit: it opens the next batch
                            break;
                        }
                        batch.Add(next);
                        samples += next.Count;
                        continue;
                    }
                    var left = maxDelay - clock.Elapsed;
                    if (left <= TimeSpan.Zero || Volatile.Read(ref arriving) == 0) break;   // nobody else is coming
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
                    timeout.CancelAfter(left);
                    try
                    {
                        if (!await reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false)) break;
                    }
                    catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
                    {
                        break;
                    }
                }
                Interlocked.Add(ref waiting, -batch.Count);   // a carried request still waits
                if (serial)
                {
                    using (Threading.RunSerially()) Execute(predictor, batch, samples, inputs, outputs);
                }
                else Execute(predictor, batch, samples, inputs, outputs);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested) { }
        catch (ChannelClosedException) { }
        finally
        {
            var pending = new List<Job>();
            if (carried is not null) pending.Add(carried);
            while (reader.TryRead(out var job)) pending.Add(job);
            foreach (var job in pending) job.Result.TrySetException(new ObjectDisposedException(nameof(DynamicBatcher), $"Model '{Name}' is shutting down."));
        }
    }

    void Execute(Predictor predictor, List<Job> batch, int samples, float[] inputs, float[] outputs)
    {
        try
        {
            if (batch.Count == 1 && samples > maxBatch)
            {
                // One request larger than a batch: the predictor runs it in batches of its own.
                var job = batch[0];
                job.Result.TrySetResult(predictor.Probabilities(job.Samples.Span, job.Count));
                batchObserved?.Invoke(samples);
                return;
            }
            int offset = 0;
            foreach (var job in batch)
            {
                job.Samples.Span.CopyTo(inputs.AsSpan(offset));
                offset += job.Samples.Length;
            }
            predictor.PredictInto(inputs.AsSpan(0, samples * sampleSize), samples, outputs);
            batchObserved?.Invoke(samples);
            int width = predictor.OutputSize, row = 0;
            foreach (var job in batch)
            {
                job.Result.TrySetResult(outputs.AsSpan(row * width, job.Count * width).ToArray());
                row += job.Count;
            }
        }
        catch (Exception e)
        {
            foreach (var job in batch) job.Result.TrySetException(e);
        }
    }

    /// Stops taking requests, finishes the batches in progress, and fails what is still queued.
    public async ValueTask DisposeAsync()
    {
        queue.Writer.TryComplete();
        await stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
        stopping.Dispose();
    }
}
