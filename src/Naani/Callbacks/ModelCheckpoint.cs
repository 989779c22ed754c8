using System.Globalization;

namespace Naani.Callbacks;

/// Saves the model (Model.Save, with the optimizer's state) at the end of every epoch, or with
/// saveBestOnly only when the monitored value improves on the best so far. "{epoch}" in path (or
/// Keras's "{epoch:02d}") becomes the 1-based epoch number in two digits: "ckpt-{epoch}.naani" ->
/// "ckpt-03.naani". Values whose name holds acc, precision, recall or f1 are maximized, others
/// minimized, as in EarlyStopping.
public sealed class ModelCheckpoint(string path, string monitor = "val_loss", bool saveBestOnly = false) : Callback
{
    public string Path { get; } = !string.IsNullOrEmpty(path) ? path : throw new ArgumentException("ModelCheckpoint needs a file path.", nameof(path));
    public string Monitor { get; } = monitor;
    public bool SaveBestOnly { get; } = saveBestOnly;

    /// The best monitored value seen (with saveBestOnly), and the file written last (null before the first save).
    public double Best { get; private set; }
    public string? LastSavedPath { get; private set; }

    bool Maximize => Monitor.Contains("acc") || Monitor.Contains("precision") || Monitor.Contains("recall") || Monitor.Contains("f1");

    public override void OnTrainBegin(TrainingInfo info)
    {
        Best = Maximize ? double.NegativeInfinity : double.PositiveInfinity;
        LastSavedPath = null;
    }

    public override CallbackState GetState() => new(new System.Text.Json.Nodes.JsonObject { ["best"] = DoubleToJson(Best), ["last_saved"] = LastSavedPath });

    public override void SetState(CallbackState state)
    {
        Best = DoubleFromJson(state.Values["best"]);
        LastSavedPath = state.Values["last_saved"]?.GetValue<string>();
    }

    public override void OnEpochEnd(int epoch, IReadOnlyDictionary<string, double> logs)
    {
        if (SaveBestOnly)
        {
            if (!logs.TryGetValue(Monitor, out var value))
                throw new InvalidOperationException($"ModelCheckpoint monitors '{Monitor}', which this training does not log; available: {string.Join(", ", logs.Keys)}.");
            if (!(Maximize ? value > Best : value < Best)) return;
            Best = value;
        }
        string file = FilePath(epoch);
        if (Model.CurrentRun is { IsMainRank: false }) return;   // data-parallel training: rank 0 alone writes
        string? directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file));
        if (directory is not null) Directory.CreateDirectory(directory);
        Model.Save(file);
        LastSavedPath = file;
    }

    /// The path for a 0-based epoch index.
    public string FilePath(int epoch)
    {
        string number = (epoch + 1).ToString("00", CultureInfo.InvariantCulture);
        return Path.Replace("{epoch:02d}", number).Replace("{epoch}", number);
    }
}
