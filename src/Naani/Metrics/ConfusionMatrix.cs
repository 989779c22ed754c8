using System.Globalization;
using System.Text;

namespace Naani.Metrics;

/// Counts of (actual, predicted) class pairs: row = actual class, column = predicted class.
/// Precision, recall and F1 follow scikit-learn with zero_division=0: a ratio whose denominator is 0 is 0.
/// The macro averages are unweighted means over all NumClasses classes (scikit-learn averages over the labels
/// that occur in y_true or y_pred; the two agree when every class occurs).
public sealed class ConfusionMatrix
{
    readonly long[] counts; // counts[actual * NumClasses + predicted]

    public int NumClasses { get; }

    public ConfusionMatrix(int numClasses)
    {
        if (numClasses < 1)
            throw new ArgumentOutOfRangeException(nameof(numClasses), $"A confusion matrix needs at least one class; got {numClasses}.");
        NumClasses = numClasses;
        counts = new long[numClasses * numClasses];
    }

    public static ConfusionMatrix FromPredictions(int[] actual, int[] predicted, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(predicted);
        if (actual.Length != predicted.Length)
            throw new ArgumentException($"There are {actual.Length:N0} actual labels but {predicted.Length:N0} predictions.", nameof(predicted));
        var matrix = new ConfusionMatrix(numClasses);
        for (int i = 0; i < actual.Length; i++)
            matrix.Add(actual[i], predicted[i]);
        return matrix;
    }

    public void Add(int actual, int predicted)
    {
        if ((uint)actual >= (uint)NumClasses)
            throw new ArgumentOutOfRangeException(nameof(actual), $"Actual class {actual} is outside [0, {NumClasses}).");
        if ((uint)predicted >= (uint)NumClasses)
            throw new ArgumentOutOfRangeException(nameof(predicted), $"Predicted class {predicted} is outside [0, {NumClasses}).");
        counts[actual * NumClasses + predicted]++;
    }

    /// How many samples of class actual were predicted as class predicted.
    public long this[int actual, int predicted]
    {
        get
        {
            if ((uint)actual >= (uint)NumClasses || (uint)predicted >= (uint)NumClasses)
                throw new ArgumentOutOfRangeException(nameof(actual), $"[{actual}, {predicted}] is outside a {NumClasses}x{NumClasses} confusion matrix.");
            return counts[actual * NumClasses + predicted];
        }
    }

    public long Total => counts.Sum();

    /// Correct predictions over all predictions (0 when empty).
    public double Accuracy
    {
        get
        {
            long correct = 0;
            for (int c = 0; c < NumClasses; c++) correct += counts[c * NumClasses + c];
            return Ratio(correct, Total);
        }
    }

    /// Samples whose actual class is c: row c's sum.
    public long Support(int c) => RowSum(CheckClass(c));

    /// Samples predicted as class c: column c's sum.
    public long Predicted(int c) => ColumnSum(CheckClass(c));

    /// tp / (tp + fp): of the samples predicted as c, the fraction that are c.
    public double Precision(int c) => Ratio(counts[CheckClass(c) * NumClasses + c], ColumnSum(c));

    /// tp / (tp + fn): of the samples that are c, the fraction predicted as c.
    public double Recall(int c) => Ratio(counts[CheckClass(c) * NumClasses + c], RowSum(c));

    /// The harmonic mean of precision and recall, 2 tp / (2 tp + fp + fn).
    public double F1(int c)
    {
        long tp = counts[CheckClass(c) * NumClasses + c];
        return Ratio(2 * tp, RowSum(c) + ColumnSum(c));
    }

    public double MacroPrecision => Mean(Precision);
    public double MacroRecall => Mean(Recall);
    public double MacroF1 => Mean(F1);

    /// The table as aligned plain text: one row per actual class, one column per predicted class.
    public string ToText(string[]? classNames = null)
    {
        var names = ClassNames(classNames);
        const string corner = "actual \\ predicted";
        int nameWidth = Math.Max(corner.Length, names.Max(n => n.Length));
        var columnWidths = new int[NumClasses];
        for (int p = 0; p < NumClasses; p++)
        {
            columnWidths[p] = names[p].Length;
            for (int a = 0; a < NumClasses; a++)
                columnWidths[p] = Math.Max(columnWidths[p], counts[a * NumClasses + p].ToString(CultureInfo.InvariantCulture).Length);
        }

        var text = new StringBuilder();
        text.Append(corner.PadRight(nameWidth));
        for (int p = 0; p < NumClasses; p++)
            text.Append("  ").Append(names[p].PadLeft(columnWidths[p]));
        text.AppendLine();
        for (int a = 0; a < NumClasses; a++)
        {
            text.Append(names[a].PadRight(nameWidth));
            for (int p = 0; p < NumClasses; p++)
                text.Append("  ").Append(counts[a * NumClasses + p].ToString(CultureInfo.InvariantCulture).PadLeft(columnWidths[p]));
            text.AppendLine();
        }
        return text.ToString();
    }

    public override string ToString() => ToText();

    /// The given names after checking their count, or "0".."NumClasses-1".
    internal string[] ClassNames(string[]? classNames)
    {
        if (classNames is null)
            return [.. Enumerable.Range(0, NumClasses).Select(c => c.ToString(CultureInfo.InvariantCulture))];
        if (classNames.Length != NumClasses)
            throw new ArgumentException($"{classNames.Length} class names for a {NumClasses}-class confusion matrix.", nameof(classNames));
        return classNames;
    }

    int CheckClass(int c) =>
        (uint)c < (uint)NumClasses ? c : throw new ArgumentOutOfRangeException(nameof(c), $"Class {c} is outside [0, {NumClasses}).");

    long RowSum(int a)
    {
        long sum = 0;
        for (int p = 0; p < NumClasses; p++) sum += counts[a * NumClasses + p];
        return sum;
    }

    long ColumnSum(int p)
    {
        long sum = 0;
        for (int a = 0; a < NumClasses; a++) sum += counts[a * NumClasses + p];
        return sum;
    }

    double Mean(Func<int, double> perClass)
    {
        double sum = 0;
        for (int c = 0; c < NumClasses; c++) sum += perClass(c);
        return sum / NumClasses;
    }

    static double Ratio(long numerator, long denominator) => denominator == 0 ? 0 : (double)numerator / denominator;
}
