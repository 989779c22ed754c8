using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Naani.Data;
using Naani.Distributed;
using Naani.Losses;
using Naani.Metrics;
using Naani.Models;
using Spectre.Console;

namespace Naani.Cli;

/// A model's results on one labelled set: what the report prints and metrics.json's "test" section holds.
sealed record Evaluation(double Loss, ConfusionMatrix Matrix, ClassificationReport Scores, string[] ClassNames)
{
    public double Accuracy => Matrix.Accuracy;
    public long Samples => Matrix.Total;
}

/// Evaluates a model, prints the report (accuracy, loss, per-class scores, confusion matrix) and writes metrics.json.
static class Report
{
    /// One inference pass over data: the predictions give the confusion matrix, and the same outputs the loss.
    public static Evaluation Evaluate(Model model, ImageDataset data, int batchSize, ICommunicator? distributed = null)
    {
        if (model.InputShape != data.ImageShape)
            throw new UsageException($"Model '{model.Name}' takes images of {model.InputShape} but the data holds images of {data.ImageShape}.");
        int classes = Commands.ClassCount(model);
        if (classes != data.NumClasses)
            throw new UsageException($"Model '{model.Name}' tells {classes} classes apart but the data has {data.NumClasses} ({string.Join(", ", data.ClassNames)}).");

        var outputs = model.Predict(data.Images, batchSize, distributed);
        var loss = model.Loss ?? Losses.Loss.Parse(Architectures.DefaultLoss(model, sparseLabels: true));
        double meanLoss = loss.Compute(outputs, Commands.Targets(model, data), null);
        var matrix = ConfusionMatrix.FromPredictions(data.Labels, Predictions.ArgMax(outputs), classes);
        var names = model.ClassNames is { } saved && saved.Count == classes ? saved.ToArray() : data.ClassNames;
        return new Evaluation(meanLoss, matrix, ClassificationReport.From(matrix, names), names);
    }

    /// The same for streamed data (an image folder): one inference pass through the pipeline.
    public static Evaluation Evaluate(Model model, IBatchSource data)
    {
        if (model.InputShape != data.ImageShape)
            throw new UsageException($"Model '{model.Name}' takes images of {model.InputShape} but the data holds images of {data.ImageShape}.");
        int classes = Commands.ClassCount(model);
        if (classes != data.ClassNames.Count)
            throw new UsageException($"Model '{model.Name}' tells {classes} classes apart but the data has {data.ClassNames.Count} ({string.Join(", ", data.ClassNames)}).");
        var (outputs, labels) = model.Predict(data);
        var loss = model.Loss ?? Losses.Loss.Parse(Architectures.DefaultLoss(model, sparseLabels: true));
        // An uncompiled model gets the default loss, which takes class indices (or 0/1 for one sigmoid unit).
        var targets = model.Loss is not null ? model.TargetsFor(labels)
            : model.OutputShape[^1] == 1 ? Tensor.FromArray([.. labels.Select(l => (float)l)], labels.Length, 1)
            : Tensor.FromArray([.. labels.Select(l => (float)l)], labels.Length);
        double meanLoss = loss.Compute(outputs, targets, null);
        var matrix = ConfusionMatrix.FromPredictions(labels, Predictions.ArgMax(outputs), classes);
        var names = model.ClassNames is { } saved && saved.Count == classes ? saved.ToArray() : data.ClassNames.ToArray();
        return new Evaluation(meanLoss, matrix, ClassificationReport.From(matrix, names), names);
    }

    public static void Print(Evaluation result, string title)
    {
        var scores = result.Scores;
        AnsiConsole.WriteLine();
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(title)}[/] ({result.Samples:N0} images)");
        AnsiConsole.MarkupLine($"  accuracy  [bold green]{result.Accuracy:0.0000}[/]");
        AnsiConsole.MarkupLine($"  loss      {result.Loss:0.0000}");
        AnsiConsole.MarkupLine($"  precision {scores.MacroPrecision:0.0000}  recall {scores.MacroRecall:0.0000}  F1 {scores.MacroF1:0.0000}  [grey](macro averages)[/]");
        AnsiConsole.WriteLine();

        var perClass = new Table().Border(TableBorder.Rounded).Title("Per class")
            .AddColumn("Class")
            .AddColumn(new TableColumn("Precision").RightAligned())
            .AddColumn(new TableColumn("Recall").RightAligned())
            .AddColumn(new TableColumn("F1").RightAligned())
            .AddColumn(new TableColumn("Support").RightAligned());
        foreach (var c in scores.Classes)
            perClass.AddRow(Markup.Escape(c.Name), Number(c.Precision), Number(c.Recall), Number(c.F1), c.Support.ToString("N0", CultureInfo.InvariantCulture));
        perClass.AddEmptyRow();
        perClass.AddRow("[grey]macro avg[/]", Number(scores.MacroPrecision), Number(scores.MacroRecall), Number(scores.MacroF1), scores.Total.ToString("N0", CultureInfo.InvariantCulture));
        perClass.AddRow("[grey]weighted avg[/]", Number(scores.WeightedPrecision), Number(scores.WeightedRecall), Number(scores.WeightedF1), scores.Total.ToString("N0", CultureInfo.InvariantCulture));
        AnsiConsole.Write(perClass);

        AnsiConsole.Write(ConfusionTable(result));
    }

    static string Number(double value) => value.ToString("0.0000", CultureInfo.InvariantCulture);

    /// Rows are the actual classes, columns the predicted ones; the diagonal (correct) in green.
    /// Columns are headed by class names when they fit the console, else by class indices (rows keep both).
    static Table ConfusionTable(Evaluation result)
    {
        var names = result.ClassNames;
        int n = names.Length;
        var matrix = result.Matrix;
        int cellWidth = Enumerable.Range(0, n * n).Max(i => matrix[i / n, i % n].ToString("N0", CultureInfo.InvariantCulture).Length);
        int rowLabelWidth = names.Select((name, i) => $"{i} {name}".Length).Max();
        int widthWithNames = rowLabelWidth + 4 + names.Sum(name => Math.Max(name.Length, cellWidth) + 3);
        bool namedColumns = widthWithNames <= AnsiConsole.Profile.Width;

        var table = new Table().Border(TableBorder.Rounded)
            .Title("Confusion matrix")
            .Caption(namedColumns ? "rows: actual class, columns: predicted class" : "rows: actual class, columns: predicted class (by index)")
            .AddColumn("actual \\ predicted");
        for (int p = 0; p < n; p++)
            table.AddColumn(new TableColumn(Markup.Escape(namedColumns ? names[p] : p.ToString(CultureInfo.InvariantCulture))).RightAligned());
        for (int a = 0; a < n; a++)
        {
            var cells = new string[n + 1];
            cells[0] = Markup.Escape(namedColumns ? names[a] : $"{a} {names[a]}");
            for (int p = 0; p < n; p++)
            {
                var count = matrix[a, p].ToString("N0", CultureInfo.InvariantCulture);
                cells[p + 1] = a == p ? $"[green]{count}[/]" : matrix[a, p] == 0 ? $"[grey]{count}[/]" : count;
            }
            table.AddRow(cells);
        }
        return table;
    }

    /// metrics.json's "test" section: fractions in [0, 1], per-class scores and the confusion matrix (rows actual).
    public static JsonObject ToJson(Evaluation result)
    {
        var scores = result.Scores;
        var perClass = new JsonArray();
        foreach (var c in scores.Classes)
            perClass.Add(new JsonObject
            {
                ["class"] = c.Name,
                ["precision"] = c.Precision,
                ["recall"] = c.Recall,
                ["f1"] = c.F1,
                ["support"] = c.Support,
            });
        var matrix = new JsonArray();
        int n = result.Matrix.NumClasses;
        for (int a = 0; a < n; a++)
        {
            var row = new JsonArray();
            for (int p = 0; p < n; p++)
                row.Add(result.Matrix[a, p]);
            matrix.Add(row);
        }
        return new JsonObject
        {
            ["samples"] = result.Samples,
            ["accuracy"] = result.Accuracy,
            ["loss"] = result.Loss,
            ["precision"] = scores.MacroPrecision,
            ["recall"] = scores.MacroRecall,
            ["f1"] = scores.MacroF1,
            ["per_class"] = perClass,
            ["confusion_matrix"] = matrix,
        };
    }

    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// Writes the JSON beside its destination and moves it into place, so a reader never sees half a file.
    public static void WriteJson(string path, JsonNode json) =>
        Naani.IO.AtomicFile.WriteAllText(path, json.ToJsonString(Indented) + Environment.NewLine);
}
