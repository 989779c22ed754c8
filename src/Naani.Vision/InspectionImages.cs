using Naani.Inspection;
using Naani.Layers;
using SkiaSharp;

namespace Naani.Vision;

/// Pictures of what is inside a model: a convolution's kernels and a layer's feature maps.
public static class InspectionImages
{
    /// A kernel shows at most this many of its input channels (the first ones), so that a 3x3x512 layer stays a
    /// picture of bounded size.
    public const int MaxChannelTiles = 16;

    /// Kernel tiles are at least this many pixels wide: a 3x3 kernel becomes 48 px, a 5x5 one 50 px.
    public const int KernelTilePixels = 48;

    /// The kernels as a grid, about as many columns as rows, one cell per filter numbered from 1 under it. A cell
    /// holds the filter's input channels: one tile for a single channel; for an RGB input the filter as a colour
    /// patch followed by its R, G and B tiles in a row; otherwise a small block of channel tiles (the first
    /// MaxChannelTiles; the title says so). All weights share one scale, symmetric about zero:
    /// tile value = w / (2 max|w|) + 0.5, so 0 is white, negative blue, positive red (Colormap.Diverging).
    public static SKBitmap Kernels(Conv2D layer, int? maxFilters = null) => DrawKernels(layer, maxFilters).Detach();

    /// Kernels, with the boxes of its tiles ("tile 3.2": filter 3, its second tile) and texts.
    public static Drawing DrawKernels(Conv2D layer, int? maxFilters = null)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var k = layer.Kernel.Value;   // (KH, KW, C, O)
        int kh = k.Shape[0], kw = k.Shape[1], c = k.Shape[2], o = k.Shape[3];
        int shown = Math.Min(o, maxFilters ?? o);
        float maxAbs = 0;
        foreach (var v in k.Data) maxAbs = Math.Max(maxAbs, Math.Abs(v));
        float scale = maxAbs > 0 ? 0.5f / maxAbs : 0;
        bool rgb = c == 3;
        int channels = Math.Min(c, MaxChannelTiles);
        var cells = new List<GridCell>(shown);
        for (int f = 0; f < shown; f++)
        {
            var tiles = new List<GridTile>(channels + 1);
            if (rgb)
            {
                var values = new float[kh * kw * 3];
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                        for (int ch = 0; ch < 3; ch++)
                            values[(i * kw + j) * 3 + ch] = k[i, j, ch, f] * scale + 0.5f;
                tiles.Add(new GridTile(values, kh, kw, 3));
            }
            for (int ch = 0; ch < channels; ch++)
            {
                var values = new float[kh * kw];
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                        values[i * kw + j] = k[i, j, ch, f] * scale + 0.5f;
                tiles.Add(new GridTile(values, kh, kw));
            }
            cells.Add(new GridCell(tiles, $"{f + 1}"));
        }
        // Up to 4 tiles side by side (RGB and its channels); more in a block about as wide as tall (16: 4 x 4).
        int parts = cells[0].Tiles.Count;
        int partColumns = parts <= 4 ? parts : (int)Math.Ceiling(Math.Sqrt(parts));
        string what = rgb ? "colour, R, G, B" : channels < c ? $"channels 1-{channels} of {c}" : c > 1 ? $"{c} channels" : "";
        string title = $"{layer.Name}: {o} kernels of {kh}x{kw}x{c}{(shown < o ? $" (first {shown})" : "")}" +
            (what.Length > 0 ? $", each {what}" : "") + FormattableString.Invariant($"; blue < 0 < red, |w| <= {maxAbs:0.####}");
        return ImageGrid.Draw(cells, Colormap.Diverging, title, minTilePixels: KernelTilePixels, partColumns: partColumns);
    }

    /// One tile per channel of a layer's (1, H, W, C) output, each scaled to its own min..max (as matplotlib's
    /// imshow does), numbered from 1.
    public static SKBitmap FeatureMaps(LayerOutput output, Colormap colormap = Colormap.Viridis, int? maxMaps = null) =>
        DrawFeatureMaps(output, colormap, maxMaps).Detach();

    /// FeatureMaps, with the boxes of its tiles ("tile 3") and texts.
    public static Drawing DrawFeatureMaps(LayerOutput output, Colormap colormap = Colormap.Viridis, int? maxMaps = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        var y = output.Output;
        if (y.Rank != 4)
            throw new ArgumentException($"Layer '{output.Layer.Name}' ({output.Layer.TypeName}) gives {output.Layer.OutputShape.ToKerasString()}, not feature maps (height, width, channels); pick a convolution or pooling layer.");
        int h = y.Shape[1], w = y.Shape[2], c = y.Shape[3];
        int shown = Math.Min(c, maxMaps ?? c);
        var cells = new List<GridCell>(shown);
        for (int ch = 0; ch < shown; ch++)
            cells.Add(new GridCell([new GridTile(ImageGrid.Normalize(ImageGrid.Channel(y, ch), out _, out _), h, w)], $"{ch + 1}"));
        string title = $"{output.Layer.Name} ({output.Layer.TypeName}): {c} feature maps of {h}x{w}{(shown < c ? $" (first {shown})" : "")}";
        return ImageGrid.Draw(cells, colormap, title);
    }
}
