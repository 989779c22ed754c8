using System.Runtime.ExceptionServices;

namespace Naani;

/// How many threads Naani's kernels use, and the one way they split work: a range [0, count) is cut
/// into contiguous parts, the same parts for the same thread count, so results are reproducible bit
/// for bit. Parts run on persistent worker threads (the caller runs part 0), and dispatching work
/// allocates nothing, so a training step creates no garbage.
public static class Threading
{
    static int maxThreads = Environment.ProcessorCount;
    static readonly Lock dispatch = new();
    static WorkerPool? pool;
    [ThreadStatic] static bool insideParallelWork;

    /// Threads used by kernels (default: all cores).
    public static int MaxThreads
    {
        get => maxThreads;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), $"Threads must be at least 1; got {value}.");
            maxThreads = value;
        }
    }

    /// Runs body(part, start, end) for Parts(count, minPerPart) contiguous ranges covering [0, count).
    /// Pass a delegate created once (a cached field), not a new lambda per call, to stay allocation-free.
    /// Called from inside a part, it runs serially.
    public static void For(int count, Action<int, int, int> body, int minPerPart = 1)
    {
        int parts = Parts(count, minPerPart);
        if (parts <= 1)
        {
            body(0, 0, count);
            return;
        }
        lock (dispatch)
        {
            if (pool is null || pool.Workers < parts - 1)
            {
                pool?.Stop();
                pool = new WorkerPool(Math.Max(parts, maxThreads) - 1);
            }
            pool.Run(count, parts, body);
        }
    }

    /// Until the returned scope is disposed, kernels called from this thread run on this thread alone, without the
    /// worker pool: for running several models side by side, one per thread (a server's replicas), so that they
    /// neither wait for each other's turn on the pool nor split a batch across cores the other model is using.
    /// Results are the same as with one thread. Dispose it on the thread that created it (do not await inside).
    public static SerialScope RunSerially()
    {
        bool previous = insideParallelWork;
        insideParallelWork = true;
        return new SerialScope(previous);
    }

    /// See RunSerially.
    public readonly struct SerialScope : IDisposable
    {
        readonly bool previous;

        internal SerialScope(bool previous) => this.previous = previous;

        public void Dispose() => insideParallelWork = previous;
    }

    /// Bytes allocated so far by the calling thread and every worker thread: for tests that check that
    /// a training step allocates nothing (the process-wide counter also sees the test runner's threads).
    internal static long AllocatedBytesOfKernelThreads()
    {
        if (allocatedPerPart.Length < maxThreads) allocatedPerPart = new long[maxThreads];
        For(maxThreads, readAllocated);
        long total = 0;
        for (int i = 0; i < maxThreads; i++) total += allocatedPerPart[i];
        return total;
    }

    static long[] allocatedPerPart = [];
    static readonly Action<int, int, int> readAllocated = (part, _, _) => allocatedPerPart[part] = GC.GetAllocatedBytesForCurrentThread();

    /// The number of parts For uses: 1 inside a part or a RunSerially scope, where For runs serially.
    public static int Parts(int count, int minPerPart = 1) => Math.Max(1, Math.Min(Available, count / Math.Max(1, minPerPart)));

    /// Threads a kernel called from here can use: MaxThreads, or 1 inside a part or a RunSerially scope (where For
    /// runs serially). Kernels that split work by thread count themselves must use this, not MaxThreads, or they
    /// would count on parts that never run.
    public static int Available => insideParallelWork ? 1 : maxThreads;

    public static (int Start, int End) Range(int count, int parts, int part)
    {
        int baseSize = count / parts, extra = count % parts;
        int start = part * baseSize + Math.Min(part, extra);
        return (start, start + baseSize + (part < extra ? 1 : 0));
    }

    sealed class WorkerPool
    {
        // Layers dispatch work every few hundred microseconds during training: a short spin (tens of
        // microseconds) catches the next dispatch, or the last part finishing, without sleeping and waking.
        const int SpinRounds = 2000;

        readonly object gate = new();
        readonly Thread[] threads;
        Action<int, int, int>? body;
        int count, parts, remaining;
        long generation;
        bool stopping;
        ExceptionDispatchInfo? failure;

        public WorkerPool(int workers)
        {
            threads = new Thread[workers];
            for (int i = 0; i < workers; i++)
            {
                int part = i + 1;
                threads[i] = new Thread(() => Loop(part)) { IsBackground = true, Name = $"naani-worker-{part}" };
                threads[i].Start();
            }
        }

        public int Workers => threads.Length;

        public void Run(int count, int parts, Action<int, int, int> body)
        {
            lock (gate)
            {
                this.body = body;
                this.count = count;
                this.parts = parts;
                remaining = parts - 1;
                failure = null;
                generation++;
                Monitor.PulseAll(gate);
            }
            try
            {
                insideParallelWork = true;
                var (s, e) = Range(count, parts, 0);
                body(0, s, e);
            }
            finally
            {
                insideParallelWork = false;
                for (int i = 0; i < SpinRounds && Volatile.Read(ref remaining) > 0; i++) Thread.SpinWait(8);
                lock (gate)
                {
                    while (remaining > 0) Monitor.Wait(gate);
                    this.body = null;
                }
            }
            failure?.Throw();
        }

        void Loop(int part)
        {
            insideParallelWork = true;
            long seen = 0;
            while (true)
            {
                Action<int, int, int>? work;
                int n, p;
                for (int i = 0; i < SpinRounds && Volatile.Read(ref generation) == seen && !Volatile.Read(ref stopping); i++) Thread.SpinWait(8);
                lock (gate)
                {
                    while (generation == seen && !stopping) Monitor.Wait(gate);
                    if (stopping) return;
                    seen = generation;
                    work = body; n = count; p = parts;
                }
                if (part >= p || work is null) continue;
                try
                {
                    var (s, e) = Range(n, p, part);
                    work(part, s, e);
                }
                catch (Exception ex)
                {
                    lock (gate) failure ??= ExceptionDispatchInfo.Capture(ex);
                }
                lock (gate)
                {
                    if (--remaining == 0) Monitor.PulseAll(gate);
                }
            }
        }

        public void Stop()
        {
            lock (gate)
            {
                stopping = true;
                Monitor.PulseAll(gate);
            }
        }
    }
}
