using System.Text.Json.Nodes;
using Naani.Kernels;

namespace Naani.Layers;

/// Shared shape logic of MaxPooling2D and AveragePooling2D. As in Keras, strides default to the pool size.
public abstract class Pooling2D : Layer
{
    protected Pooling2D((int Height, int Width) poolSize, (int Height, int Width)? strides, Padding padding, string? name) : base(name)
    {
        if (poolSize.Height <= 0 || poolSize.Width <= 0) throw new ArgumentOutOfRangeException(nameof(poolSize), $"Pool size must be positive; got {poolSize}.");
        var s = strides ?? poolSize;
        if (s.Height <= 0 || s.Width <= 0) throw new ArgumentOutOfRangeException(nameof(strides), $"Pooling strides must be positive; got {s}.");
        PoolSize = poolSize;
        Strides = s;
        Padding = padding;
    }

    public (int Height, int Width) PoolSize { get; }
    public (int Height, int Width) Strides { get; }
    public Padding Padding { get; }
    public ConvGeometry Geometry { get; private set; }

    protected override Shape Build(Shape input)
    {
        if (input.Rank != 3)
            throw new ArgumentException($"{TypeName} '{Name}' needs input (height, width, channels); got {input.ToKerasString()}.");
        Geometry = ConvGeometry.Create(input[0], input[1], input[2], PoolSize.Height, PoolSize.Width, Strides.Height, Strides.Width, Padding);
        if (Geometry.OutHeight <= 0 || Geometry.OutWidth <= 0)
            throw new ArgumentException($"{TypeName} '{Name}': a {PoolSize.Height}x{PoolSize.Width} pool with 'valid' padding does not fit input {input.ToKerasString()}.");
        return new Shape(Geometry.OutHeight, Geometry.OutWidth, input[2]);
    }

    public override JsonObject GetConfig() => new()
    {
        ["pool_size"] = new JsonArray(PoolSize.Height, PoolSize.Width),
        ["strides"] = new JsonArray(Strides.Height, Strides.Width),
        ["padding"] = Padding == Padding.Same ? "same" : "valid",
    };

    /// Runs body(n, x_n, y_n) for every image, split across threads.
    protected void ForEachImage(Tensor x, Tensor y, Action<int, int, int> body) => Threading.For(x.Batch, body);
}

/// Keeps the largest value of each window: the seed's 4x4 example [[1,3,5,7],[4,5,11,3],[4,1,21,6],[13,15,1,2]] gives [[5,11],[15,21]].
public sealed class MaxPooling2D : Pooling2D
{
    public MaxPooling2D((int Height, int Width) poolSize, (int Height, int Width)? strides = null, Padding padding = Padding.Valid, string? name = null)
        : base(poolSize, strides, padding, name) { }

    public MaxPooling2D(int poolSize = 2, int? strides = null, Padding padding = Padding.Valid, string? name = null)
        : base((poolSize, poolSize), strides is int s ? (s, s) : null, padding, name) { }

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        var g = Geometry;
        int inSize = g.InputSize, outSize = y.SampleSize;
        ForEachImage(x, y, (_, start, end) =>
        {
            for (int n = start; n < end; n++)
                Pooling.MaxForward(g, x.Data.AsSpan(n * inSize, inSize), y.Data.AsSpan(n * outSize, outSize));
        });
    }

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        if (dx is null) return;
        var g = Geometry;
        int inSize = g.InputSize, outSize = y.SampleSize;
        ForEachImage(x, y, (_, start, end) =>
        {
            for (int n = start; n < end; n++)
                Pooling.MaxBackward(g, x.Data.AsSpan(n * inSize, inSize), y.Data.AsSpan(n * outSize, outSize),
                    dy.Data.AsSpan(n * outSize, outSize), dx.Data.AsSpan(n * inSize, inSize));
        });
    }
}

/// Averages each window (over its in-bounds values when padding is 'same', as Keras does).
public sealed class AveragePooling2D : Pooling2D
{
    public AveragePooling2D((int Height, int Width) poolSize, (int Height, int Width)? strides = null, Padding padding = Padding.Valid, string? name = null)
        : base(poolSize, strides, padding, name) { }

    public AveragePooling2D(int poolSize = 2, int? strides = null, Padding padding = Padding.Valid, string? name = null)
        : base((poolSize, poolSize), strides is int s ? (s, s) : null, padding, name) { }

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        var g = Geometry;
        int inSize = g.InputSize, outSize = y.SampleSize;
        ForEachImage(x, y, (_, start, end) =>
        {
            for (int n = start; n < end; n++)
                Pooling.AverageForward(g, x.Data.AsSpan(n * inSize, inSize), y.Data.AsSpan(n * outSize, outSize));
        });
    }

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        if (dx is null) return;
        var g = Geometry;
        int inSize = g.InputSize, outSize = y.SampleSize;
        ForEachImage(x, y, (_, start, end) =>
        {
            for (int n = start; n < end; n++)
                Pooling.AverageBackward(g, dy.Data.AsSpan(n * outSize, outSize), dx.Data.AsSpan(n * inSize, inSize));
        });
    }
}
