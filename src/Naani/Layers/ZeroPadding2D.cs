using System.Text.Json.Nodes;
using Naani.Kernels;

namespace Naani.Layers;

/// Adds rows and columns of zeros around each image, as Keras's ZeroPadding2D:
/// (H, W, C) -> (top + H + bottom, left + W + right, C). ResNet pads its 7x7 stem this way, ((3, 3), (3, 3)).
public sealed class ZeroPadding2D : Layer
{
    /// The same padding on all four sides.
    public ZeroPadding2D(int padding = 1, string? name = null) : this(((padding, padding), (padding, padding)), name) { }

    /// Symmetric: (rows above and below, columns left and right).
    public ZeroPadding2D((int Height, int Width) padding, string? name = null)
        : this(((padding.Height, padding.Height), (padding.Width, padding.Width)), name) { }

    /// ((top, bottom), (left, right)).
    public ZeroPadding2D(((int Top, int Bottom) Rows, (int Left, int Right) Columns) padding, string? name = null) : base(name)
    {
        var (rows, columns) = padding;
        if (rows.Top < 0 || rows.Bottom < 0 || columns.Left < 0 || columns.Right < 0)
            throw new ArgumentOutOfRangeException(nameof(padding), $"ZeroPadding2D padding cannot be negative; got (({rows.Top}, {rows.Bottom}), ({columns.Left}, {columns.Right})).");
        (Top, Bottom, Left, Right) = (rows.Top, rows.Bottom, columns.Left, columns.Right);
    }

    public int Top { get; }
    public int Bottom { get; }
    public int Left { get; }
    public int Right { get; }

    int height, width, channels;
    Tensor? x, y, dy, dx;
    Action<int, int, int>? forwardRange, backwardRange;

    protected override Shape Build(Shape input)
    {
        if (input.Rank != 3)
            throw new ArgumentException($"ZeroPadding2D '{Name}' needs input (height, width, channels); got {input.ToKerasString()}.");
        (height, width, channels) = (input[0], input[1], input[2]);
        return new Shape(Top + height + Bottom, Left + width + Right, channels);
    }

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        (this.x, this.y) = (x, y);
        Threading.For(x.Batch, forwardRange ??= ForwardRange);
        (this.x, this.y) = (null, null);
    }

    void ForwardRange(int part, int start, int end)
    {
        for (int n = start; n < end; n++)
            ZeroPad.Forward(x!.Sample(n), height, width, channels, Top, Bottom, Left, Right, y!.Sample(n));
    }

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        if (dx is null) return;
        (this.dy, this.dx) = (dy, dx);
        Threading.For(x.Batch, backwardRange ??= BackwardRange);
        (this.dy, this.dx) = (null, null);
    }

    void BackwardRange(int part, int start, int end)
    {
        for (int n = start; n < end; n++)
            ZeroPad.Backward(dy!.Sample(n), height, width, channels, Top, Left, Right, dx!.Sample(n));
    }

    public override JsonObject GetConfig() => new()
    {
        ["padding"] = new JsonArray(new JsonArray(Top, Bottom), new JsonArray(Left, Right)),
        ["data_format"] = "channels_last",
    };
}
