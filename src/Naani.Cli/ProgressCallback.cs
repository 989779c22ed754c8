using System.Diagnostics;
using System.Globalization;
using Naani.Callbacks;
using Naani.Models;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Naani.Cli;

/// Shows training as it runs. On a terminal: a live bar per epoch with the running loss, accuracy, images/s and
/// ETA, then one line per finished epoch. When the output is redirected (a log, CI): only the per-epoch lines.
sealed class ProgressCallback : Callback
{
    // Redrawing costs little, but a batch can take a millisecond: refresh the bar at most ten times a second.
    static readonly TimeSpan UpdateInterval = TimeSpan.FromMilliseconds(100);

    readonly ProgressContext? context;
    readonly Stopwatch sinceUpdate = new();
    ProgressTask? bar, validating;
    TrainingInfo info = null!;

    ProgressCallback(ProgressContext? context) => this.context = context;

    /// Runs fit with a progress callback suited to the console and returns its history.
    public static History Fit(Func<Callback, History> fit)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
            return fit(new ProgressCallback(null));
        return AnsiConsole.Progress()
            .AutoClear(true)
            .HideCompleted(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new MetricsColumn())
            .Start(context => fit(new ProgressCallback(context)));
    }

    public override void OnTrainBegin(TrainingInfo info)
    {
        this.info = info;
        var validation = info.ValidationSamples > 0 ? $", validating on {info.ValidationSamples:N0}" : "";
        AnsiConsole.MarkupLine($"Training on {info.Samples:N0} images{validation}: {Count(info.Epochs, "epoch")} of {Count(info.StepsPerEpoch, "batch")} of {info.BatchSize}");
    }

    public override void OnEpochBegin(int epoch)
    {
        if (context is null) return;
        bar = context.AddTask($"Epoch {epoch + 1}/{info.Epochs}", maxValue: info.StepsPerEpoch);
        bar.Tag = "";
        sinceUpdate.Restart();
    }

    public override void OnBatchEnd(BatchProgress progress)
    {
        if (context is null || bar is null) return;
        bool last = progress.Step == progress.StepsPerEpoch;
        if (!last && sinceUpdate.Elapsed < UpdateInterval) return;
        sinceUpdate.Restart();
        var text = $"loss {progress.Loss:0.0000}  acc {progress.Accuracy:0.0000}  {progress.ImagesPerSecond,6:N0} img/s  ETA {Duration(progress.EtaSeconds)}";
        bar.Tag = text;
        bar.Value = progress.Step;
        if (last && info.ValidationSamples > 0)
        {
            validating = context.AddTask($"  validating {info.ValidationSamples:N0}", maxValue: 1);
            validating.IsIndeterminate = true;
            validating.Tag = "";
        }
    }

    public override void OnEpochEnd(int epoch, IReadOnlyDictionary<string, double> logs)
    {
        bar?.StopTask();
        validating?.StopTask();
        bar = validating = null;
        AnsiConsole.MarkupLine(EpochLine(epoch, logs));
    }

    /// "Epoch 2/5  12.3s  loss 0.4521  accuracy 0.8412  val_loss 0.3812  val_accuracy 0.8650  1,032 img/s"
    string EpochLine(int epoch, IReadOnlyDictionary<string, double> logs)
    {
        var parts = new List<string>
        {
            $"[bold]Epoch {epoch + 1}/{info.Epochs}[/]",
            $"{logs.GetValueOrDefault("seconds"),6:0.0}s",
        };
        foreach (var key in (string[])["loss", "accuracy", "val_loss", "val_accuracy"])
            if (logs.TryGetValue(key, out var value))
                parts.Add($"{key} [bold]{value:0.0000}[/]");
        parts.Add($"{logs.GetValueOrDefault("images_per_second"):N0} img/s");
        return string.Join("  ", parts);
    }

    static string Count(int n, string noun) => $"{n:N0} {noun}{(n == 1 ? "" : noun == "batch" ? "es" : "s")}";

    static string Duration(double seconds)
    {
        var time = TimeSpan.FromSeconds(Math.Max(0, Math.Round(seconds)));
        return time.TotalHours >= 1
            ? time.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture)
            : time.ToString(@"m\:ss", CultureInfo.InvariantCulture);
    }

    /// The running figures the callback keeps in each task's Tag (a string, swapped whole, so the render thread
    /// never sees half an update).
    sealed class MetricsColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(task.Tag as string ?? "", new Style(Color.Grey));
    }
}
