using System.Diagnostics;
using System.Threading.Channels;
using Naani.Models;

namespace Naani.Serving;

/// The queue was full: the server answers 503 with Retry-After.
public sealed class QueueFullException(string model, int capacity)
    : Exception($"Model '{model}' has {capacity} requests waiting, as many as --max-queue allows; try again shortly.");

/// Dynamic batching, as Triton and TensorFlow Serving do it: requests from many connections wait in one queue;
/// a single loop takes the first, gathers whatever else arrives within MaxDelay (up to MaxBatch samples), runs
/// them as one forward pass through the Predictor, and hands each caller its own rows of the output. It waits only
/// while other requests are on their way (Arrive: received, body still being read or decoded), so a lone client
/// is answered at once rather than after MaxDelay; under load batches fill and the delay rarely runs out.
public sealed class DynamicBatcher : IAsyncDisposable
{
    readonly Predictor predictor;
    readonly Channel<Job> queue;
    readonly int maxBatch, capacity;
    readonly TimeSpan maxDelay;
    readonly Task loop;
    readonly CancellationTokenSource stopping = new();
    readonly float[] inputs, outputs;
    readonly int sampleSize;
    int waiting, arriving;

    /// One request: count samples (count x sample size values) and where its outputs go.
    sealed class Job(float[] samples, int count)
    {
        public readonly float[] Samples = samples;
        public readonly int Count = count;
        public readonly TaskCompletionSource<float[]> Result = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public DynamicBatcher(Predictor predictor, string name, int maxQueue, TimeSpan maxDelay, Action<int>? batchObserved = null)
    {
        this.predictor = predictor;
        Name = name;
        maxBatch = predictor.MaxBatch;
        capacity = maxQueue;
        this.maxDelay = maxDelay;
        this.batchObserved = batchObserved;
        sampleSize = predictor.InputShape.Size;
        inputs = new float[maxBatch * sampleSize];
        outputs = new float[maxBatch * predictor.OutputSize];
        queue = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
        loop = Task.Factory.StartNew(Run, TaskCreationOptions.LongRunning).Unwrap();
    }

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
    public Task<float[]> PredictAsync(float[] samples, int count, Arrival? arrival = null)
    {
        arrival?.Dispose();
        if (samples.Length != count * sampleSize)
            throw new ArgumentException($"{count} samples of {predictor.InputShape} are {count * sampleSize} values; got {samples.Length}.");
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

    async Task Run()
    {
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
                Execute(batch, samples);
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

    void Execute(List<Job> batch, int samples)
    {
        try
        {
            if (batch.Count == 1 && samples > maxBatch)
            {
                // One request larger than a batch: the predictor runs it in batches of its own.
                var job = batch[0];
                job.Result.TrySetResult(predictor.Probabilities(job.Samples, job.Count));
                batchObserved?.Invoke(samples);
                return;
            }
            int offset = 0;
            foreach (var job in batch)
            {
                job.Samples.CopyTo(inputs, offset);
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

    /// Stops taking requests, finishes the batch in progress, and fails what is still queued.
    public async ValueTask DisposeAsync()
    {
        queue.Writer.TryComplete();
        await stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
        stopping.Dispose();
    }
}
