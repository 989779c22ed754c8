using System.Globalization;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;

namespace Naani.Vision;

/// The classic 3x3 filters of the seed "Fundamentals of CNN", as (row, column) matrices.
public static class ClassicKernels
{
    /// Detects horizontal edges: bright above, dark below gives a positive response.
    public static float[,] Horizontal => new float[,] { { 1, 1, 1 }, { 0, 0, 0 }, { -1, -1, -1 } };

    /// Detects vertical edges: bright left, dark right gives a positive response.
    public static float[,] Vertical => new float[,] { { 1, 0, -1 }, { 1, 0, -1 }, { 1, 0, -1 } };

    /// Detects edges where the luminosity changes sharply, in every direction (it sums to zero: flat regions give 0).
    public static float[,] Laplacian => new float[,] { { -1, -1, -1 }, { -1, 8, -1 }, { -1, -1, -1 } };

    /// The 3x3 mean (box blur), (1/9) * ones. The seed writes the blur as -(1/9) * ones; with that sign every output
    /// of an image in [0, 1] is at most 0, i.e. the negative of the blurred image, which shows as black once clipped.
    /// Naani's "blur" is the positive mean, the filter the seed describes ("will blur edges"); the seed's exact matrix
    /// is "negative-blur" (or a kernel file), and with --display abs it looks like the blur.
    public static float[,] Blur => Fill(1f / 9);

    /// The seed's literal -(1/9) * ones.
    public static float[,] NegativeBlur => Fill(-1f / 9);

    public static IReadOnlyList<string> Names { get; } = ["horizontal", "vertical", "laplacian", "blur", "negative-blur"];

    static float[,] Fill(float value)
    {
        var k = new float[3, 3];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                k[i, j] = value;
        return k;
    }

    /// A built-in kernel by name, or null.
    public static float[,]? Named(string name) => name.ToLowerInvariant() switch
    {
        "horizontal" => Horizontal,
        "vertical" => Vertical,
        "laplacian" => Laplacian,
        "blur" => Blur,
        "negative-blur" or "seed-blur" => NegativeBlur,
        _ => null,
    };

    /// Reads a kernel from text: one row per line, values separated by spaces, commas or semicolons; brackets are
    /// ignored (so "[[1, 0, -1], [1, 0, -1], [1, 0, -1]]" on one line works too), as are lines starting with #.
    /// Fractions like 1/9 are accepted.
    public static float[,] Parse(string text, string source = "kernel")
    {
        var rows = new List<float[]>();
        var body = text.Replace("],", "]\n", StringComparison.Ordinal);
        foreach (var rawLine in body.Split('\n'))
        {
            var line = rawLine.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            line = line.Replace("[", " ", StringComparison.Ordinal).Replace("]", " ", StringComparison.Ordinal);
            var cells = line.Split([' ', '\t', ',', ';'], StringSplitOptions.RemoveEmptyEntries);
            if (cells.Length == 0) continue;
            rows.Add([.. cells.Select(c => ParseNumber(c, source, rows.Count + 1))]);
        }
        if (rows.Count == 0) throw new InvalidDataException($"{source}: no numbers found; write the kernel as rows of numbers, e.g. \"1 0 -1\" on three lines.");
        int width = rows[0].Length;
        for (int r = 1; r < rows.Count; r++)
            if (rows[r].Length != width)
                throw new InvalidDataException($"{source}: row {r + 1} has {rows[r].Length} values but row 1 has {width}; a kernel is a rectangle.");
        if (rows.Count > 64 || width > 64) throw new InvalidDataException($"{source}: a {rows.Count}x{width} kernel is larger than the 64x64 allowed.");
        var kernel = new float[rows.Count, width];
        for (int i = 0; i < rows.Count; i++)
            for (int j = 0; j < width; j++)
                kernel[i, j] = rows[i][j];
        return kernel;
    }

    static float ParseNumber(string cell, string source, int row)
    {
        var parts = cell.Split('/');
        if (parts.Length is 1 or 2 && parts.All(p => float.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
        {
            float value = float.Parse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture);
            if (parts.Length == 2) value /= float.Parse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture);
            if (float.IsFinite(value)) return value;
        }
        throw new InvalidDataException($"{source}: row {row}: '{cell}' is not a number.");
    }

    /// The kernel as rows of numbers, e.g. "[[ 1  1  1]\n [ 0  0  0]\n [-1 -1 -1]]".
    public static string Format(float[,] kernel)
    {
        var cells = new string[kernel.GetLength(0), kernel.GetLength(1)];
        int width = 0;
        for (int i = 0; i < cells.GetLength(0); i++)
            for (int j = 0; j < cells.GetLength(1); j++)
                width = Math.Max(width, (cells[i, j] = kernel[i, j].ToString("0.####", CultureInfo.InvariantCulture)).Length);
        var lines = new List<string>();
        for (int i = 0; i < cells.GetLength(0); i++)
            lines.Add((i == 0 ? "[[" : " [") + string.Join(" ", Enumerable.Range(0, cells.GetLength(1)).Select(j => cells[i, j].PadLeft(width))) + (i == cells.GetLength(0) - 1 ? "]]" : "]"));
        return string.Join(Environment.NewLine, lines);
    }
}

/// How a filtered image, whose values can be negative or above 1, becomes a picture.
public enum FilterDisplay
{
    /// Values clipped to [0, 1] (what saving an 8-bit image does: OpenCV's filter2D, PIL): a pixel shows the formula's value.
    Clip,

    /// |value| clipped to [0, 1]: edges of both signs show bright.
    Abs,

    /// Min-max stretched to [0, 1] over the whole image.
    Stretch,
}

/// Applies one 2-D kernel to every channel of an image, through Naani's own Conv2D (a kernel that maps channel c to
/// channel c only), so the picture shows exactly what a convolution layer computes:
///   y[i, j, c] = sum_{m, n} x[i*s + m - pt, j*s + n - pl, c] * k[m, n]   (zero outside the image)
/// with the seed's output size floor((n - k) / s) + 1 for 'valid' padding and ceil(n / s) for 'same'.
public static class ImageFilter
{
    public static Tensor Apply(Tensor image, float[,] kernel, int stride = 1, Padding padding = Padding.Valid)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(kernel);
        if (image.Rank != 3) throw new ArgumentException($"Filtering takes an (H, W, C) image; got {image.Shape}.", nameof(image));
        if (stride <= 0) throw new ArgumentOutOfRangeException(nameof(stride), $"The stride must be positive; got {stride}.");
        int h = image.Shape[0], w = image.Shape[1], c = image.Shape[2];
        int kh = kernel.GetLength(0), kw = kernel.GetLength(1);
        if (padding == Padding.Valid && (kh > h || kw > w))
            throw new ArgumentException($"A {kh}x{kw} kernel with 'valid' padding does not fit a {h}x{w} image.");
        var conv = new Conv2D(c, (kh, kw), (stride, stride), padding, Activation.Linear, useBias: false, name: "filter");
        var model = new Sequential("filter", seed: 0).Add(new Input(h, w, c)).Add(conv);
        model.Build();
        var k = conv.Kernel.Value;   // (KH, KW, C, C): channel c feeds output c with the same kernel, nothing else
        k.Clear();
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++)
                for (int ch = 0; ch < c; ch++)
                    k[i, j, ch, ch] = kernel[i, j];
        var output = model.Predict(image.Reshape(1, h, w, c), batchSize: 1);
        return output.Reshape(output.Shape.Dims[1..].ToArray());
    }

    /// Maps filter outputs to [0, 1] for display.
    public static Tensor ForDisplay(Tensor filtered, FilterDisplay display)
    {
        var result = filtered.Clone();
        var d = result.Data;
        switch (display)
        {
            case FilterDisplay.Clip:
                for (int i = 0; i < d.Length; i++) d[i] = Math.Clamp(d[i], 0f, 1f);
                break;
            case FilterDisplay.Abs:
                for (int i = 0; i < d.Length; i++) d[i] = Math.Min(Math.Abs(d[i]), 1f);
                break;
            default:
                var normalized = ImageGrid.Normalize(d, out _, out _);
                normalized.CopyTo(d, 0);
                break;
        }
        return result;
    }
}
