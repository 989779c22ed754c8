using System.Globalization;
using SkiaSharp;

namespace Naani.Vision;

/// The confusion matrix as a picture (rows actual, columns predicted), drawn box by box so that no text meets
/// another: each cell is coloured by its share of its row (the recall of the actual class, viridis from 0 to 1) so
/// that classes of different sizes compare, and shows its count (black on light cells, white on dark) when the count
/// fits the cell; small cells (many classes) leave zeros blank so that the confusions stand out. Class names run left of the rows and, reading upwards, under the columns, in a font small enough
/// for one line per cell (100 classes: 14 px cells, 10 px names); a colour bar on the right.
public static class ConfusionMatrixImage
{
    const int Margin = 12, Gap = 6, BarWidth = 18, TickLength = 4, MaxNameLength = 24;

    /// The side of one cell: about 560 px for the matrix, 14 to 72 px a cell, the matrix at least 200 px.
    public static int CellSize(int classes) => Math.Max(Math.Clamp(560 / classes, 14, 72), (200 + classes - 1) / classes);

    /// Draws the matrix; boxes name the cells "cell a,p" (actual a, predicted p, from 0), the counts "count a,p"
    /// (On the cell), the names "actual a" and "predicted p", "title", "x title", "y title", "colour bar",
    /// "tick T" and "bar title".
    public static Drawing Draw(ReportEvaluation evaluation)
    {
        ArgumentNullException.ThrowIfNull(evaluation);
        var m = evaluation.Matrix;
        int n = m.NumClasses;
        if (evaluation.ClassNames.Count < n)
            throw new ArgumentException($"The confusion matrix has {n} classes but {evaluation.ClassNames.Count} class names were given.", nameof(evaluation));
        var shares = new double[n, n];
        for (int a = 0; a < n; a++)
        {
            long row = m.Support(a);
            for (int p = 0; p < n; p++) shares[a, p] = row == 0 ? 0 : (double)m[a, p] / row;
        }
        int cell = CellSize(n);
        string[] names = [.. evaluation.ClassNames.Take(n).Select(s => s.Length > MaxNameLength ? s[..(MaxNameLength - 3)] + "..." : s)];
        string[] counts = [.. Enumerable.Range(0, n * n).Select(i => m[i / n, i % n].ToString("N0", CultureInfo.InvariantCulture))];

        using var titleFont = new SKFont(SKTypeface.Default, 16) { Embolden = true };
        using var axisFont = new SKFont(SKTypeface.Default, 13);
        using var tickFont = new SKFont(SKTypeface.Default, 11);
        // Names: the largest size up to 12 whose line fits a cell.
        using var nameFont = new SKFont(SKTypeface.Default, 12);
        while (nameFont.Size > 5 && ImageGrid.LineHeight(nameFont) > cell - 1) nameFont.Size -= 0.5f;
        // Counts: the largest size up to 14 whose widest count fits a cell with room to spare; none when even 7 does not.
        using var countFont = new SKFont(SKTypeface.Default, 14);
        bool showCounts = true;
        while (ImageGrid.LineHeight(countFont) > cell - 2 || counts.Max(c => countFont.MeasureText(c)) > cell - 4)
        {
            if (countFont.Size <= 7) { showCounts = false; break; }
            countFont.Size -= 0.5f;
        }

        var boxes = new List<LayoutBox>();
        var texts = new List<(string Text, SKFont Font, SKRect Box, bool Vertical, SKColor Color)>();
        void Text(string name, string text, SKFont font, SKRect box, bool vertical = false, string? on = null, SKColor? color = null)
        {
            boxes.Add(new(LayoutBox.Kind.Text, name, box, on, text));
            texts.Add((text, font, box, vertical, color ?? SKColors.Black));
        }

        float nameWidth = names.Max(s => nameFont.MeasureText(s)), nameHeight = ImageGrid.LineHeight(nameFont);
        float axisHeight = ImageGrid.LineHeight(axisFont);
        float x0 = Margin + axisHeight + Gap + nameWidth + Gap;
        float y0 = Margin + ImageGrid.LineHeight(titleFont) + 2 * Gap;
        float side = n * cell;

        string title = $"Confusion matrix: {evaluation.Name} ({evaluation.Samples.ToString("N0", CultureInfo.InvariantCulture)} images, accuracy {evaluation.Accuracy.ToString("0.0000", CultureInfo.InvariantCulture)})";
        for (int i = 0; i < n; i++)
        {
            float w = nameFont.MeasureText(names[i]);
            Text($"actual {i}", names[i], nameFont, ImageGrid.TextBox(nameFont, x0 - Gap - w, y0 + i * cell + (cell - nameHeight) / 2, w));
            Text($"predicted {i}", names[i], nameFont, SKRect.Create(x0 + i * cell + (cell - nameHeight) / 2, y0 + side + Gap, nameHeight, w), vertical: true);
        }
        string yTitle = "actual class", xTitle = "predicted class", barTitle = "share of the actual class";
        float yTitleLength = axisFont.MeasureText(yTitle);
        Text("y title", yTitle, axisFont, SKRect.Create(Margin, Math.Max(y0, y0 + (side - yTitleLength) / 2), axisHeight, yTitleLength), vertical: true);
        float xTitleWidth = axisFont.MeasureText(xTitle);
        Text("x title", xTitle, axisFont, ImageGrid.TextBox(axisFont, x0 + (side - xTitleWidth) / 2, y0 + side + Gap + nameWidth + Gap, xTitleWidth));

        float barX = x0 + side + 2 * Gap;
        boxes.Add(new(LayoutBox.Kind.Tile, "colour bar", SKRect.Create(barX, y0, BarWidth, side)));
        float tickWidth = 0, tickHeight = ImageGrid.LineHeight(tickFont);
        for (int t = 0; t <= 5; t++)
        {
            string label = (t / 5.0).ToString("0.0", CultureInfo.InvariantCulture);
            float w = tickFont.MeasureText(label);
            tickWidth = Math.Max(tickWidth, w);
            Text($"tick {label}", label, tickFont, ImageGrid.TextBox(tickFont, barX + BarWidth + TickLength + 2, y0 + side * (1 - t / 5f) - tickHeight / 2, w));
        }
        float barTitleLength = axisFont.MeasureText(barTitle);
        float barTitleX = barX + BarWidth + TickLength + 2 + tickWidth + Gap;
        Text("bar title", barTitle, axisFont, SKRect.Create(barTitleX, Math.Max(y0, y0 + (side - barTitleLength) / 2), axisHeight, barTitleLength), vertical: true);

        for (int a = 0; a < n; a++)
        {
            for (int p = 0; p < n; p++)
            {
                var box = SKRect.Create(x0 + p * cell, y0 + a * cell, cell, cell);
                boxes.Add(new(LayoutBox.Kind.Tile, $"cell {a},{p}", box));
                string count = counts[a * n + p];
                if (!showCounts || (cell < 24 && m[a, p] == 0)) continue;
                float w = countFont.MeasureText(count);
                Text($"count {a},{p}", count, countFont, ImageGrid.TextBox(countFont, box.MidX - w / 2, box.MidY - ImageGrid.LineHeight(countFont) / 2, w),
                    on: $"cell {a},{p}", color: shares[a, p] > 0.6 ? SKColors.Black : SKColors.White);
            }
        }

        float titleWidth = titleFont.MeasureText(title);
        float right = Math.Max(barTitleX + axisHeight, Margin + titleWidth);
        float bottom = Math.Max(boxes.Max(b => b.Rect.Bottom), y0 + side);
        int width = (int)Math.Ceiling(right) + Margin, height = (int)Math.Ceiling(bottom) + Margin;
        Text("title", title, titleFont, ImageGrid.TextBox(titleFont, (width - titleWidth) / 2, Margin, titleWidth));

        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(bitmap);
        canvas.Clear(SKColors.White);
        using var fill = new SKPaint { IsAntialias = false };
        for (int a = 0; a < n; a++)
        {
            for (int p = 0; p < n; p++)
            {
                fill.Color = Colormaps.Map(Colormap.Viridis, (float)shares[a, p]);
                canvas.DrawRect(SKRect.Create(x0 + p * cell, y0 + a * cell, cell, cell), fill);
            }
        }
        // The colour bar: 1 at the top, one row of pixels per step.
        for (int y = 0; y < (int)side; y++)
        {
            fill.Color = Colormaps.Map(Colormap.Viridis, 1 - (y + 0.5f) / side);
            canvas.DrawRect(SKRect.Create(barX, y0 + y, BarWidth, 1), fill);
        }
        using var line = new SKPaint { Color = SKColors.Black, IsAntialias = true, StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        canvas.DrawRect(SKRect.Create(barX, y0, BarWidth, side), line);
        for (int t = 0; t <= 5; t++)
        {
            float y = y0 + side * (1 - t / 5f);
            canvas.DrawLine(barX + BarWidth, y, barX + BarWidth + TickLength, y, line);
        }
        using var ink = new SKPaint { IsAntialias = true };
        foreach (var (text, font, box, vertical, color) in texts)
        {
            ink.Color = color;
            ImageGrid.DrawText(canvas, text, font, ink, box, vertical);
        }
        canvas.Flush();
        return new Drawing(bitmap, boxes);
    }

}
