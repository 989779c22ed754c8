using Naani.Inspection;
using Naani.Layers;
using SkiaSharp;

namespace Naani.Vision;

/// Pictures of what is inside a model: a convolution's kernels and a layer's feature maps.
public static class InspectionImages
{
    /// One row per filter, one tile per input channel (the matrices KernelLog prints), and for an RGB input a last
    /// tile with the filter as a colour patch. All weights share one scale, symmetric about zero:
    /// tile value = w / (2 max|w|) + 0.5, so 0 is white, negative blue, positive red (Colormap.Diverging).
    public static SKBitmap Kernels(Conv2D layer, int? maxFilters = null)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var k = layer.Kernel.Value;   // (KH, KW, C, O)
        int kh = k.Shape[0], kw = k.Shape[1], c = k.Shape[2], o = k.Shape[3];
        int shown = Math.Min(o, maxFilters ?? o);
        float maxAbs = 0;
        foreach (var v in k.Data) maxAbs = Math.Max(maxAbs, Math.Abs(v));
        float scale = maxAbs > 0 ? 0.5f / maxAbs : 0;
        bool rgb = c == 3;
        var tiles = new List<GridTile>();
        for (int f = 0; f < shown; f++)
        {
            for (int ch = 0; ch < c; ch++)
            {
                var values = new float[kh * kw];
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                        values[i * kw + j] = k[i, j, ch, f] * scale + 0.5f;
                tiles.Add(new GridTile(values, kh, kw, 1, c > 1 ? $"{f + 1}.{ch + 1}" : $"{f + 1}"));
            }
            if (rgb)
            {
                var values = new float[kh * kw * 3];
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                        for (int ch = 0; ch < 3; ch++)
                            values[(i * kw + j) * 3 + ch] = k[i, j, ch, f] * scale + 0.5f;
                tiles.Add(new GridTile(values, kh, kw, 3, $"{f + 1} RGB"));
            }
        }
        string title = $"{layer.Name}: {o} kernels of {kh}x{kw}x{c}{(shown < o ? $" (first {shown})" : "")}, " +
            FormattableString.Invariant($"blue < 0 < red, |w| <= {maxAbs:0.####}");
        return ImageGrid.Render(tiles, Colormap.Diverging, title, columns: c + (rgb ? 1 : 0), minTilePixels: 48);
    }

    /// One tile per channel of a layer's (1, H, W, C) output, each scaled to its own min..max (as matplotlib's
    /// imshow does), numbered from 1.
    public static SKBitmap FeatureMaps(LayerOutput output, Colormap colormap = Colormap.Viridis, int? maxMaps = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        var y = output.Output;
        if (y.Rank != 4)
            throw new ArgumentException($"Layer '{output.Layer.Name}' ({output.Layer.TypeName}) gives {output.Layer.OutputShape.ToKerasString()}, not feature maps (height, width, channels); pick a convolution or pooling layer.");
        int h = y.Shape[1], w = y.Shape[2], c = y.Shape[3];
        int shown = Math.Min(c, maxMaps ?? c);
        var tiles = new List<GridTile>(shown);
        for (int ch = 0; ch < shown; ch++)
            tiles.Add(new GridTile(ImageGrid.Normalize(ImageGrid.Channel(y, ch), out _, out _), h, w, 1, $"{ch + 1}"));
        string title = $"{output.Layer.Name} ({output.Layer.TypeName}): {c} feature maps of {h}x{w}{(shown < c ? $" (first {shown})" : "")}";
        return ImageGrid.Render(tiles, colormap, title);
    }
}
