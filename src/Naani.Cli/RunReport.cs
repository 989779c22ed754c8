using System.Globalization;
using System.Text.Json.Nodes;
using Naani.Models;
using Naani.Vision;
using Spectre.Console;

namespace Naani.Cli;

/// What naani train leaves beside metrics.json besides the model: the plots and the HTML page (Naani.Vision.TrainingReport),
/// and in metrics.json the image settings and the figures of the batch pipeline.
static class RunReport
{
    /// Adds "images" (augmentation, image size, cache) and "training.pipeline" (batches, seconds waited for data) when the data streamed.
    public static void AddImageData(JsonObject metrics, TrainingData data, ImageDataSettings images)
    {
        metrics["augmentation"] = images.Augmentation?.ToString();
        metrics["image_shape"] = new JsonArray([.. data.ImageShape.Dims.ToArray().Select(d => (JsonNode?)d)]);
        metrics["class_names"] = new JsonArray([.. data.ClassNames.Select(n => (JsonNode?)n)]);
        if (data.TrainPipeline is not { } pipeline) return;
        var statistics = pipeline.Statistics;
        var pipelineJson = new JsonObject
        {
            ["workers"] = pipeline.Options.Workers,
            ["prefetch"] = pipeline.Options.Prefetch,
            ["cache"] = pipeline.Source is Naani.Data.CachedImageSource cached ? cached.Mode.ToString().ToLowerInvariant() : "none",
            ["batches"] = statistics.Batches,
            ["images"] = statistics.Images,
            ["wait_seconds"] = statistics.WaitSeconds,
            ["read_seconds"] = statistics.ReadSeconds,
            ["epochs"] = new JsonArray([.. pipeline.EpochStatistics.Select(e => (JsonNode?)new JsonObject
            {
                ["images"] = e.Images,
                ["wait_seconds"] = e.WaitSeconds,
                ["read_seconds"] = e.ReadSeconds,
            })]),
            ["unreadable"] = new JsonArray([.. pipeline.Unreadable.Select(u => (JsonNode?)new JsonObject { ["file"] = pipeline.Source.Describe(u.Key), ["reason"] = u.Value })]),
        };
        if (metrics["training"] is JsonObject training) training["pipeline"] = pipelineJson;
        else metrics["pipeline"] = pipelineJson;
        AnsiConsole.MarkupLine($"[grey]Data pipeline: {Markup.Escape(statistics.ToString())}[/]");
        foreach (var (e, i) in pipeline.EpochStatistics.Select((e, i) => (e, i)))
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"[grey]  epoch {i + 1}: waited {e.WaitSeconds:0.00} s for data, read/decode {e.ReadSeconds:0.00} s[/]"));
    }

    /// Writes loss.png, accuracy.png, confusion-matrix.png and report.html into directory; returns their paths.
    public static IReadOnlyList<string> Write(string directory, Model model, string modelName, string dataName, JsonObject metrics,
        History history, IReadOnlyList<(string Name, Evaluation Result)> evaluations, JsonObject? dashboard = null)
    {
        var settings = new List<KeyValuePair<string, string>>
        {
            new("model", $"{modelName} ({model.ParameterCount:N0} parameters, input {model.InputShape})"),
            new("data", $"{dataName} ({metrics["data_source"]})"),
            new("classes", string.Join(", ", model.ClassNames ?? [])),
        };
        foreach (var key in (string[])["epochs", "batch_size", "optimizer", "learning_rate", "seed", "threads", "augmentation"])
            if (metrics[key] is { } value)
                settings.Add(new(key.Replace('_', ' '), value.ToJsonString().Trim('"')));
        if (metrics["training"] is JsonObject training)
        {
            if (training["seconds"] is { } seconds) settings.Add(new("training time", string.Create(CultureInfo.InvariantCulture, $"{seconds.GetValue<double>():0.0} s")));
            if (training["images_per_second"] is { } rate) settings.Add(new("training images/s", string.Create(CultureInfo.InvariantCulture, $"{rate.GetValue<double>():N0}")));
        }
        var content = new ReportContent(
            $"Naani training report: {modelName} on {dataName}",
            settings,
            model.Summary(),
            history.Values,
            [.. evaluations.Select(e => new ReportEvaluation(e.Name, e.Result.Samples, e.Result.Accuracy, e.Result.Loss, e.Result.Matrix, e.Result.Scores, e.Result.ClassNames))],
            dashboard);
        return TrainingReport.Write(directory, content);
    }
}
