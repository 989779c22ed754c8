using System.Runtime.InteropServices;

namespace Naani.Distributed;

/// ICommunicator over MPI's MPI_COMM_WORLD (Open MPI), for `mpirun -np N naani train ...` or a program of
/// one's own launched by mpirun or srun:
///
///     using var world = MpiCommunicator.FromEnvironment();   // null when not launched by mpirun: no MPI at all
///     model.Fit(x, y, batchSize: 32, epochs: 2, distributed: world);
///
/// Calls come from one thread at a time (MPI_THREAD_SERIALIZED); Naani's kernels never call MPI. Dispose
/// finalizes MPI (when this object initialized it).
public sealed unsafe class MpiCommunicator : ICommunicator, IDisposable
{
    readonly bool initializedHere;
    bool disposed;

    MpiCommunicator(bool initializedHere, int rank, int size) => (this.initializedHere, Rank, Size) = (initializedHere, rank, size);

    public int Rank { get; }
    public int Size { get; }

    /// Whether this process was started by an MPI launcher (mpirun/mpiexec of Open MPI, or srun with PMIx).
    public static bool LaunchedByMpi =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null || Environment.GetEnvironmentVariable("PMIX_RANK") is not null;

    /// How many ranks the launcher started on this machine (OMPI_COMM_WORLD_LOCAL_SIZE), for sharing its cores among them.
    public static int LocalSize =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), out int n) && n > 0 ? n : 1;

    /// How many ranks the launcher started in all (OMPI_COMM_WORLD_SIZE), known before MPI is initialized; 1 outside mpirun.
    public static int WorldSize =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE"), out int n) && n > 0 ? n : 1;

    /// The world communicator when launched by mpirun; null otherwise, without loading MPI.
    public static MpiCommunicator? FromEnvironment() => LaunchedByMpi ? Initialize() : null;

    /// Initializes MPI (unless the program already did) and returns the world communicator.
    public static MpiCommunicator Initialize()
    {
        Native.Load();
        Native.Check(Native.MPI_Initialized(out int already), "MPI_Initialized");
        if (already == 0)
        {
            Native.Check(Native.MPI_Init_thread(0, 0, Native.ThreadSerialized, out int provided), "MPI_Init_thread");
            if (provided < Native.ThreadSerialized)
                throw new InvalidOperationException($"This MPI library provides thread level {provided}; Naani needs MPI_THREAD_SERIALIZED (2): its calls may come from different threads, one at a time.");
        }
        Native.Check(Native.MPI_Comm_rank(Native.CommWorld, out int rank), "MPI_Comm_rank");
        Native.Check(Native.MPI_Comm_size(Native.CommWorld, out int size), "MPI_Comm_size");
        return new MpiCommunicator(already == 0, rank, size);
    }

    public void AllreduceSum(Span<float> values)
    {
        fixed (float* p = values) Native.Check(Native.MPI_Allreduce(Native.InPlace, (nint)p, values.Length, Native.Float, Native.Sum, Native.CommWorld), "MPI_Allreduce");
    }

    public void AllreduceSum(Span<double> values)
    {
        fixed (double* p = values) Native.Check(Native.MPI_Allreduce(Native.InPlace, (nint)p, values.Length, Native.Double, Native.Sum, Native.CommWorld), "MPI_Allreduce");
    }

    public IPendingReduction StartAllreduceSum(float[] buffer, int count)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        if (count < 0 || count > buffer.Length) throw new ArgumentOutOfRangeException(nameof(count), $"{count} values of a buffer of {buffer.Length}.");
        // One reduction object per buffer, reused step after step (a training step allocates nothing): a buffer's previous
        // reduction has been waited for before it is started again.
        var pending = pendingOf.GetValue(buffer, _ => new Pending());
        pending.Start(buffer, count);
        return pending;
    }

    public void Broadcast(Span<float> values, int root)
    {
        fixed (float* p = values) Native.Check(Native.MPI_Bcast((nint)p, values.Length, Native.Float, root, Native.CommWorld), "MPI_Bcast");
    }

    public void Broadcast(Span<byte> values, int root)
    {
        fixed (byte* p = values) Native.Check(Native.MPI_Bcast((nint)p, values.Length, Native.Byte, root, Native.CommWorld), "MPI_Bcast");
    }

    public long[] AllGather(long value)
    {
        var all = new long[Size];
        fixed (long* p = all) Native.Check(Native.MPI_Allgather((nint)(&value), 1, Native.Int64, (nint)p, 1, Native.Int64, Native.CommWorld), "MPI_Allgather");
        return all;
    }

    public void Barrier() => Native.Check(Native.MPI_Barrier(Native.CommWorld), "MPI_Barrier");

    /// Ends the whole job (every rank) with an error code: for a rank that cannot go on while the others wait in a collective.
    public void Abort(int code) => Native.MPI_Abort(Native.CommWorld, code);

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (initializedHere && Native.MPI_Finalized(out int done) == 0 && done == 0) Native.MPI_Finalize();
    }

    readonly System.Runtime.CompilerServices.ConditionalWeakTable<float[], Pending> pendingOf = [];

    // One MPI_Iallreduce in flight, its buffer pinned until it completes.
    sealed class Pending : IPendingReduction
    {
        nint request;
        GCHandle pin;
        bool active;

        public void Start(float[] buffer, int count)
        {
            if (active) throw new InvalidOperationException("A reduction on this buffer is still in flight: wait for it before starting another.");
            pin = GCHandle.Alloc(buffer, GCHandleType.Pinned);
            var p = pin.AddrOfPinnedObject();
            active = true;
            int code = Native.MPI_Iallreduce(Native.InPlace, p, count, Native.Float, Native.Sum, Native.CommWorld, out request);
            if (code != 0) Complete();
            Native.Check(code, "MPI_Iallreduce");
        }

        public bool Test()
        {
            if (!active) return true;
            Native.Check(Native.MPI_Test(ref request, out int flag, Native.StatusIgnore), "MPI_Test");
            if (flag != 0) Complete();
            return flag != 0;
        }

        public void Wait()
        {
            if (!active) return;
            Native.Check(Native.MPI_Wait(ref request, Native.StatusIgnore), "MPI_Wait");
            Complete();
        }

        void Complete()
        {
            active = false;
            pin.Free();
        }
    }
}
