using System.Runtime.ExceptionServices;

namespace Naani.Data;

/// Prepares the items of a sequence on a background thread, one ahead of the consumer, in two
/// alternating slots: while the consumer works on item i (slot i % 2), item i + 1 is prepared in the
/// other slot. produce(i, slot) fills a slot with item i. Fit uses it to gather the next mini-batch
/// while the training step runs. Nothing is allocated per item; an exception thrown by produce
/// reaches the consumer at its next Next(). Dispose stops the thread (also before the end).
public sealed class Prefetcher : IDisposable
{
    readonly Action<int, int> produce;
    readonly int count;
    readonly SemaphoreSlim ready = new(0), free = new(2);
    readonly Thread thread;
    volatile bool stopping;
    Exception? error;
    int next;
    bool holding, disposed;

    public Prefetcher(int count, Action<int, int> produce, string name = "naani-prefetch")
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        this.count = count;
        this.produce = produce ?? throw new ArgumentNullException(nameof(produce));
        thread = new Thread(Run) { IsBackground = true, Name = name };
        thread.Start();
    }

    void Run()
    {
        try
        {
            for (int i = 0; i < count; i++)
            {
                free.Wait();
                if (stopping) return;
                produce(i, i & 1);
                ready.Release();
            }
        }
        catch (Exception e)
        {
            error = e;
            ready.Release();
        }
    }

    /// Waits until the next item is ready and returns its slot (0 or 1). The slot of the item returned
    /// before is handed back to the producer: the caller is done with it.
    public int Next()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (holding)
        {
            holding = false;
            free.Release();
        }
        if (next >= count) throw new InvalidOperationException($"All {count} items were taken.");
        ready.Wait();
        if (error is not null) ExceptionDispatchInfo.Capture(error).Throw();
        holding = true;
        return next++ & 1;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        stopping = true;
        free.Release(2);   // wakes the producer if it waits for a slot
        thread.Join();
        ready.Dispose();
        free.Dispose();
    }
}
