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

    // The batch being processed, held in fields so the per-thread bodies are delegates made once.
    protected Tensor? X, Y, DY, DX;
    protected bool Training;
    Action<int, int, int>? forwardRange, backwardRange;

    public sealed override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        (X, Y, Training) = (x, y, training);
        PrepareForward(x, y, training);
        Threading.For(x.Batch, forwardRange ??= ForwardImages);
        (X, Y) = (null, null);
    }

    public sealed override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        if (dx is null) return;
        (X, Y, DY, DX) = (x, y, dy, dx);
        Threading.For(x.Batch, backwardRange ??= BackwardImages);
        (X, Y, DY, DX) = (null, null, null, null);
    }

    protected virtual void PrepareForward(Tensor x, Tensor y, bool training) { }

    /// Forward for images [start, end) of the current batch (X, Y), on one thread.
    protected abstract void ForwardImages(int part, int start, int end);

    /// Backward for images [start, end) of the current batch (X, Y, DY, DX), on one thread.
    protected abstract void BackwardImages(int part, int start, int end);

    protected Span<float> Image(Tensor t, int n) => t.Data.AsSpan(n * t.SampleSize, t.SampleSize);
}

/// Keeps the largest value of each window: the seed's 4x4 example [[1,3,5,7],[4,5,11,3],[4,1,21,6],[13,15,1,2]] gives [[5,11],[15,21]].
public sealed class MaxPooling2D : Pooling2D
{
    public MaxPooling2D((int Height, int Width) poolSize, (int Height, int Width)? strides = null, Padding padding = Padding.Valid, string? name = null)
        : base(poolSize, strides, padding, name) { }

    public MaxPooling2D(int poolSize = 2, int? strides = null, Padding padding = Padding.Valid, string? name = null)
        : base((poolSize, poolSize), strides is int s ? (s, s) : null, padding, name) { }

    // Where each output came from, recorded by a training forward pass for Backward.
    int[] argmax = [];

    protected override void PrepareForward(Tensor x, Tensor y, bool training)
    {
        if (training) ArgmaxForTraining(y.Length);
    }

    /// The argmax a training pass records, for `values` outputs (grown to hold them): each output's input offset
    /// within its image, written by ForwardImages or by a convolution that computes this pooling (Conv2D.ForwardPooled).
    internal int[] ArgmaxForTraining(int values)
    {
        if (argmax.Length < values) argmax = new int[values];
        return argmax;
    }

    /// The argmax the last training pass recorded, for a backward pass done elsewhere (Conv2D.BackwardPooled).
    internal int[] RecordedArgmax(int values) => argmax.Length >= values ? argmax
        : throw new InvalidOperationException($"MaxPooling2D '{Name}': no training forward pass has recorded where the maxima of {values:N0} outputs came from.");

    protected override void ForwardImages(int part, int start, int end)
    {
        int outSize = Y!.SampleSize;
        for (int n = start; n < end; n++)
            Pooling.MaxForward(Geometry, Image(X!, n), Image(Y, n), Training ? argmax.AsSpan(n * outSize, outSize) : default);
    }

    /// Set by the model's graph for a pooling that reads a ReLU convolution and nothing else: the backward
    /// pass also zeroes the gradient where the pooled output is 0, which is the ReLU's derivative at each
    /// window's maximum, so the convolution need not apply it (Conv2D.ReluAppliedByNextLayer).
    internal bool MasksGradientByOutput { get; set; }

    protected override void BackwardImages(int part, int start, int end)
    {
        int outSize = Y!.SampleSize;
        for (int n = start; n < end; n++)
        {
            if (MasksGradientByOutput) Activations.ReluBackward(Image(Y, n), Image(DY!, n));
            Pooling.MaxBackward(Geometry, argmax.AsSpan(n * outSize, outSize), Image(DY!, n), Image(DX!, n));
        }
    }
}

/// Averages each window (over its in-bounds values when padding is 'same', as Keras does).
public sealed class AveragePooling2D : Pooling2D
{
    public AveragePooling2D((int Height, int Width) poolSize, (int Height, int Width)? strides = null, Padding padding = Padding.Valid, string? name = null)
        : base(poolSize, strides, padding, name) { }

    public AveragePooling2D(int poolSize = 2, int? strides = null, Padding padding = Padding.Valid, string? name = null)
        : base((poolSize, poolSize), strides is int s ? (s, s) : null, padding, name) { }

    protected override void ForwardImages(int part, int start, int end)
    {
        for (int n = start; n < end; n++)
            Pooling.AverageForward(Geometry, Image(X!, n), Image(Y!, n));
    }

    protected override void BackwardImages(int part, int start, int end)
    {
        for (int n = start; n < end; n++)
            Pooling.AverageBackward(Geometry, Image(DY!, n), Image(DX!, n));
    }
}
