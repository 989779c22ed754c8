using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Naani.Callbacks;
using Naani.Metrics;
using Naani.Models;

namespace Naani.Vision;

/// What the monitor evaluates at each epoch's end: a few validation images shown with their predicted and true labels,
/// and optionally the whole validation set for the confusion matrix.
/// GridImages: (N, H, W, C) in [0, 1]; GridLabels: their classes. PredictValidation: the model's outputs on the
/// validation set and the true labels (null: the confusion matrix is made from the grid images alone).
public sealed record MonitorValidation(Tensor GridImages, int[] GridLabels, Func<Model, (Tensor Outputs, int[] Labels)>? PredictValidation = null);

/// Watches a training run and keeps what its dashboard shows (Naani.Vision.DashboardPage): the loss and accuracy of
/// every batch, each epoch's figures, the confusion matrix on the validation data at each epoch's end, and a grid of
/// validation images with what the model predicts for them. The state is one JSON document (Snapshot); listeners get
/// it whole when they subscribe and then each change as an event (name, JSON), as Server-Sent Events send them.
/// Batches are sent at most every EventInterval (and at each epoch's end), so a fast run sends a few events a second.
/// The batch curves and epoch records are kept in checkpoints (GetState), so a resumed run's report shows the whole run.
public sealed class TrainingMonitor : Callback
{
    /// How often batch events go out at most.
    public TimeSpan EventInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    readonly object gate = new();
    readonly string title;
    readonly IReadOnlyList<string> classNames;
    readonly MonitorValidation? validation;
    readonly int batchSize;
    readonly List<Action<string, string>> listeners = [];
    readonly Stopwatch sinceEvent = new();
    readonly Stopwatch runClock = new();

    // The batch curves, one entry per batch: x = epoch + step / steps, the batch's own loss and accuracy (derived from
    // the epoch's running means), and the epoch's images per second so far.
    readonly List<float> x = [], loss = [], accuracy = [], rate = [];
    readonly List<JsonObject> epochs = [];
    int sent;
    string status = "waiting";
    string? message;
    TrainingInfo? info;
    BatchProgress? last;
    double previousLossSum, previousCorrect;
    int previousSeen;
    string[]? gridImages;

    /// title: the run's name on the page; classNames: the names of the model's classes (the confusion matrix's rows).
    public TrainingMonitor(string title, IReadOnlyList<string> classNames, MonitorValidation? validation = null, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        if (validation is not null && validation.GridImages.Batch != validation.GridLabels.Length)
            throw new ArgumentException($"The monitor's grid has {validation.GridImages.Batch} images but {validation.GridLabels.Length} labels.", nameof(validation));
        this.title = title;
        this.classNames = classNames;
        this.validation = validation;
        this.batchSize = batchSize;
    }

    /// Batches recorded so far.
    public int BatchCount
    {
        get { lock (gate) return x.Count; }
    }

    /// Epochs finished so far.
    public int EpochCount
    {
        get { lock (gate) return epochs.Count; }
    }

    /// Adds a listener: it is called at once with ("state", the whole state), then with every change, on the
    /// training thread; it must not block (queue the text). Dispose the result to stop listening.
    public IDisposable Subscribe(Action<string, string> listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (gate)
        {
            listener("state", SnapshotUnlocked().ToJsonString());
            listeners.Add(listener);
        }
        return new Subscription(this, listener);
    }

    sealed class Subscription(TrainingMonitor monitor, Action<string, string> listener) : IDisposable
    {
        public void Dispose()
        {
            lock (monitor.gate) monitor.listeners.Remove(listener);
        }
    }

    /// The whole state as the page reads it.
    public JsonObject Snapshot()
    {
        lock (gate) return SnapshotUnlocked();
    }

    /// Marks the run finished (or stopped, with a reason) and tells the listeners; the page stops listening.
    public void Finish(string? failure = null)
    {
        lock (gate)
        {
            status = failure is null ? "finished" : "stopped";
            message = failure;
            SendBatches();
            Send("status", StatusJson());
            Send("end", new JsonObject { ["status"] = status });
        }
    }

    public override void OnTrainBegin(TrainingInfo info)
    {
        lock (gate)
        {
            this.info = info;
            status = "training";
            runClock.Restart();
            sinceEvent.Restart();
            gridImages ??= validation is null ? [] : [.. Enumerable.Range(0, validation.GridImages.Batch)
                .Select(i => Convert.ToBase64String(ImageFile.EncodePng(validation.GridImages.SliceBatch(i, 1))))];
            Send("state", SnapshotUnlocked());
            sent = x.Count;
        }
    }

    public override void OnEpochBegin(int epoch)
    {
        lock (gate)
        {
            previousLossSum = previousCorrect = 0;
            previousSeen = 0;
        }
    }

    public override void OnBatchEnd(BatchProgress progress)
    {
        lock (gate)
        {
            // The running means of the epoch so far, turned back into this batch's own loss and accuracy. A run resumed in
            // the middle of an epoch has running means from before; its first batch shows them as they are.
            double lossSum = progress.Loss * progress.SamplesSeen, correct = progress.Accuracy * progress.SamplesSeen;
            int samples = progress.SamplesSeen - previousSeen;
            bool continues = previousSeen > 0 || progress.Step == 1;
            double batchLoss = continues && samples > 0 ? (lossSum - previousLossSum) / samples : progress.Loss;
            double batchAccuracy = continues && samples > 0 ? (correct - previousCorrect) / samples : progress.Accuracy;
            previousLossSum = lossSum;
            previousCorrect = correct;
            previousSeen = progress.SamplesSeen;
            x.Add((float)(progress.Epoch + (double)progress.Step / Math.Max(1, progress.StepsPerEpoch)));
            loss.Add((float)batchLoss);
            accuracy.Add((float)Math.Clamp(batchAccuracy, 0, 1));
            rate.Add((float)progress.ImagesPerSecond);
            last = progress;
            if (progress.Step == progress.StepsPerEpoch || sinceEvent.Elapsed >= EventInterval)
            {
                SendBatches();
                Send("status", StatusJson());
                sinceEvent.Restart();
            }
        }
    }

    public override void OnEpochEnd(int epoch, IReadOnlyDictionary<string, double> logs)
    {
        // The model predicts outside the lock: the page keeps reading the state meanwhile.
        var record = new JsonObject { ["epoch"] = epoch + 1 };
        foreach (var (key, value) in logs) record[key] = DoubleToJson(value);
        if (validation is not null)
        {
            var gridOutputs = Model.Predict(validation.GridImages, batchSize);
            var predicted = Predictions.ArgMax(gridOutputs);
            record["grid_predictions"] = new JsonArray([.. predicted.Select(p => (JsonNode?)p)]);
            record["grid_confidence"] = new JsonArray([.. predicted.Select((p, i) => (JsonNode?)Math.Round(Confidence(gridOutputs, i, p), 4))]);
            var (outputs, labels) = validation.PredictValidation is { } predict ? predict(Model) : (gridOutputs, validation.GridLabels);
            var matrix = ConfusionMatrix.FromPredictions(labels, Predictions.ArgMax(outputs), classNames.Count);
            record["confusion"] = MatrixJson(matrix);
            record["confusion_samples"] = matrix.Total;
        }
        lock (gate)
        {
            // A resumed run may end an epoch it had begun before: its record replaces none, it is the next.
            epochs.RemoveAll(e => e["epoch"]!.GetValue<int>() == epoch + 1);
            epochs.Add(record);
            SendBatches();
            Send("epoch", record.DeepClone());
            Send("status", StatusJson());
        }
    }

    public override void OnTrainEnd()
    {
        lock (gate)
        {
            SendBatches();
            status = Model.StopTraining ? "stopped early" : "evaluating";
            Send("status", StatusJson());
        }
    }

    /// The curves and epoch records, for a checkpoint: a resumed run's dashboard and report show the whole run.
    public override CallbackState GetState()
    {
        lock (gate)
        {
            return new CallbackState(
                new JsonObject { ["epochs"] = new JsonArray([.. epochs.Select(e => (JsonNode?)e.DeepClone())]) },
                new Dictionary<string, float[]> { ["x"] = [.. x], ["loss"] = [.. loss], ["accuracy"] = [.. accuracy], ["rate"] = [.. rate] });
        }
    }

    public override void SetState(CallbackState state)
    {
        lock (gate)
        {
            epochs.Clear();
            foreach (var e in state.Values["epochs"] as JsonArray ?? []) if (e is JsonObject o) epochs.Add((JsonObject)o.DeepClone());
            x.Clear();
            loss.Clear();
            accuracy.Clear();
            rate.Clear();
            if (state.Tensors is { } t && t.TryGetValue("x", out var xs) && t.TryGetValue("loss", out var ls) && t.TryGetValue("accuracy", out var accs) && t.TryGetValue("rate", out var rs)
                && xs.Length == ls.Length && xs.Length == accs.Length && xs.Length == rs.Length)
            {
                x.AddRange(xs);
                loss.AddRange(ls);
                accuracy.AddRange(accs);
                rate.AddRange(rs);
            }
            sent = 0;
            Send("state", SnapshotUnlocked());
            sent = x.Count;
        }
    }

    static double Confidence(Tensor outputs, int row, int predicted)
    {
        if (outputs.Rank == 1 || outputs.Shape[1] == 1)
        {
            float p = outputs.Data[row];
            return predicted == 1 ? p : 1 - p;
        }
        return outputs.Data[row * outputs.Shape[1] + predicted];
    }

    static JsonArray MatrixJson(ConfusionMatrix matrix)
    {
        var rows = new JsonArray();
        for (int a = 0; a < matrix.NumClasses; a++)
        {
            var row = new JsonArray();
            for (int p = 0; p < matrix.NumClasses; p++) row.Add(matrix[a, p]);
            rows.Add(row);
        }
        return rows;
    }

    JsonObject StatusJson()
    {
        var json = new JsonObject
        {
            ["status"] = status,
            ["message"] = message,
            ["elapsed_seconds"] = Math.Round(runClock.Elapsed.TotalSeconds, 2),
        };
        if (last is { } p && info is { } i)
        {
            json["epoch"] = p.Epoch + 1;
            json["step"] = p.Step;
            json["steps_per_epoch"] = p.StepsPerEpoch;
            json["loss"] = DoubleToJson(p.Loss);
            json["accuracy"] = DoubleToJson(p.Accuracy);
            json["images_per_second"] = Math.Round(p.ImagesPerSecond, 1);
            json["epoch_eta_seconds"] = Math.Round(p.EtaSeconds, 1);
            // The rest of this epoch, then the epochs after it at this epoch's pace.
            double perStep = p.Step > 0 ? p.Seconds / p.Step : 0;
            json["eta_seconds"] = Math.Round(p.EtaSeconds + (i.Epochs - p.Epoch - 1) * p.StepsPerEpoch * perStep, 1);
        }
        return json;
    }

    JsonObject SnapshotUnlocked()
    {
        var state = new JsonObject
        {
            ["title"] = title,
            ["class_names"] = new JsonArray([.. classNames.Select(n => (JsonNode?)n)]),
            ["epochs_planned"] = info?.Epochs,
            ["steps_per_epoch"] = info?.StepsPerEpoch,
            ["batch_size"] = info?.BatchSize,
            ["samples"] = info?.Samples,
            ["validation_samples"] = info?.ValidationSamples,
            ["progress"] = StatusJson(),
            ["batches"] = BatchesJson(0),
            ["epochs"] = new JsonArray([.. epochs.Select(e => (JsonNode?)e.DeepClone())]),
            ["grid"] = new JsonObject
            {
                ["images"] = new JsonArray([.. (gridImages ?? []).Select(g => (JsonNode?)("data:image/png;base64," + g))]),
                ["labels"] = new JsonArray([.. (validation?.GridLabels ?? []).Select(l => (JsonNode?)l)]),
            },
        };
        return state;
    }

    /// The batch columns from index `from` on; `at` says where they go, so a page that missed an event can tell.
    JsonObject BatchesJson(int from) => new()
    {
        ["at"] = from,
        ["x"] = Column(x, from, 5),
        ["loss"] = Column(loss, from, 5),
        ["accuracy"] = Column(accuracy, from, 4),
        ["images_per_second"] = Column(rate, from, 0),
    };

    static JsonArray Column(List<float> values, int from, int digits)
    {
        var column = new JsonArray();
        for (int i = from; i < values.Count; i++)
        {
            double v = values[i];
            column.Add(double.IsFinite(v) ? Math.Round(v, digits) : null);
        }
        return column;
    }

    void SendBatches()
    {
        if (sent == x.Count) return;
        Send("batches", BatchesJson(sent));
        sent = x.Count;
    }

    void Send(string name, JsonNode payload)
    {
        if (listeners.Count == 0) return;
        string text = payload.ToJsonString();
        foreach (var listener in listeners) listener(name, text);
    }

    /// For messages and tests: "12 batches, 1 epoch".
    public override string ToString()
    {
        lock (gate) return string.Create(CultureInfo.InvariantCulture, $"{x.Count} batches, {epochs.Count} epochs, {status}");
    }
}
