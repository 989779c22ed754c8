using System.Globalization;
using System.Text;

namespace Naani.Metrics;

/// One class's line of a classification report.
public sealed record ClassScores(string Name, double Precision, double Recall, double F1, long Support);

/// Per-class precision, recall, F1 and support with their averages, as scikit-learn's classification_report prints
/// them. Macro averages weigh every class equally; weighted averages weigh each class by its support.
public sealed record ClassificationReport(
    IReadOnlyList<ClassScores> Classes,
    double Accuracy,
    double MacroPrecision,
    double MacroRecall,
    double MacroF1,
    double WeightedPrecision,
    double WeightedRecall,
    double WeightedF1,
    long Total)
{
    public static ClassificationReport From(ConfusionMatrix matrix, string[]? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        var names = matrix.ClassNames(classNames);
        var classes = new ClassScores[matrix.NumClasses];
        double weightedPrecision = 0, weightedRecall = 0, weightedF1 = 0;
        long total = matrix.Total;
        for (int c = 0; c < classes.Length; c++)
        {
            classes[c] = new ClassScores(names[c], matrix.Precision(c), matrix.Recall(c), matrix.F1(c), matrix.Support(c));
            double weight = total == 0 ? 0 : (double)classes[c].Support / total;
            weightedPrecision += weight * classes[c].Precision;
            weightedRecall += weight * classes[c].Recall;
            weightedF1 += weight * classes[c].F1;
        }
        return new ClassificationReport(classes, matrix.Accuracy, matrix.MacroPrecision, matrix.MacroRecall, matrix.MacroF1,
            weightedPrecision, weightedRecall, weightedF1, total);
    }

    /// The report laid out as scikit-learn's classification_report(digits) lays it out.
    public string ToText(int digits = 2)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(digits);
        const string longestAverage = "weighted avg";
        int width = Math.Max(Math.Max(Classes.Count == 0 ? 0 : Classes.Max(c => c.Name.Length), longestAverage.Length), digits);
        string format = "F" + digits.ToString(CultureInfo.InvariantCulture);
        string Number(double value) => value.ToString(format, CultureInfo.InvariantCulture).PadLeft(9);
        string Count(long value) => value.ToString(CultureInfo.InvariantCulture).PadLeft(9);

        var text = new StringBuilder();
        text.Append(' ', width).Append(' ');
        foreach (var header in (string[])["precision", "recall", "f1-score", "support"])
            text.Append(' ').Append(header.PadLeft(9));
        text.Append('\n').Append('\n');

        void Row(string name, double precision, double recall, double f1, long support) =>
            text.Append(name.PadLeft(width)).Append(' ')
                .Append(' ').Append(Number(precision)).Append(' ').Append(Number(recall))
                .Append(' ').Append(Number(f1)).Append(' ').Append(Count(support)).Append('\n');

        foreach (var c in Classes)
            Row(c.Name, c.Precision, c.Recall, c.F1, c.Support);
        text.Append('\n');
        text.Append("accuracy".PadLeft(width)).Append(' ')
            .Append(' ').Append("".PadLeft(9)).Append(' ').Append("".PadLeft(9))
            .Append(' ').Append(Number(Accuracy)).Append(' ').Append(Count(Total)).Append('\n');
        Row("macro avg", MacroPrecision, MacroRecall, MacroF1, Total);
        Row(longestAverage, WeightedPrecision, WeightedRecall, WeightedF1, Total);
        return text.ToString();
    }

    public override string ToString() => ToText();
}
