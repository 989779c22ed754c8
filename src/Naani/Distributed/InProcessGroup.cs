namespace Naani.Distributed;

/// A group of ranks that are threads of one process, for tests and for trying data-parallel training
/// without MPI: InProcessGroup.Run(2, comm => ...) runs the body on two threads, each with its own
/// communicator, each inside Threading.RunSerially (one core per rank, as with mpirun -np 2 and one
/// thread per rank). Collectives sum in rank order, so results do not depend on timing.
public sealed class InProcessGroup
{
    readonly Barrier barrier;
    readonly CancellationTokenSource failed = new();
    readonly float[][] floats;
    readonly double[][] doubles;
    readonly byte[][] bytes;
    readonly long[] longs;

    InProcessGroup(int size)
    {
        Size = size;
        barrier = new Barrier(size);
        floats = new float[size][];
        doubles = new double[size][];
        bytes = new byte[size][];
        longs = new long[size];
        for (int r = 0; r < size; r++) (floats[r], doubles[r], bytes[r]) = ([], [], []);
    }

    public int Size { get; }

    /// Runs body(communicator) on size threads, one per rank, and returns their results in rank order.
    /// If any rank throws, the others are released from their collectives and the first exception is rethrown.
    public static T[] Run<T>(int size, Func<ICommunicator, T> body)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), $"A group needs at least one rank; got {size}.");
        var group = new InProcessGroup(size);
        var results = new T[size];
        var errors = new Exception?[size];
        var threads = new Thread[size];
        for (int r = 0; r < size; r++)
        {
            int rank = r;
            threads[r] = new Thread(() =>
            {
                try
                {
                    using var serial = Threading.RunSerially();
                    results[rank] = body(new Member(group, rank));
                }
                catch (Exception e)
                {
                    errors[rank] = e;
                    group.failed.Cancel();
                }
            }, 16 << 20)
            { Name = $"naani-rank-{rank}", IsBackground = true };
            threads[r].Start();
        }
        foreach (var t in threads) t.Join();
        var first = errors.FirstOrDefault(e => e is not null and not OperationCanceledException) ?? errors.FirstOrDefault(e => e is not null);
        if (first is not null) throw new AggregateException($"Rank {Array.IndexOf(errors, first)} of an in-process group failed: {first.Message}", first);
        return results;
    }

    /// Run for a body without a result.
    public static void Run(int size, Action<ICommunicator> body) => Run(size, c => { body(c); return 0; });

    void Wait() => barrier.SignalAndWait(failed.Token);

    sealed class Member(InProcessGroup group, int rank) : ICommunicator
    {
        public int Rank => rank;
        public int Size => group.Size;

        public void AllreduceSum(Span<float> values) => Sum(values, group.floats);

        public void AllreduceSum(Span<double> values) => Sum(values, group.doubles);

        // Every rank posts its values in its slot, then sums all slots in rank order (the same bits on every rank).
        void Sum<T>(Span<T> values, T[][] slots) where T : System.Numerics.INumber<T>
        {
            ref var mine = ref slots[rank];
            if (mine.Length < values.Length) mine = new T[values.Length];
            values.CopyTo(mine);
            group.Wait();
            values.Clear();
            for (int r = 0; r < group.Size; r++)
            {
                var other = slots[r].AsSpan(0, values.Length);
                for (int i = 0; i < values.Length; i++) values[i] += other[i];
            }
            group.Wait();
        }

        public IPendingReduction StartAllreduceSum(float[] buffer, int count)
        {
            AllreduceSum(buffer.AsSpan(0, count));
            return Completed.Instance;
        }

        public void Broadcast(Span<float> values, int root)
        {
            if (rank == root) group.floats[root] = values.ToArray();
            group.Wait();
            if (rank != root) group.floats[root].AsSpan(0, values.Length).CopyTo(values);
            group.Wait();
        }

        public void Broadcast(Span<byte> values, int root)
        {
            if (rank == root) group.bytes[root] = values.ToArray();
            group.Wait();
            if (rank != root) group.bytes[root].AsSpan(0, values.Length).CopyTo(values);
            group.Wait();
        }

        public long[] AllGather(long value)
        {
            group.longs[rank] = value;
            group.Wait();
            var all = (long[])group.longs.Clone();
            group.Wait();
            return all;
        }

        public void Barrier() => group.Wait();
    }

    sealed class Completed : IPendingReduction
    {
        public static readonly Completed Instance = new();
        public bool Test() => true;
        public void Wait() { }
    }
}
