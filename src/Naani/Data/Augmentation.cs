using System.Globalization;

namespace Naani.Data;

/// Random changes applied to each training image as it is batched, so that every epoch sees slightly different
/// images (Keras's RandomFlip, RandomTranslation, RandomRotation, RandomBrightness and RandomContrast layers).
/// Each image's changes are drawn from its own generator, seeded by (seed, epoch, position in the epoch), so a
/// run is reproducible whatever the number of decoding threads. Images are (H, W, C) floats in [0, 1], in place.
public sealed record Augmentation
{
    /// Mirror left-right with probability 1/2.
    public bool HorizontalFlip { get; init; }

    /// Shift by up to this fraction of the height and width in each direction, filling with zeros: the classic
    /// "pad and random crop" (0.125 on 32x32 CIFAR images is the usual 4-pixel padding).
    public double MaxShift { get; init; }

    /// Rotate by an angle drawn uniformly from [-MaxRotationDegrees, MaxRotationDegrees] about the centre,
    /// bilinear, reflecting at the borders (Keras's default fill mode).
    public double MaxRotationDegrees { get; init; }

    /// Add a value drawn from [-MaxBrightness, MaxBrightness] to every pixel, then clip to [0, 1].
    public double MaxBrightness { get; init; }

    /// Scale each channel's deviation from its mean by a factor from [1 - MaxContrast, 1 + MaxContrast], then clip.
    public double MaxContrast { get; init; }

    /// What --augment with no value means: flip, shift 0.1, rotation 10 degrees, brightness and contrast 0.1.
    public static Augmentation Default { get; } = new()
    {
        HorizontalFlip = true,
        MaxShift = 0.1,
        MaxRotationDegrees = 10,
        MaxBrightness = 0.1,
        MaxContrast = 0.1,
    };

    public bool IsIdentity => !HorizontalFlip && MaxShift == 0 && MaxRotationDegrees == 0 && MaxBrightness == 0 && MaxContrast == 0;

    /// Parses "default", or a comma-separated list of flip, shift=F, rotate=DEG, brightness=F, contrast=F
    /// (a name without a value takes the default's value for it).
    public static Augmentation Parse(string? spec)
    {
        if (string.IsNullOrWhiteSpace(spec) || spec.Trim().Equals("default", StringComparison.OrdinalIgnoreCase))
            return Default;
        var result = new Augmentation();
        foreach (var part in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var pieces = part.Split('=', 2, StringSplitOptions.TrimEntries);
            string name = pieces[0].ToLowerInvariant();
            double? value = null;
            if (pieces.Length == 2)
            {
                if (!double.TryParse(pieces[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v < 0)
                    throw new ArgumentException($"Augmentation '{part}': the value must be a number of 0 or more.");
                value = v;
            }
            result = name switch
            {
                "flip" or "hflip" => value is null || value > 0 ? result with { HorizontalFlip = true } : result,
                "shift" or "crop" or "translate" => result with { MaxShift = Check(part, value ?? Default.MaxShift, 0.5) },
                "rotate" or "rotation" => result with { MaxRotationDegrees = Check(part, value ?? Default.MaxRotationDegrees, 180) },
                "brightness" => result with { MaxBrightness = Check(part, value ?? Default.MaxBrightness, 1) },
                "contrast" => result with { MaxContrast = Check(part, value ?? Default.MaxContrast, 1) },
                _ => throw new ArgumentException(
                    $"Unknown augmentation '{pieces[0]}'; use default, or a list of flip, shift=F, rotate=DEGREES, brightness=F, contrast=F (e.g. flip,shift=0.125)."),
            };
        }
        return result;
    }

    static double Check(string part, double value, double max) =>
        value <= max ? value : throw new ArgumentException($"Augmentation '{part}': the value must be at most {max.ToString(CultureInfo.InvariantCulture)}.");

    public override string ToString()
    {
        var parts = new List<string>();
        if (HorizontalFlip) parts.Add("flip");
        if (MaxShift > 0) parts.Add(FormattableString.Invariant($"shift={MaxShift}"));
        if (MaxRotationDegrees > 0) parts.Add(FormattableString.Invariant($"rotate={MaxRotationDegrees}"));
        if (MaxBrightness > 0) parts.Add(FormattableString.Invariant($"brightness={MaxBrightness}"));
        if (MaxContrast > 0) parts.Add(FormattableString.Invariant($"contrast={MaxContrast}"));
        return parts.Count == 0 ? "none" : string.Join(",", parts);
    }

    /// The generator for one image: independent streams for each (seed, epoch, position).
    public static Rng RandomFor(int seed, int epoch, int position) =>
        new(((ulong)(uint)seed << 32 | (uint)epoch) * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)position * 0xD1B54A32D192ED03UL);

    /// Applies the changes to one (height, width, channels) image in place; scratch holds at least as many values.
    public void Apply(Span<float> image, int height, int width, int channels, Rng random, Span<float> scratch)
    {
        int size = height * width * channels;
        if (image.Length < size || scratch.Length < size)
            throw new ArgumentException($"Augmentation needs {size} values for a {height}x{width}x{channels} image; got {image.Length} (scratch {scratch.Length}).");
        image = image[..size];
        scratch = scratch[..size];
        // Every draw happens whether or not it is used, so enabling one change does not alter the others' values.
        bool flip = random.NextFloat() < 0.5f;
        int dy = (int)MathF.Round(random.Uniform(-1, 1) * (float)MaxShift * height);
        int dx = (int)MathF.Round(random.Uniform(-1, 1) * (float)MaxShift * width);
        double angle = random.Uniform(-1, 1) * MaxRotationDegrees * Math.PI / 180;
        float brightness = random.Uniform(-1, 1) * (float)MaxBrightness;
        float contrast = 1 + random.Uniform(-1, 1) * (float)MaxContrast;

        if (HorizontalFlip && flip) FlipHorizontally(image, height, width, channels);
        if (dy != 0 || dx != 0) Shift(image, height, width, channels, dy, dx, scratch);
        if (MaxRotationDegrees > 0 && angle != 0) Rotate(image, height, width, channels, angle, scratch);
        if (MaxBrightness > 0) AdjustBrightness(image, brightness);
        if (MaxContrast > 0) AdjustContrast(image, channels, contrast);
    }

    // x[h, w, c] <- x[h, W-1-w, c]
    public static void FlipHorizontally(Span<float> image, int height, int width, int channels)
    {
        for (int h = 0; h < height; h++)
        {
            var row = image.Slice(h * width * channels, width * channels);
            for (int l = 0, r = width - 1; l < r; l++, r--)
                for (int c = 0; c < channels; c++)
                    (row[l * channels + c], row[r * channels + c]) = (row[r * channels + c], row[l * channels + c]);
        }
    }

    // y[h, w, c] = x[h - dy, w - dx, c], zero outside: the content moves down by dy and right by dx.
    public static void Shift(Span<float> image, int height, int width, int channels, int dy, int dx, Span<float> scratch)
    {
        scratch.Clear();
        int rowSize = width * channels;
        int w0 = Math.Max(0, dx), w1 = Math.Min(width, width + dx);
        for (int h = 0; h < height; h++)
        {
            int source = h - dy;
            if (source < 0 || source >= height || w1 <= w0) continue;
            image.Slice(source * rowSize + (w0 - dx) * channels, (w1 - w0) * channels).CopyTo(scratch.Slice(h * rowSize + w0 * channels));
        }
        scratch.CopyTo(image);
    }

    // y[h, w] = x(R(-angle) (h, w) about the centre), bilinear, coordinates reflected into the image.
    public static void Rotate(Span<float> image, int height, int width, int channels, double angle, Span<float> scratch)
    {
        float cos = (float)Math.Cos(angle), sin = (float)Math.Sin(angle);
        float cy = (height - 1) / 2f, cx = (width - 1) / 2f;
        for (int h = 0; h < height; h++)
        {
            for (int w = 0; w < width; w++)
            {
                float y = h - cy, x = w - cx;
                float sy = cos * y - sin * x + cy;
                float sx = sin * y + cos * x + cx;
                int y0 = (int)MathF.Floor(sy), x0 = (int)MathF.Floor(sx);
                float fy = sy - y0, fx = sx - x0;
                int ya = Reflect(y0, height), yb = Reflect(y0 + 1, height), xa = Reflect(x0, width), xb = Reflect(x0 + 1, width);
                var output = scratch.Slice((h * width + w) * channels, channels);
                for (int c = 0; c < channels; c++)
                {
                    float top = image[(ya * width + xa) * channels + c] * (1 - fx) + image[(ya * width + xb) * channels + c] * fx;
                    float bottom = image[(yb * width + xa) * channels + c] * (1 - fx) + image[(yb * width + xb) * channels + c] * fx;
                    output[c] = top * (1 - fy) + bottom * fy;
                }
            }
        }
        scratch.CopyTo(image);
    }

    /// Mirrors an index into [0, n): ... 2 1 0 | 0 1 2 ... n-1 | n-1 n-2 ... (Keras's "reflect").
    static int Reflect(int i, int n)
    {
        if (n == 1) return 0;
        int period = 2 * n;
        i %= period;
        if (i < 0) i += period;
        return i < n ? i : period - 1 - i;
    }

    public static void AdjustBrightness(Span<float> image, float delta)
    {
        for (int i = 0; i < image.Length; i++) image[i] = Math.Clamp(image[i] + delta, 0f, 1f);
    }

    // y = (x - mean_c) * factor + mean_c per channel, clipped to [0, 1].
    public static void AdjustContrast(Span<float> image, int channels, float factor)
    {
        Span<double> mean = stackalloc double[channels];
        int pixels = image.Length / channels;
        for (int i = 0; i < image.Length; i++) mean[i % channels] += image[i];
        for (int c = 0; c < channels; c++) mean[c] /= pixels;
        for (int i = 0; i < image.Length; i++)
        {
            float m = (float)mean[i % channels];
            image[i] = Math.Clamp((image[i] - m) * factor + m, 0f, 1f);
        }
    }
}
