namespace Naani.Layers;

/// A named weight of a layer (e.g. conv2d/kernel) with its gradient of the same shape.
/// Non-trainable parameters (such as a normalization layer's moving statistics) have no gradient use.
public sealed class Parameter(Layer owner, string name, Tensor value, bool trainable)
{
    public Layer Owner { get; } = owner;
    public string Name { get; } = name;
    public string FullName => $"{Owner.Name}/{Name}";
    public Tensor Value { get; } = value;
    readonly Tensor gradient = new(value.Shape);
    bool gradientStale;

    /// The gradient of the loss with respect to Value. After ResetGradient it reads as zeros: it is cleared when
    /// first used, unless a backward pass has written it whole first (GradientForUpdate).
    public Tensor Gradient
    {
        get
        {
            if (gradientStale)
            {
                gradient.Clear();
                gradientStale = false;
            }
            return gradient;
        }
    }

    /// Starts a step: the gradient holds nothing yet. Clearing is left to its first use, so that a layer which
    /// writes its whole contribution at once (a dense layer's weight gradient, one product) writes it instead of
    /// adding it to zeros: a pass over the gradient saved, and a read of it (76 MB each for cats-dogs-150's dense
    /// layer).
    public void ResetGradient() => gradientStale = true;

    /// The gradient's values for a backward pass about to add its contribution, and whether to add it: false when
    /// the gradient holds nothing this step, and the caller must then write every value.
    public (float[] Data, bool Accumulate) GradientForUpdate()
    {
        bool accumulate = !gradientStale;
        gradientStale = false;
        return (gradient.Data, accumulate);
    }

    /// Whether an optimizer updates it: its own flag and its layer's.
    public bool Trainable => trainable && Owner.Trainable;
    internal bool TrainableByKind => trainable;

    public Shape Shape => Value.Shape;
    public int Size => Value.Length;
}
