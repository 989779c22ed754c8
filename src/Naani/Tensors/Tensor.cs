namespace Naani;

/// A dense float32 tensor, contiguous and row-major. Images are batch-first and channels-last
/// (N, H, W, C), as in Keras: the channel values of one pixel sit side by side, which makes the
/// im2col rows of a convolution contiguous copies and the kernel (HWIO) a plain matrix.
public sealed class Tensor
{
    public Shape Shape { get; }

    /// The backing array; exactly Shape.Size elements.
    public float[] Data { get; }

    public Tensor(Shape shape)
    {
        Shape = shape;
        Data = new float[shape.Size];
    }

    public Tensor(params int[] dims) : this(new Shape(dims)) { }

    public Tensor(Shape shape, float[] data)
    {
        if (data.Length != shape.Size)
            throw new ArgumentException($"A tensor of shape {shape} needs {shape.Size:N0} values; got {data.Length:N0}.", nameof(data));
        Shape = shape;
        Data = data;
    }

    public static Tensor FromArray(float[] data, params int[] dims) => new(new Shape(dims), data);

    public int Rank => Shape.Rank;
    public int Length => Data.Length;
    public Span<float> Span => Data;

    /// Number of samples (the first axis).
    public int Batch => Shape[0];

    /// Elements per sample: the product of all axes but the first.
    public int SampleSize => Shape.Rank == 0 ? 1 : Data.Length / Shape[0];

    public float this[params int[] index]
    {
        get => Data[Offset(index)];
        set => Data[Offset(index)] = value;
    }

    int Offset(int[] index)
    {
        if (index.Length != Shape.Rank)
            throw new ArgumentException($"Tensor of shape {Shape} indexed with {index.Length} indices.");
        int offset = 0;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)Shape[i])
                throw new IndexOutOfRangeException($"Index {index[i]} on axis {i} is outside shape {Shape}.");
            offset = offset * Shape[i] + index[i];
        }
        return offset;
    }

    /// The values of sample n.
    public Span<float> Sample(int n) => Data.AsSpan(n * SampleSize, SampleSize);

    /// A tensor with the same data viewed in another shape of the same size.
    public Tensor Reshape(params int[] dims)
    {
        var shape = new Shape(dims);
        if (shape.Size != Data.Length)
            throw new ArgumentException($"Cannot reshape {Shape} ({Data.Length:N0} values) to {shape} ({shape.Size:N0} values).");
        return new Tensor(shape, Data);
    }

    public Tensor Clone() => new(Shape, (float[])Data.Clone());

    public void Fill(float value) => Data.AsSpan().Fill(value);

    public void Clear() => Data.AsSpan().Clear();

    /// Copies samples [start, start + count) into a new tensor.
    public Tensor SliceBatch(int start, int count)
    {
        if (start < 0 || count < 0 || start + count > Batch)
            throw new ArgumentOutOfRangeException(nameof(start), $"Samples [{start}, {start + count}) are outside a batch of {Batch}.");
        var dims = Shape.ToArray();
        dims[0] = count;
        var result = new Tensor(new Shape(dims));
        Data.AsSpan(start * SampleSize, count * SampleSize).CopyTo(result.Data);
        return result;
    }

    /// Copies the listed samples, in order, into the first indices.Length samples of destination.
    public void GatherSamples(ReadOnlySpan<int> indices, Tensor destination)
    {
        int size = SampleSize;
        if (destination.SampleSize != size || destination.Batch < indices.Length)
            throw new ArgumentException($"Cannot gather {indices.Length} samples of {Shape} into {destination.Shape}.");
        for (int i = 0; i < indices.Length; i++)
            Data.AsSpan(indices[i] * size, size).CopyTo(destination.Data.AsSpan(i * size, size));
    }

    public override string ToString() => $"Tensor{Shape}";
}
