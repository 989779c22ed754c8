using SkiaSharp;

namespace Naani.Vision;

/// One picture of a grid: Height x Width values in [0, 1], one channel (drawn with the grid's colour map) or three
/// (drawn as RGB), row-major with the channels of a pixel side by side.
public sealed record GridTile(float[] Values, int Height, int Width, int Channels = 1, string? Caption = null)
{
    public float this[int y, int x, int c = 0] => Values[(y * Width + x) * Channels + c];
}

/// One cell of a grid: a few tiles of one size in a small block (a kernel's input channels), one caption under them.
public sealed record GridCell(IReadOnlyList<GridTile> Tiles, string? Caption = null);

/// Where each cell of a grid lands: cells fill rows left to right; each value becomes a Scale x Scale block. A cell
/// holds Parts tiles, PartColumns to a row, PartGap apart, and cells of several tiles stand further apart (CellGap)
/// so that a filter's channels read as one block; a cell is at least CaptionWidth wide so that neighbouring captions
/// never meet, and its tiles are centred in it. A title wider than the cells widens the picture; the cells are centred.
public readonly record struct GridLayout(int Count, int Columns, int TileHeight, int TileWidth, int Scale, bool Captions, bool Title,
    int Parts = 1, int PartColumns = 1, int CaptionWidth = 0, int TitleWidth = 0)
{
    public const int Gap = 4, PartGap = 3, Margin = 8, CaptionHeight = 14, TitleHeight = 22;

    /// No side of a grid grows past this many pixels while the values can still shrink (Scale > 1).
    public const int MaxSide = 8000;

    public int Rows => (Count + Columns - 1) / Columns;
    public int PartRows => (Parts + PartColumns - 1) / PartColumns;
    public int BlockWidth => PartColumns * TileWidth * Scale + (PartColumns - 1) * PartGap;
    public int BlockHeight => PartRows * TileHeight * Scale + (PartRows - 1) * PartGap;
    public int CellGap => Parts > 1 ? 3 * Gap : Gap;
    public int CellWidth => Math.Max(BlockWidth, CaptionWidth) + CellGap;
    public int CellHeight => BlockHeight + Gap + (Captions ? CaptionHeight : 0) + CellGap - Gap;
    public int GridWidth => Columns * CellWidth - CellGap;
    public int Width => Math.Max(GridWidth, TitleWidth) + 2 * Margin;
    public int Height => 2 * Margin + (Title ? TitleHeight : 0) + Rows * CellHeight - CellGap;

    /// The top-left pixel of cell i (its caption is centred under it, CellWidth - CellGap wide).
    public (int X, int Y) Cell(int i) =>
        (Margin + (Width - 2 * Margin - GridWidth) / 2 + i % Columns * CellWidth, Margin + (Title ? TitleHeight : 0) + i / Columns * CellHeight);

    /// The top-left pixel of tile part of cell i.
    public (int X, int Y) Origin(int i, int part = 0)
    {
        var (x, y) = Cell(i);
        x += (CellWidth - CellGap - BlockWidth) / 2;
        return (x + part % PartColumns * (TileWidth * Scale + PartGap), y + part / PartColumns * (TileHeight * Scale + PartGap));
    }
}

/// What a picture draws where: a tile, or one line of text (its advance width by the font's ascent..descent, turned
/// for vertical text) and the text it holds. On names the tile a text is drawn on (a count in its matrix cell); null
/// for text beside tiles.
public readonly record struct LayoutBox(LayoutBox.Kind What, string Name, SKRect Rect, string? On = null, string? Text = null)
{
    public enum Kind { Tile, Text }
}

/// A picture with the boxes it was drawn from, so that a test checks the layout that is actually drawn.
public sealed class Drawing(SKBitmap bitmap, IReadOnlyList<LayoutBox> boxes) : IDisposable
{
    public SKBitmap Bitmap { get; } = bitmap;
    public IReadOnlyList<LayoutBox> Boxes { get; } = boxes;

    /// Hands the bitmap over to the caller (who disposes it).
    public SKBitmap Detach() => Bitmap;

    public void Dispose() => Bitmap.Dispose();
}

/// Draws tiles (feature maps, kernels, filtered images) as one picture, the way the seed shows the 32 feature maps
/// of its first convolution: a grid of small images with their numbers.
public static class ImageGrid
{
    /// The layout for count cells of parts tiles of one size: columns chosen so the picture is a little wider than
    /// tall (8 columns for 32 maps, 4 rows), each value scaled up so that a tile is at least minTilePixels wide, and
    /// scaled back while a side would pass GridLayout.MaxSide.
    public static GridLayout Layout(int count, int tileHeight, int tileWidth, bool captions, bool title, int? columns = null, int minTilePixels = 64,
        int parts = 1, int partColumns = 0, int captionWidth = 0, int titleWidth = 0)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), "A grid needs at least one tile.");
        if (parts <= 0) throw new ArgumentOutOfRangeException(nameof(parts), "A grid cell needs at least one tile.");
        if (partColumns <= 0) partColumns = parts;
        int scale = Math.Max(1, (int)Math.Ceiling((double)minTilePixels / Math.Max(tileHeight, tileWidth)));
        var layout = new GridLayout(count, 1, tileHeight, tileWidth, scale, captions, title, parts, Math.Min(partColumns, parts), captionWidth, titleWidth);
        // Aim at width : height = 3 : 2 whatever the cells' shape.
        int cols = columns ?? Math.Clamp((int)Math.Round(Math.Sqrt(1.5 * count * layout.CellHeight / layout.CellWidth)), 1, count);
        layout = layout with { Columns = Math.Clamp(cols, 1, count) };
        while (layout.Scale > 1 && (layout.Width > GridLayout.MaxSide || layout.Height > GridLayout.MaxSide))
            layout = layout with { Scale = layout.Scale - 1 };
        return layout;
    }

    public static SKBitmap Render(IReadOnlyList<GridTile> tiles, Colormap colormap, string? title = null, int? columns = null, int minTilePixels = 64)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        return Draw([.. tiles.Select(t => new GridCell([t], t.Caption))], colormap, title, columns, minTilePixels).Detach();
    }

    /// Draws the cells, and says where each tile, caption and the title went: tiles are named "tile 3" (the third
    /// cell) or "tile 3.2" (its second part), captions "caption 3", the title "title".
    public static Drawing Draw(IReadOnlyList<GridCell> cells, Colormap colormap, string? title = null, int? columns = null, int minTilePixels = 64, int partColumns = 0)
    {
        ArgumentNullException.ThrowIfNull(cells);
        if (cells.Count == 0) throw new ArgumentException("A grid needs at least one tile.", nameof(cells));
        var all = cells.SelectMany(c => c.Tiles).ToList();
        if (cells.Any(c => c.Tiles.Count == 0)) throw new ArgumentException("Every grid cell needs at least one tile.", nameof(cells));
        for (int i = 0; i < all.Count; i++)
        {
            var tile = all[i];
            if (tile.Channels is not (1 or 3)) throw new ArgumentException($"Tile {i} has {tile.Channels} channels; a grid draws 1 (colour map) or 3 (RGB).");
            if (tile.Values.Length < tile.Height * tile.Width * tile.Channels) throw new ArgumentException($"Tile {i} holds {tile.Values.Length} values; {tile.Height}x{tile.Width}x{tile.Channels} needs {tile.Height * tile.Width * tile.Channels}.");
        }
        int th = all.Max(t => t.Height), tw = all.Max(t => t.Width), parts = cells.Max(c => c.Tiles.Count);
        using var font = new SKFont(SKTypeface.Default, 12);
        using var titleFont = new SKFont(SKTypeface.Default, 15) { Embolden = true };
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        int captionWidth = (int)Math.Ceiling(cells.Max(c => c.Caption is null ? 0 : font.MeasureText(c.Caption)));
        int titleWidth = title is null ? 0 : (int)Math.Ceiling(titleFont.MeasureText(title));
        var layout = Layout(cells.Count, th, tw, cells.Any(c => c.Caption is not null), title is not null, columns, minTilePixels,
            parts, partColumns, captionWidth, titleWidth);

        var boxes = new List<LayoutBox>();
        var texts = new List<(string Text, SKFont Font, SKRect Box)>();
        if (title is not null)
        {
            float left = (layout.Width - titleWidth) / 2f;
            var box = TextBox(titleFont, left, GridLayout.Margin + 2, titleWidth);
            boxes.Add(new(LayoutBox.Kind.Text, "title", box, Text: title));
            texts.Add((title, titleFont, box));
        }
        for (int i = 0; i < cells.Count; i++)
        {
            var cell = cells[i];
            for (int p = 0; p < cell.Tiles.Count; p++)
            {
                var (ox, oy) = layout.Origin(i, p);
                var tile = cell.Tiles[p];
                boxes.Add(new(LayoutBox.Kind.Tile, cells.Count == all.Count ? $"tile {i + 1}" : $"tile {i + 1}.{p + 1}",
                    SKRect.Create(ox, oy, tile.Width * layout.Scale, tile.Height * layout.Scale)));
            }
            if (cell.Caption is null) continue;
            var (cx, cy) = layout.Cell(i);
            float width = font.MeasureText(cell.Caption);
            var captionBox = TextBox(font, cx + (layout.CellWidth - layout.CellGap - width) / 2f, cy + layout.BlockHeight + 1, width);
            boxes.Add(new(LayoutBox.Kind.Text, $"caption {i + 1}", captionBox, Text: cell.Caption));
            texts.Add((cell.Caption, font, captionBox));
        }

        var bitmap = new SKBitmap(new SKImageInfo(layout.Width, layout.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            canvas.Flush();
        }
        // Tiles are written pixel by pixel (no filtering), so what the PNG holds is exactly the colour-mapped values.
        var pixels = bitmap.GetPixelSpan();
        int stride = bitmap.RowBytes;
        for (int i = 0; i < cells.Count; i++)
        {
            for (int part = 0; part < cells[i].Tiles.Count; part++)
            {
                var tile = cells[i].Tiles[part];
                var (ox, oy) = layout.Origin(i, part);
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
        }
        bitmap.NotifyPixelsChanged();
        using (var canvas = new SKCanvas(bitmap))
        {
            foreach (var (text, textFont, box) in texts) DrawText(canvas, text, textFont, ink, box);
            canvas.Flush();
        }
        return new Drawing(bitmap, boxes);
    }

    /// The box of one line of text whose left edge is at left and whose ascent starts at top.
    internal static SKRect TextBox(SKFont font, float left, float top, float width) =>
        new(left, top, left + width, top + LineHeight(font));

    /// The height of one line of text: the font's ascent to its descent.
    internal static float LineHeight(SKFont font) => font.Metrics.Descent - font.Metrics.Ascent;

    /// Draws text so that it fills box: left to right when the box is wider than tall (as TextBox makes it),
    /// reading upwards when vertical is set (box one line wide).
    internal static void DrawText(SKCanvas canvas, string text, SKFont font, SKPaint paint, SKRect box, bool vertical = false)
    {
        if (!vertical)
        {
            canvas.DrawText(text, box.Left, box.Top - font.Metrics.Ascent, SKTextAlign.Left, font, paint);
            return;
        }
        // Rotated by -90 degrees, a local point (u, v) lands on (x + v, y - u): the baseline runs up from the bottom.
        canvas.Save();
        canvas.Translate(box.Left - font.Metrics.Ascent, box.Bottom);
        canvas.RotateDegrees(-90);
        canvas.DrawText(text, 0, 0, SKTextAlign.Left, font, paint);
        canvas.Restore();
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
