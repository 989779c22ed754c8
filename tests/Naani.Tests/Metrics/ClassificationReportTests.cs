using Naani.Metrics;
using Xunit;

namespace Naani.Tests.Metrics;

public sealed class ClassificationReportTests
{
    [Fact]
    public void Report_holds_per_class_and_averaged_scores()
    {
        var m = ConfusionMatrix.FromPredictions([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], 3);

        var report = ClassificationReport.From(m, ["a", "b", "c"]);

        Assert.Equal(3, report.Classes.Count);
        Assert.Equal(new ClassScores("a", 2.0 / 3, 1.0, 0.8, 2), report.Classes[0] with { F1 = Math.Round(report.Classes[0].F1, 12) });
        Assert.Equal(0, report.Classes[1].Precision);
        Assert.Equal(m.MacroF1, report.MacroF1);
        Assert.Equal(6, report.Total);
        Assert.Equal(1.0 / 3, report.Accuracy, 12);
    }

    [Fact]
    public void ToText_matches_scikit_learns_documented_example()
    {
        // The example of sklearn.metrics.classification_report's docstring:
        // y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1], target_names = ['class 0', 'class 1', 'class 2'].
        var m = ConfusionMatrix.FromPredictions([0, 1, 2, 2, 2], [0, 0, 2, 2, 1], 3);

        var text = ClassificationReport.From(m, ["class 0", "class 1", "class 2"]).ToText();

        const string expected =
            "              precision    recall  f1-score   support\n" +
            "\n" +
            "     class 0       0.50      1.00      0.67         1\n" +
            "     class 1       0.00      0.00      0.00         1\n" +
            "     class 2       1.00      0.67      0.80         3\n" +
            "\n" +
            "    accuracy                           0.60         5\n" +
            "   macro avg       0.50      0.56      0.49         5\n" +
            "weighted avg       0.70      0.60      0.61         5\n";
        Assert.Equal(expected, text);
    }

    [Fact]
    public void ToText_widens_the_name_column_for_long_names_and_honours_digits()
    {
        var m = ConfusionMatrix.FromPredictions([0, 1], [0, 1], 2);

        var lines = ClassificationReport.From(m, ["T-shirt/top and more", "Trouser"]).ToText(digits: 4).Split('\n');

        Assert.Equal("T-shirt/top and more     1.0000    1.0000    1.0000         1", lines[2]);
        Assert.Equal("             Trouser     1.0000    1.0000    1.0000         1", lines[3]);
    }
}
