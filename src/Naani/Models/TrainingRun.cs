using Naani.Callbacks;

namespace Naani.Models;

/// Where a Fit stands: the epoch in progress and the steps done in it, that epoch's running sums, the
/// history so far, and the random streams that decide what comes next. A checkpoint
/// (Callbacks.BackupAndRestore, Serialization.Checkpoint) stores it with the model and its optimizer;
/// a Fit restored from one continues bit for bit where the saved run was (same seed and thread count).
public sealed class TrainingRun
{
    readonly Func<string> fingerprint;
    string? dataFingerprint;

    internal TrainingRun(TrainingInfo info, int outputs, IReadOnlyList<Callback> callbacks, Func<string> fingerprint, string dataDescription)
    {
        Info = info;
        OutputLossSums = new double[outputs];
        Callbacks = callbacks;
        this.fingerprint = fingerprint;
        DataDescription = dataDescription;
    }

    public TrainingInfo Info { get; }

    /// The epoch in progress (0-based); after an epoch ends, the next one.
    public int Epoch { get; internal set; }

    /// Steps done in Epoch (0 at its start).
    public int Step { get; internal set; }

    /// The logs of every finished epoch.
    public History History { get; internal set; } = new();

    /// Batches whose loss or gradient was not finite and that were skipped (NonFiniteAction.SkipBatch), over the whole run.
    public int SkippedBatches { get; internal set; }

    /// A checksum of the training data (its tensors, or what identifies a streamed source): a run resumes only on the same data.
    public string DataFingerprint => dataFingerprint ??= fingerprint();

    /// What the data is, in words (shapes and counts), for the message that refuses other data.
    public string DataDescription { get; }

    // The running sums of the epoch in progress, as RunEpochs keeps them.
    internal double LossSum;
    internal double[] OutputLossSums;
    internal long Correct;
    internal int Seen;
    internal double EpochSeconds;

    /// Whether a callback had asked training to stop when the state was taken (EarlyStopping).
    internal bool Stopped;

    /// The in-memory Fit's shuffling: its generator and the current epoch's order of samples (null for a streamed source).
    internal Rng? ShuffleRandom;
    internal int[]? Order;

    /// The group of a data-parallel Fit (null for one process).
    public Distributed.ICommunicator? Communicator { get; internal set; }

    /// Whether this process writes the run's files: always in one process, rank 0 alone in data-parallel training.
    public bool IsMainRank => Communicator is null || Communicator.Rank == 0;

    /// The callbacks of this Fit, BackupAndRestore last.
    internal IReadOnlyList<Callback> Callbacks { get; }

    internal void StartEpoch()
    {
        Step = 0;
        LossSum = 0;
        Array.Clear(OutputLossSums);
        Correct = 0;
        Seen = 0;
        EpochSeconds = 0;
    }
}
