namespace Naani.Distributed;

/// The collective operations that synchronous data-parallel training needs from a group of processes
/// (ranks): every rank calls the same operations in the same order, and each returns the same result on
/// every rank. Naani's core only uses this interface; the MPI implementation (MpiCommunicator, in the
/// Naani.Distributed package) and an in-process one for tests (InProcessGroup) provide it.
public interface ICommunicator
{
    /// This process's place in the group, 0 to Size - 1. Rank 0 is the one that writes files.
    int Rank { get; }

    /// The number of ranks.
    int Size { get; }

    /// Sums values element by element across ranks, in place: afterwards every rank holds the sum.
    void AllreduceSum(Span<float> values);

    /// AllreduceSum for doubles (losses, counts and metrics).
    void AllreduceSum(Span<double> values);

    /// Starts summing buffer[0, count) across ranks in place and returns at once; the buffer must not be
    /// read or written until the returned operation completes. Ranks start their operations in the same order.
    IPendingReduction StartAllreduceSum(float[] buffer, int count);

    /// Copies root's values to every rank.
    void Broadcast(Span<float> values, int root);

    /// Copies root's bytes to every rank.
    void Broadcast(Span<byte> values, int root);

    /// Every rank's value, in rank order, on every rank.
    long[] AllGather(long value);

    /// Returns when every rank has called it.
    void Barrier();
}

/// A reduction started by ICommunicator.StartAllreduceSum.
public interface IPendingReduction
{
    /// Whether it has completed (and lets it progress: MPI moves non-blocking collectives on inside its calls).
    bool Test();

    /// Waits until it has completed.
    void Wait();
}
