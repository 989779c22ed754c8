using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Naani.Serialization;

namespace Naani.Callbacks;

/// Keeps a run safe from crashes, as Keras's BackupAndRestore: saves a checkpoint (Serialization.Checkpoint:
/// the model, its optimizer and the whole training state) into Directory every SaveEverySteps steps and at
/// every epoch end, keeping the newest Keep; when Fit starts and the folder holds a checkpoint, the run
/// continues from the newest readable one, bit for bit as if it had never stopped (same seed and thread
/// count). Checkpoints are written atomically, and older ones are deleted only after the new one is in
/// place, so a kill at any moment leaves at least one readable checkpoint once the first has been saved.
/// Fit runs this callback after all others, so what it saves includes their state.
public sealed partial class BackupAndRestore : Callback
{
    public BackupAndRestore(string directory, int saveEverySteps = 0, bool saveEveryEpoch = true, int keep = 2,
        bool deleteOnTrainEnd = true, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (saveEverySteps < 0) throw new ArgumentOutOfRangeException(nameof(saveEverySteps), $"Checkpoint interval must be 0 (epoch ends only) or a number of steps; got {saveEverySteps}.");
        if (keep < 1) throw new ArgumentOutOfRangeException(nameof(keep), $"At least one checkpoint must be kept; got {keep}.");
        Directory = Path.GetFullPath(directory);
        SaveEverySteps = saveEverySteps;
        SaveEveryEpoch = saveEveryEpoch;
        Keep = keep;
        DeleteOnTrainEnd = deleteOnTrainEnd;
        this.log = log ?? (_ => { });
    }

    readonly Action<string> log;

    public string Directory { get; }
    public int SaveEverySteps { get; }
    public bool SaveEveryEpoch { get; }
    public int Keep { get; }

    /// Delete the checkpoints when Fit ends normally (Keras's default), so the next Fit starts afresh.
    public bool DeleteOnTrainEnd { get; }

    /// Stored in every checkpoint as it is (the CLI keeps its command line here).
    public JsonObject? UserState { get; set; }

    /// The checkpoint this Fit resumed from (null when it started afresh).
    public Checkpoint.Info? RestoredFrom { get; private set; }

    /// The newest checkpoint written by this Fit.
    public string? LastSaved { get; private set; }

    /// The checkpoint files in directory, newest first (names checkpoint-NNNNNNNNN.naani, NNNNNNNNN the steps
    /// since the start of the run). Temporary files of a save that was cut short are not among them.
    public static IReadOnlyList<string> List(string directory) =>
        !System.IO.Directory.Exists(directory) ? [] :
        [.. System.IO.Directory.EnumerateFiles(directory, "checkpoint-*.naani")
            .Where(f => FileName().IsMatch(Path.GetFileName(f)))
            .OrderByDescending(f => Path.GetFileName(f), StringComparer.Ordinal)];

    /// The newest checkpoint in directory that reads back whole, with its state; null when there is none.
    /// Damaged files are passed over (and reported through log).
    public static Checkpoint.Info? Latest(string directory, Action<string>? log = null)
    {
        foreach (var file in List(directory))
        {
            try
            {
                return Checkpoint.Read(file);
            }
            catch (InvalidDataException e)
            {
                log?.Invoke($"Skipping checkpoint {file}: {e.Message}");
            }
        }
        return null;
    }

    [GeneratedRegex(@"^checkpoint-\d{9,}\.naani$")]
    private static partial Regex FileName();

    string PathFor(long position) => Path.Combine(Directory, $"checkpoint-{position.ToString("D9", CultureInfo.InvariantCulture)}.naani");

    public override void OnTrainBegin(TrainingInfo info)
    {
        RestoredFrom = null;
        LastSaved = null;
        RemoveLeftovers();
        var run = Model.CurrentRun ?? throw new InvalidOperationException("BackupAndRestore works inside Model.Fit.");
        foreach (var file in List(Directory))
        {
            try
            {
                RestoredFrom = Checkpoint.Restore(Model, run, file);
            }
            catch (InvalidDataException e)
            {
                log($"Skipping damaged checkpoint {file}: {e.Message}");
                continue;
            }
            log($"Resuming from {file}: epoch {RestoredFrom.Epoch + 1}, step {RestoredFrom.Step} of {RestoredFrom.StepsPerEpoch}.");
            if (RestoredFrom.Threads != Threading.MaxThreads)
                log($"The checkpoint was made with {RestoredFrom.Threads} threads and this run has {Threading.MaxThreads}: " +
                    "it continues correctly but not bit for bit (sums are split differently between threads).");
            return;
        }
    }

    public override void OnBatchEnd(BatchProgress progress)
    {
        if (SaveEverySteps <= 0) return;
        var run = Model.CurrentRun!;
        long position = (long)run.Epoch * run.Info.StepsPerEpoch + run.Step;
        if (position % SaveEverySteps == 0) Save(position);
    }

    // Fit has moved the run to the next epoch's start before OnEpochEnd, so this records the finished epoch.
    public override void OnEpochEnd(int epoch, IReadOnlyDictionary<string, double> logs)
    {
        if (SaveEveryEpoch) Save((long)Model.CurrentRun!.Epoch * Model.CurrentRun.Info.StepsPerEpoch);
    }

    public override void OnTrainEnd()
    {
        if (!DeleteOnTrainEnd || Model.CurrentRun is { IsMainRank: false }) return;
        foreach (var file in List(Directory)) File.Delete(file);
    }

    /// Saves the run as it stands now; then deletes all but the newest Keep checkpoints.
    public void Save(long position)
    {
        if (Model.CurrentRun is { IsMainRank: false }) return;   // data-parallel training: rank 0 alone writes
        var file = PathFor(position);
        Checkpoint.Save(Model, Model.CurrentRun!, file, UserState);
        LastSaved = file;
        foreach (var old in List(Directory).Skip(Keep))
        {
            try
            {
                File.Delete(old);
            }
            catch (IOException e)
            {
                log($"Could not delete old checkpoint {old}: {e.Message}");
            }
        }
    }

    /// Temporary files of saves that a kill cut short: never checkpoints, safe to remove.
    void RemoveLeftovers()
    {
        if (!System.IO.Directory.Exists(Directory)) return;
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "checkpoint-*.tmp-*"))
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException) { }
        }
    }
}
