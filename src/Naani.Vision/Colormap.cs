using SkiaSharp;

namespace Naani.Vision;

/// Maps a value in [0, 1] to a colour.
public enum Colormap
{
    /// Black to white.
    Gray,

    /// matplotlib's default (dark blue, green, yellow): what the seed's feature-map figures use.
    Viridis,

    /// Blue (0) through white (0.5) to red (1): for values centred on zero, such as kernel weights.
    Diverging,
}

public static class Colormaps
{
    // Viridis sampled at 0, 1/8, ..., 1 (matplotlib's table); linear in between.
    static readonly (byte R, byte G, byte B)[] ViridisStops =
    [
        (68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140),
        (40, 174, 128), (94, 201, 98), (173, 220, 48), (253, 231, 37),
    ];

    public static SKColor Map(Colormap map, float value)
    {
        float t = float.IsNaN(value) ? 0 : Math.Clamp(value, 0f, 1f);
        switch (map)
        {
            case Colormap.Gray:
                {
                    byte g = (byte)MathF.Round(t * 255);
                    return new SKColor(g, g, g);
                }
            case Colormap.Viridis:
                {
                    float x = t * (ViridisStops.Length - 1);
                    int i = Math.Min((int)x, ViridisStops.Length - 2);
                    float f = x - i;
                    var (a, b) = (ViridisStops[i], ViridisStops[i + 1]);
                    return new SKColor(Lerp(a.R, b.R, f), Lerp(a.G, b.G, f), Lerp(a.B, b.B, f));
                }
            default:
                {
                    // 0 -> (33, 102, 172), 0.5 -> white, 1 -> (178, 24, 43): ColorBrewer's RdBu ends.
                    if (t < 0.5f)
                    {
                        float f = t / 0.5f;
                        return new SKColor(Lerp(33, 255, f), Lerp(102, 255, f), Lerp(172, 255, f));
                    }
                    float g2 = (t - 0.5f) / 0.5f;
                    return new SKColor(Lerp(255, 178, g2), Lerp(255, 24, g2), Lerp(255, 43, g2));
                }
        }
    }

    /// The colour map as 256 RGB triples (value q / 255 for q = 0..255), for pages that colour in JavaScript exactly as
    /// the PNGs are coloured here (the explain page, the training dashboard).
    public static byte[] Table(Colormap map)
    {
        var table = new byte[256 * 3];
        for (int q = 0; q < 256; q++)
        {
            var c = Map(map, q / 255f);
            (table[3 * q], table[3 * q + 1], table[3 * q + 2]) = (c.Red, c.Green, c.Blue);
        }
        return table;
    }

    static byte Lerp(byte a, byte b, float f) => (byte)MathF.Round(a + (b - a) * f);

    public static Colormap Parse(string name) => name.ToLowerInvariant() switch
    {
        "gray" or "grey" or "grayscale" => Colormap.Gray,
        "viridis" => Colormap.Viridis,
        "diverging" or "rdbu" => Colormap.Diverging,
        _ => throw new ArgumentException($"Unknown colour map '{name}'; use gray, viridis or diverging."),
    };
}
