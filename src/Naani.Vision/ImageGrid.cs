using SkiaSharp;

namespace Naani.Vision;

/// One picture of a grid: Height x Width values in [0, 1], one channel (drawn with the grid's colour map) or three
/// (drawn as RGB), row-major with the channels of a pixel side by side.
public sealed record GridTile(float[] Values, int Height, int Width, int Channels = 1, string? Caption = null)
{
    public float this[int y, int x, int c = 0] => Values[(y * Width + x) * Channels + c];
}

/// Where each tile of a grid lands: tiles fill rows left to right; each value becomes a Scale x Scale block.
public readonly record struct GridLayout(int Count, int Columns, int TileHeight, int TileWidth, int Scale, bool Captions, bool Title)
{
    public const int Gap = 4, Margin = 8, CaptionHeight = 14, TitleHeight = 22;

    public int Rows => (Count + Columns - 1) / Columns;
    public int CellWidth => TileWidth * Scale + Gap;
    public int CellHeight => TileHeight * Scale + Gap + (Captions ? CaptionHeight : 0);
    public int Width => 2 * Margin + Columns * CellWidth - Gap;
    public int Height => 2 * Margin + (Title ? TitleHeight : 0) + Rows * CellHeight - Gap;

    /// The top-left pixel of tile i.
    public (int X, int Y) Origin(int i) => (Margin + i % Columns * CellWidth, Margin + (Title ? TitleHeight : 0) + i / Columns * CellHeight);
}

/// Draws tiles (feature maps, kernels, filtered images) as one picture, the way the seed shows the 32 feature maps
/// of its first convolution: a grid of small images with their numbers.
public static class ImageGrid
{
    /// The layout for count tiles of one size: about as many columns as rows (8 columns for 32 maps, 4 rows),
    /// each value scaled up so that a tile is at least minTilePixels wide.
    public static GridLayout Layout(int count, int tileHeight, int tileWidth, bool captions, bool title, int? columns = null, int minTilePixels = 64)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), "A grid needs at least one tile.");
        int cols = columns ?? Math.Clamp((int)Math.Ceiling(Math.Sqrt(count * 2.0)), 1, count);
        int scale = Math.Max(1, (int)Math.Ceiling((double)minTilePixels / Math.Max(tileHeight, tileWidth)));
        // Very large grids stay under about 8,000 pixels a side.
        while (scale > 1 && cols * tileWidth * scale > 8000) scale--;
        return new GridLayout(count, cols, tileHeight, tileWidth, scale, captions, title);
    }

    public static SKBitmap Render(IReadOnlyList<GridTile> tiles, Colormap colormap, string? title = null, int? columns = null, int minTilePixels = 64)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        if (tiles.Count == 0) throw new ArgumentException("A grid needs at least one tile.", nameof(tiles));
        int th = tiles.Max(t => t.Height), tw = tiles.Max(t => t.Width);
        var layout = Layout(tiles.Count, th, tw, tiles.Any(t => t.Caption is not null), title is not null, columns, minTilePixels);
        using var font = new SKFont(SKTypeface.Default, 12);
        using var titleFont = new SKFont(SKTypeface.Default, 15) { Embolden = true };
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        // A title wider than the tiles widens the picture; the tiles keep their places (Layout.Origin).
        int width = title is null ? layout.Width : Math.Max(layout.Width, (int)Math.Ceiling(titleFont.MeasureText(title)) + 2 * GridLayout.Margin);
        var bitmap = new SKBitmap(new SKImageInfo(width, layout.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(bitmap);
        canvas.Clear(SKColors.White);
        if (title is not null)
            canvas.DrawText(title, width / 2f, GridLayout.Margin + 15, SKTextAlign.Center, titleFont, ink);
        canvas.Flush();

        // Tiles are written pixel by pixel (no filtering), so what the PNG holds is exactly the colour-mapped values.
        var pixels = bitmap.GetPixelSpan();
        int stride = bitmap.RowBytes;
        for (int i = 0; i < tiles.Count; i++)
        {
            var tile = tiles[i];
            if (tile.Channels is not (1 or 3)) throw new ArgumentException($"Tile {i} has {tile.Channels} channels; a grid draws 1 (colour map) or 3 (RGB).");
            if (tile.Values.Length < tile.Height * tile.Width * tile.Channels) throw new ArgumentException($"Tile {i} holds {tile.Values.Length} values; {tile.Height}x{tile.Width}x{tile.Channels} needs {tile.Height * tile.Width * tile.Channels}.");
            var (ox, oy) = layout.Origin(i);
            for (int y = 0; y < tile.Height; y++)
            {
                for (int x = 0; x < tile.Width; x++)
                {
                    SKColor color = tile.Channels == 1
                        ? Colormaps.Map(colormap, tile[y, x])
                        : new SKColor(ImageFile.ToByte(tile[y, x, 0]), ImageFile.ToByte(tile[y, x, 1]), ImageFile.ToByte(tile[y, x, 2]));
                    for (int dy = 0; dy < layout.Scale; dy++)
                    {
                        int row = (oy + y * layout.Scale + dy) * stride;
                        for (int dx = 0; dx < layout.Scale; dx++)
                        {
                            int p = row + (ox + x * layout.Scale + dx) * 4;
                            pixels[p] = color.Red;
                            pixels[p + 1] = color.Green;
                            pixels[p + 2] = color.Blue;
                            pixels[p + 3] = 255;
                        }
                    }
                }
            }
        }
        bitmap.NotifyPixelsChanged();
        foreach (var (tile, i) in tiles.Select((t, i) => (t, i)))
        {
            if (tile.Caption is null) continue;
            var (ox, oy) = layout.Origin(i);
            canvas.DrawText(tile.Caption, ox + tile.Width * layout.Scale / 2f, oy + tile.Height * layout.Scale + GridLayout.CaptionHeight - 2, SKTextAlign.Center, font, ink);
        }
        canvas.Flush();
        return bitmap;
    }

    /// Min-max normalisation to [0, 1], as matplotlib's imshow scales each picture; a constant map becomes all 0.
    public static float[] Normalize(ReadOnlySpan<float> values, out float min, out float max)
    {
        min = float.PositiveInfinity;
        max = float.NegativeInfinity;
        foreach (var v in values)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
        var result = new float[values.Length];
        float range = max - min;
        if (range > 0)
            for (int i = 0; i < values.Length; i++) result[i] = (values[i] - min) / range;
        return result;
    }

    /// Channel c of an (H, W, C) or (1, H, W, C) tensor as a (H * W) array.
    public static float[] Channel(Tensor maps, int c)
    {
        var d = maps.Shape.Dims;
        int h = d[^3], w = d[^2], channels = d[^1];
        if ((uint)c >= (uint)channels) throw new ArgumentOutOfRangeException(nameof(c), $"Channel {c} is outside the {channels} channels of {maps.Shape}.");
        var result = new float[h * w];
        for (int p = 0; p < h * w; p++) result[p] = maps.Data[p * channels + c];
        return result;
    }
}
