using System.Runtime.InteropServices;

namespace Naani.Data;

/// Labelled images in memory: Images is (N, H, W, C) float32 with pixels scaled to [0, 1] (pixel / 255),
/// Labels[n] is the class index of image n, ClassNames[k] the name of class k.
public sealed class ImageDataset
{
    public Tensor Images { get; }
    public int[] Labels { get; }
    public string[] ClassNames { get; }

    public int Count => Labels.Length;
    public int NumClasses => ClassNames.Length;

    /// The shape of one image, (H, W, C).
    public Shape ImageShape => Images.Shape.WithoutBatch();

    public ImageDataset(Tensor images, int[] labels, string[] classNames)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (images.Rank != 4)
            throw new ArgumentException($"Images must be (N, H, W, C); got a tensor of shape {images.Shape}.", nameof(images));
        if (images.Batch != labels.Length)
            throw new ArgumentException($"There are {images.Batch:N0} images but {labels.Length:N0} labels.", nameof(labels));
        if (classNames.Length == 0)
            throw new ArgumentException("A dataset needs at least one class name.", nameof(classNames));
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classNames.Length)
                throw new ArgumentException(
                    $"Label {i} is {labels[i]}; expected a class index in [0, {classNames.Length}) for the {classNames.Length} classes.", nameof(labels));
        Images = images;
        Labels = labels;
        ClassNames = classNames;
    }

    /// (N, NumClasses) with a 1 in column Labels[n] of row n: the target of a softmax + categorical cross-entropy.
    public Tensor OneHotLabels()
    {
        var y = new Tensor(Count, NumClasses);
        for (int n = 0; n < Count; n++)
            y.Data[n * NumClasses + Labels[n]] = 1f;
        return y;
    }

    /// (N) holding each class index as a float: the target of a sparse categorical cross-entropy.
    public Tensor SparseLabels()
    {
        var y = new Tensor(Count);
        for (int n = 0; n < Count; n++)
            y.Data[n] = Labels[n];
        return y;
    }

    /// Samples [start, start + count), copied.
    public ImageDataset Subset(int start, int count)
    {
        if (start < 0 || count <= 0 || (long)start + count > Count)
            throw new ArgumentOutOfRangeException(nameof(start),
                $"Subset [{start}, {(long)start + count}) is not a non-empty range inside the {Count:N0} samples.");
        return new ImageDataset(Images.SliceBatch(start, count), Labels.AsSpan(start, count).ToArray(), ClassNames);
    }

    /// The samples whose label passes keepLabel (called once per class index, not per sample), in their original order.
    /// With relabel the kept classes are renumbered 0..k-1 in their original order and ClassNames shrinks to match
    /// (what a transfer-learning head trained on those classes alone expects); without it labels and names are unchanged.
    public ImageDataset Where(Func<int, bool> keepLabel, bool relabel)
    {
        ArgumentNullException.ThrowIfNull(keepLabel);
        var newLabel = new int[NumClasses];
        var keptNames = new List<string>();
        for (int c = 0; c < NumClasses; c++)
        {
            if (keepLabel(c))
            {
                newLabel[c] = relabel ? keptNames.Count : c;
                keptNames.Add(ClassNames[c]);
            }
            else
            {
                newLabel[c] = -1;
            }
        }
        if (keptNames.Count == 0)
            throw new ArgumentException($"The filter keeps none of the {NumClasses} classes ({string.Join(", ", ClassNames)}).", nameof(keepLabel));

        var indices = new List<int>();
        for (int n = 0; n < Count; n++)
            if (newLabel[Labels[n]] >= 0)
                indices.Add(n);
        if (indices.Count == 0)
            throw new ArgumentException($"The filter keeps classes {string.Join(", ", keptNames)}, but no sample has one of them.", nameof(keepLabel));

        var dims = Images.Shape.ToArray();
        dims[0] = indices.Count;
        var images = new Tensor(new Shape(dims));
        Images.GatherSamples(CollectionsMarshal.AsSpan(indices), images);
        var labels = new int[indices.Count];
        for (int i = 0; i < labels.Length; i++)
            labels[i] = newLabel[Labels[indices[i]]];
        return new ImageDataset(images, labels, relabel ? [.. keptNames] : ClassNames);
    }

    public override string ToString() => $"ImageDataset({Count:N0} images of {ImageShape}, {NumClasses} classes)";
}
