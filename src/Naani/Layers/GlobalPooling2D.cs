using System.Text.Json.Nodes;
using Naani.Kernels;

namespace Naani.Layers;

/// Shared shape logic of GlobalAveragePooling2D and GlobalMaxPooling2D: (H, W, C) -> (C), or (1, 1, C) with keepDims,
/// as Keras's keepdims.
public abstract class GlobalPooling2D : Layer
{
    protected GlobalPooling2D(bool keepDims, string? name) : base(name) => KeepDims = keepDims;

    public bool KeepDims { get; }
    protected int Channels { get; private set; }

    protected override Shape Build(Shape input)
    {
        if (input.Rank != 3)
            throw new ArgumentException($"{TypeName} '{Name}' needs input (height, width, channels); got {input.ToKerasString()}.");
        Channels = input[2];
        return KeepDims ? new Shape(1, 1, Channels) : new Shape(Channels);
    }

    public override JsonObject GetConfig() => new() { ["data_format"] = "channels_last", ["keepdims"] = KeepDims };

    // The batch being processed, held in fields so the per-thread bodies are delegates made once.
    protected Tensor? X, Y, DY, DX;
    protected bool Training;
    Action<int, int, int>? forwardRange, backwardRange;

    public sealed override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        (X, Y, Training) = (x, y, training);
        PrepareForward(x, training);
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

    protected virtual void PrepareForward(Tensor x, bool training) { }

    protected abstract void ForwardImages(int part, int start, int end);

    protected abstract void BackwardImages(int part, int start, int end);

    protected static Span<float> Sample(Tensor t, int n) => t.Data.AsSpan(n * t.SampleSize, t.SampleSize);
}

/// The mean of each channel over the image: y[n, c] = (1/(H*W)) sum_{h,w} x[n, h, w, c].
public sealed class GlobalAveragePooling2D(bool keepDims = false, string? name = null) : GlobalPooling2D(keepDims, name)
{
    protected override void ForwardImages(int part, int start, int end)
    {
        for (int n = start; n < end; n++) GlobalPooling.AverageForward(Sample(X!, n), Channels, Sample(Y!, n));
    }

    protected override void BackwardImages(int part, int start, int end)
    {
        for (int n = start; n < end; n++) GlobalPooling.AverageBackward(Sample(DY!, n), Channels, Sample(DX!, n));
    }
}

/// The largest value of each channel over the image: y[n, c] = max_{h,w} x[n, h, w, c]. The gradient goes to the first
/// maximum in scan order, as MaxPooling2D's does (TensorFlow's reduce_max would split it among exact ties).
public sealed class GlobalMaxPooling2D(bool keepDims = false, string? name = null) : GlobalPooling2D(keepDims, name)
{
    // Which pixel each output came from, recorded by a training forward pass for Backward.
    int[] argmax = [];

    protected override void PrepareForward(Tensor x, bool training)
    {
        if (training && argmax.Length < x.Batch * Channels) argmax = new int[x.Batch * Channels];
    }

    protected override void ForwardImages(int part, int start, int end)
    {
        for (int n = start; n < end; n++)
            GlobalPooling.MaxForward(Sample(X!, n), Channels, Sample(Y!, n), Training ? argmax.AsSpan(n * Channels, Channels) : default);
    }

    protected override void BackwardImages(int part, int start, int end)
    {
        for (int n = start; n < end; n++)
            GlobalPooling.MaxBackward(argmax.AsSpan(n * Channels, Channels), Sample(DY!, n), Channels, Sample(DX!, n));
    }
}
