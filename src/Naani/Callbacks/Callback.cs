using System.Text.Json.Nodes;
using Naani.Models;

namespace Naani.Callbacks;

/// What a callback keeps from one epoch to the next, for checkpoints: values, and tensors where it holds
/// weights (EarlyStopping's best ones).
public sealed record CallbackState(JsonObject Values, IReadOnlyDictionary<string, float[]>? Tensors = null);

/// What Fit tells callbacks before the first epoch.
public sealed record TrainingInfo(int Epochs, int StepsPerEpoch, int Samples, int BatchSize, int ValidationSamples);

/// Running figures of the current epoch after a batch.
public sealed record BatchProgress(int Epoch, int Step, int StepsPerEpoch, int SamplesSeen, double Loss, double Accuracy, double Seconds)
{
    public double ImagesPerSecond => Seconds > 0 ? SamplesSeen / Seconds : 0;
    public double EtaSeconds => Step > 0 ? Seconds / Step * (StepsPerEpoch - Step) : 0;
}

/// Hooks into Fit. Override what you need; set Model.StopTraining to end training after this epoch.
public abstract class Callback
{
    public Models.Model Model { get; internal set; } = null!;

    public virtual void OnTrainBegin(TrainingInfo info) { }
    public virtual void OnEpochBegin(int epoch) { }
    public virtual void OnBatchEnd(BatchProgress progress) { }
    /// logs holds loss, accuracy (if compiled with it), val_loss, val_accuracy, images_per_second, seconds.
    public virtual void OnEpochEnd(int epoch, IReadOnlyDictionary<string, double> logs) { }
    public virtual void OnTrainEnd() { }

    /// A step's loss or gradient was NaN or infinite (the optimizer has not applied it). Return what Fit should
    /// do, or null to leave it to the next callback and then to Model.OnNonFinite.
    public virtual NonFiniteAction? OnNonFinite(NonFiniteStep step) => null;

    /// The state a resumed run needs to carry on as if never stopped (null: nothing to keep).
    public virtual CallbackState? GetState() => null;

    /// Restores what GetState returned; called after OnTrainBegin when a run resumes from a checkpoint.
    public virtual void SetState(CallbackState state) { }

    /// A double for a JSON state (Serialization.JsonNumbers): infinities and NaN as strings.
    protected static JsonNode DoubleToJson(double value) => Serialization.JsonNumbers.ToJson(value);

    protected static double DoubleFromJson(JsonNode? node) => Serialization.JsonNumbers.FromJson(node);
}

/// Ends training quietly at the first batch whose loss or gradient is NaN or infinite, as Keras's TerminateOnNaN:
/// no exception, the weights as they were before that batch, the history up to the last finished epoch.
public sealed class TerminateOnNaN : Callback
{
    /// The step that ended training (null if none did).
    public NonFiniteStep? Terminated { get; private set; }

    public override void OnTrainBegin(TrainingInfo info) => Terminated = null;

    public override NonFiniteAction? OnNonFinite(NonFiniteStep step)
    {
        Terminated = step;
        return NonFiniteAction.EndTraining;
    }
}

/// Prints one line per epoch, as Keras's verbose=2: "Epoch 1/5 - 12.3s - loss: 0.4521 - accuracy: 0.8412 - ...".
public sealed class EpochLogger(Action<string>? write = null) : Callback
{
    readonly Action<string> write = write ?? Console.WriteLine;
    int epochs;

    public override void OnTrainBegin(TrainingInfo info) => epochs = info.Epochs;

    public override void OnEpochEnd(int epoch, IReadOnlyDictionary<string, double> logs)
    {
        var parts = logs.Where(kv => kv.Key is not "seconds" and not "images_per_second")
            .Select(kv => $"{kv.Key}: {kv.Value:0.0000}");
        write($"Epoch {epoch + 1}/{epochs} - {logs.GetValueOrDefault("seconds"):0.0}s - {string.Join(" - ", parts)} - {logs.GetValueOrDefault("images_per_second"):0} img/s");
    }
}

/// Stops training when the monitored value has not improved by minDelta for patience epochs;
/// optionally puts back the weights of the best epoch.
public sealed class EarlyStopping(string monitor = "val_loss", int patience = 0, double minDelta = 0, bool restoreBestWeights = false) : Callback
{
    public string Monitor { get; } = monitor;
    public int Patience { get; } = patience;
    public double MinDelta { get; } = Math.Abs(minDelta);
    public bool RestoreBestWeights { get; } = restoreBestWeights;
    public int StoppedEpoch { get; private set; } = -1;
    public int BestEpoch { get; private set; } = -1;
    public double Best { get; private set; }

    int wait;
    List<Tensor>? bestWeights;

    bool Maximize => Monitor.Contains("acc") || Monitor.Contains("precision") || Monitor.Contains("recall") || Monitor.Contains("f1");

    public override void OnTrainBegin(TrainingInfo info)
    {
        wait = 0;
        StoppedEpoch = BestEpoch = -1;
        Best = Maximize ? double.NegativeInfinity : double.PositiveInfinity;
        bestWeights = null;
    }

    public override CallbackState GetState() => new(
        new JsonObject { ["wait"] = wait, ["best"] = DoubleToJson(Best), ["best_epoch"] = BestEpoch, ["stopped_epoch"] = StoppedEpoch },
        bestWeights is null ? null : bestWeights.Select((t, i) => (t, i)).ToDictionary(p => p.i.ToString(System.Globalization.CultureInfo.InvariantCulture), p => p.t.Data));

    public override void SetState(CallbackState state)
    {
        wait = state.Values["wait"]!.GetValue<int>();
        Best = DoubleFromJson(state.Values["best"]);
        BestEpoch = state.Values["best_epoch"]!.GetValue<int>();
        StoppedEpoch = state.Values["stopped_epoch"]!.GetValue<int>();
        bestWeights = null;
        if (state.Tensors is { Count: > 0 } tensors)
        {
            var shapes = Model.Parameters;
            if (tensors.Count != shapes.Count)
                throw new InvalidDataException($"EarlyStopping's saved best weights have {tensors.Count} tensors; model '{Model.Name}' has {shapes.Count}.");
            bestWeights = [.. shapes.Select((p, i) => new Tensor(p.Shape, tensors[i.ToString(System.Globalization.CultureInfo.InvariantCulture)]))];
        }
    }

    public override void OnEpochEnd(int epoch, IReadOnlyDictionary<string, double> logs)
    {
        if (!logs.TryGetValue(Monitor, out var value))
            throw new InvalidOperationException($"EarlyStopping monitors '{Monitor}', which this training does not log; available: {string.Join(", ", logs.Keys)}.");
        bool improved = Maximize ? value > Best + MinDelta : value < Best - MinDelta;
        if (improved)
        {
            Best = value;
            BestEpoch = epoch;
            wait = 0;
            if (RestoreBestWeights) bestWeights = Model.GetWeights();
            return;
        }
        if (++wait >= Patience)   // as Keras: patience 1 stops after the first epoch without improvement
        {
            StoppedEpoch = epoch;
            Model.StopTraining = true;
            if (RestoreBestWeights && bestWeights is not null) Model.SetWeights(bestWeights);
        }
    }
}
