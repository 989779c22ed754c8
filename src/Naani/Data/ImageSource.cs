namespace Naani.Data;

/// Labelled images read one at a time, by index: what a BatchPipeline draws its batches from. An image
/// folder decodes a file per read; an ImageDataset copies from memory. Reads may come from several threads
/// at once, each with its own index.
public interface IImageSource
{
    /// Images available, indices [0, Count).
    int Count { get; }

    /// The shape every read produces, (H, W, C).
    Shape ImageShape { get; }

    IReadOnlyList<string> ClassNames { get; }

    /// The class index of image index.
    int GetLabel(int index);

    /// Writes image index into pixels (H * W * C values in [0, 1], NHWC order) and returns true, or returns false
    /// with reason set when that image cannot be read (a corrupt or truncated file): the pipeline leaves it out.
    bool TryRead(int index, Span<float> pixels, out string? reason);

    /// Where image index comes from, for messages (a file path, or "sample 12").
    string Describe(int index);
}

/// An in-memory ImageDataset as an image source, optionally restricted to some of its samples.
public sealed class ImageDatasetSource : IImageSource
{
    readonly ImageDataset data;
    readonly int[]? indices;

    public ImageDatasetSource(ImageDataset data, int[]? indices = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (indices is not null)
            foreach (var i in indices)
                if ((uint)i >= (uint)data.Count)
                    throw new ArgumentOutOfRangeException(nameof(indices), $"Sample {i} is outside the dataset's {data.Count:N0} samples.");
        this.data = data;
        this.indices = indices;
    }

    public int Count => indices?.Length ?? data.Count;
    public Shape ImageShape => data.ImageShape;
    public IReadOnlyList<string> ClassNames => data.ClassNames;
    public int GetLabel(int index) => data.Labels[Map(index)];

    public bool TryRead(int index, Span<float> pixels, out string? reason)
    {
        data.Images.Sample(Map(index)).CopyTo(pixels);
        reason = null;
        return true;
    }

    public string Describe(int index) => $"sample {Map(index)}";

    int Map(int index) => indices is null ? index : indices[index];
}
