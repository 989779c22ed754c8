using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Naani.Metrics;
using ScottPlot;

namespace Naani.Vision;

/// A model's results on one labelled set, for the report.
public sealed record ReportEvaluation(string Name, long Samples, double Accuracy, double Loss, ConfusionMatrix Matrix, ClassificationReport Scores, IReadOnlyList<string> ClassNames);

/// What a training report shows.
public sealed record ReportContent(
    string Title,
    IReadOnlyList<KeyValuePair<string, string>> Settings,
    string ModelSummary,
    IReadOnlyDictionary<string, List<double>> History,
    IReadOnlyList<ReportEvaluation> Evaluations,
    JsonObject? Dashboard = null);

/// The pictures and the page a training run leaves beside its metrics.json:
///   loss.png              loss per epoch, training and validation
///   accuracy.png          accuracy per epoch, training and validation
///   confusion-matrix.png  the confusion matrix of the first evaluation (rows actual, columns predicted)
///   report.html           one self-contained page (pictures embedded) with the settings, the model summary, the
///                         per-epoch table, and per evaluation the scores, the per-class table and the matrix; with a
///                         Dashboard (a TrainingMonitor's final state), the page is the training dashboard as it
///                         stood at the end (batch curves, confusion matrix per epoch, validation images), these below
public static class TrainingReport
{
    public const string LossPlot = "loss.png", AccuracyPlot = "accuracy.png", ConfusionPlot = "confusion-matrix.png", Page = "report.html";

    /// Writes the files into directory and returns their paths.
    public static IReadOnlyList<string> Write(string directory, ReportContent content)
    {
        ArgumentNullException.ThrowIfNull(content);
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        var loss = Path.Combine(directory, LossPlot);
        if (WriteCurves(loss, content.History, "loss", "Loss per epoch", "loss")) written.Add(loss);
        var accuracy = Path.Combine(directory, AccuracyPlot);
        if (WriteCurves(accuracy, content.History, "accuracy", "Accuracy per epoch", "accuracy")) written.Add(accuracy);
        var confusion = Path.Combine(directory, ConfusionPlot);
        if (content.Evaluations.Count > 0)
        {
            WriteConfusion(confusion, content.Evaluations[0]);
            written.Add(confusion);
        }
        var page = Path.Combine(directory, Page);
        Naani.IO.AtomicFile.WriteAllText(page, Html(content, written));
        written.Add(page);
        return written;
    }

    /// Plots History[key] and History["val_" + key] against the epoch number (1, 2, ...); false when there is nothing to plot.
    public static bool WriteCurves(string path, IReadOnlyDictionary<string, List<double>> history, string key, string title, string yLabel)
    {
        var series = new List<(string Label, List<double> Values)>();
        if (history.TryGetValue(key, out var train) && train.Count > 0) series.Add(("training", train));
        if (history.TryGetValue("val_" + key, out var validation) && validation.Count > 0) series.Add(("validation", validation));
        if (series.Count == 0) return false;
        var plot = new Plot();
        foreach (var (label, values) in series)
        {
            double[] xs = [.. Enumerable.Range(1, values.Count).Select(i => (double)i)];
            var line = plot.Add.Scatter(xs, values.ToArray());
            line.LegendText = label;
            line.LineWidth = 2;
            line.MarkerSize = 7;
        }
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel(yLabel);
        int epochs = series.Max(s => s.Values.Count);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        if (epochs == 1) plot.Axes.SetLimitsX(0.5, 1.5);
        plot.ShowLegend(Alignment.UpperRight);
        SavePlot(plot, path, 640, 420);
        return true;
    }

    /// The confusion matrix as a heat map: each cell shows its count and is coloured by its share of its row
    /// (the recall of the actual class), so classes of different sizes compare. Drawn by ConfusionMatrixImage
    /// (SkiaSharp, box by box) so that no class name, count or title runs into another.
    public static void WriteConfusion(string path, ReportEvaluation evaluation)
    {
        using var picture = ConfusionMatrixImage.Draw(evaluation);
        ImageFile.SavePng(picture.Bitmap, path);
    }

    static void SavePlot(Plot plot, string path, int width, int height) =>
        Naani.IO.AtomicFile.WriteVia(path, temporary => plot.SavePng(temporary, width, height));

    static string E(string text) => WebUtility.HtmlEncode(text);

    static string N(double value) => double.IsFinite(value) ? value.ToString("0.0000", CultureInfo.InvariantCulture) : "-";

    static string Image(string path, string alt) =>
        File.Exists(path) ? $"<img alt=\"{E(alt)}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(path))}\">" : "";

    static string Html(ReportContent content, IReadOnlyList<string> pictures)
    {
        if (content.Dashboard is { } dashboard) return DashboardPage.Saved(content.Title, dashboard, Sections(content, pictures, epochTable: false));
        return $$"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>{{E(content.Title)}}</title>
            <style>
            {{DashboardPage.Style}}
            </style></head><body>
            <h1>{{E(content.Title)}}</h1>
            {{Sections(content, pictures, epochTable: true)}}
            </body></html>

            """;
    }

    /// The report's sections: the run's settings, each evaluation, the training pictures and table (the dashboard has
    /// its own), the model.
    static string Sections(ReportContent content, IReadOnlyList<string> pictures, bool epochTable)
    {
        var html = new StringBuilder();
        html.Append("<h2>Run</h2><table>");
        foreach (var (key, value) in content.Settings)
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(key)}</td><td>{E(value)}</td></tr>");
        html.Append("</table>\n");

        foreach (var evaluation in content.Evaluations)
        {
            var s = evaluation.Scores;
            html.Append(CultureInfo.InvariantCulture, $"<h2>{E(evaluation.Name)} ({evaluation.Samples:N0} images)</h2>\n");
            html.Append(CultureInfo.InvariantCulture,
                $"<p class=\"score\">accuracy <b>{N(evaluation.Accuracy)}</b> &nbsp; loss {N(evaluation.Loss)} &nbsp; precision {N(s.MacroPrecision)} &nbsp; recall {N(s.MacroRecall)} &nbsp; F1 {N(s.MacroF1)} <small>(macro averages)</small></p>\n");
            html.Append("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
            foreach (var c in s.Classes)
                html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(c.Name)}</td><td>{N(c.Precision)}</td><td>{N(c.Recall)}</td><td>{N(c.F1)}</td><td>{c.Support:N0}</td></tr>");
            html.Append(CultureInfo.InvariantCulture, $"<tr><td><i>macro avg</i></td><td>{N(s.MacroPrecision)}</td><td>{N(s.MacroRecall)}</td><td>{N(s.MacroF1)}</td><td>{s.Total:N0}</td></tr>");
            html.Append(CultureInfo.InvariantCulture, $"<tr><td><i>weighted avg</i></td><td>{N(s.WeightedPrecision)}</td><td>{N(s.WeightedRecall)}</td><td>{N(s.WeightedF1)}</td><td>{s.Total:N0}</td></tr></table>\n");

            int n = evaluation.Matrix.NumClasses;
            html.Append("<table><tr><th>actual \\ predicted</th>");
            for (int p = 0; p < n; p++) html.Append(CultureInfo.InvariantCulture, $"<th>{E(evaluation.ClassNames[p])}</th>");
            html.Append("</tr>");
            for (int a = 0; a < n; a++)
            {
                html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(evaluation.ClassNames[a])}</td>");
                for (int p = 0; p < n; p++)
                    html.Append(CultureInfo.InvariantCulture, $"<td{(a == p ? " class=\"diagonal\"" : "")}>{evaluation.Matrix[a, p]:N0}</td>");
                html.Append("</tr>");
            }
            html.Append("</table>\n");
        }

        html.Append("<h2>Training</h2>\n");
        foreach (var picture in pictures)
            html.Append(Image(picture, Path.GetFileNameWithoutExtension(picture))).Append('\n');
        var keys = ((string[])["loss", "accuracy", "val_loss", "val_accuracy", "images_per_second", "seconds"]).Where(content.History.ContainsKey).ToList();
        int epochs = keys.Count == 0 || !epochTable ? 0 : keys.Max(k => content.History[k].Count);
        if (epochs > 0)
        {
            html.Append("<table><tr><th>epoch</th>");
            foreach (var k in keys) html.Append(CultureInfo.InvariantCulture, $"<th>{E(k)}</th>");
            html.Append("</tr>");
            for (int e = 0; e < epochs; e++)
            {
                html.Append(CultureInfo.InvariantCulture, $"<tr><td>{e + 1}</td>");
                foreach (var k in keys)
                {
                    var values = content.History[k];
                    string cell = e >= values.Count ? "-" : k is "images_per_second" or "seconds" ? values[e].ToString("N1", CultureInfo.InvariantCulture) : N(values[e]);
                    html.Append(CultureInfo.InvariantCulture, $"<td>{cell}</td>");
                }
                html.Append("</tr>");
            }
            html.Append("</table>\n");
        }

        html.Append(CultureInfo.InvariantCulture, $"<h2>Model</h2>\n<pre>{E(content.ModelSummary)}</pre>\n");
        return html.ToString();
    }
}
