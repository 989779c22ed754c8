using Naani.Metrics;
using Naani.Tests.Data;
using Naani.Vision;
using SkiaSharp;
using Xunit;

namespace Naani.Tests.Vision;

public sealed class TrainingReportTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    static ReportContent Content(int classes, int epochs)
    {
        string[] names = [.. Enumerable.Range(0, classes).Select(c => $"class<{c}>")];
        var actual = Enumerable.Range(0, 50).Select(i => i % classes).ToArray();
        var predicted = actual.Select((a, i) => i % 7 == 0 ? (a + 1) % classes : a).ToArray();
        var matrix = ConfusionMatrix.FromPredictions(actual, predicted, classes);
        var history = new Dictionary<string, List<double>>
        {
            ["loss"] = [.. Enumerable.Range(0, epochs).Select(e => 1.0 / (e + 1))],
            ["accuracy"] = [.. Enumerable.Range(0, epochs).Select(e => 0.5 + 0.1 * e)],
            ["val_loss"] = [.. Enumerable.Range(0, epochs).Select(e => 1.2 / (e + 1))],
            ["val_accuracy"] = [.. Enumerable.Range(0, epochs).Select(e => 0.45 + 0.1 * e)],
        };
        return new ReportContent("Report <test>", [new("model", "naani-128"), new("epochs", $"{epochs}")], "Model: \"naani-128\"\nTotal params: 1", history,
            [new ReportEvaluation("Validation", matrix.Total, matrix.Accuracy, 0.3, matrix, ClassificationReport.From(matrix, names), names)]);
    }

    [Fact]
    public void Report_writes_three_plots_and_one_self_contained_page()
    {
        var files = TrainingReport.Write(temp.Path, Content(3, 4));

        Assert.Equal(["loss.png", "accuracy.png", "confusion-matrix.png", "report.html"], files.Select(Path.GetFileName));
        foreach (var png in files.Take(3))
        {
            using var bitmap = SKBitmap.Decode(png);
            Assert.NotNull(bitmap);
            Assert.True(bitmap.Width >= 400 && bitmap.Height >= 300);
        }
        var html = File.ReadAllText(files[3]);
        Assert.Equal(3, html.Split("data:image/png;base64,").Length - 1);
        Assert.DoesNotContain("src=\"http", html);
        Assert.Contains("Report &lt;test&gt;", html);   // escaped
        Assert.Contains("<td>class&lt;2&gt;</td>", html);
        Assert.Contains("precision", html);
        Assert.Contains("val_accuracy", html);
        Assert.Contains("Total params: 1", html);
        Assert.Empty(Directory.GetFiles(temp.Path, ".*"));
    }

    [Fact]
    public void One_epoch_and_many_classes_still_plot()
    {
        var files = TrainingReport.Write(temp.Sub("one"), Content(40, 1));
        Assert.Equal(4, files.Count);
    }

    [Fact]
    public void Without_history_only_the_matrix_and_page_are_written()
    {
        var content = Content(2, 1) with { History = new Dictionary<string, List<double>>() };
        var files = TrainingReport.Write(temp.Sub("none"), content);
        Assert.Equal(["confusion-matrix.png", "report.html"], files.Select(Path.GetFileName));
    }
}
