namespace Naani.Layers;

/// A named weight of a layer (e.g. conv2d/kernel) with its gradient of the same shape.
/// Non-trainable parameters (such as a normalization layer's moving statistics) have no gradient use.
public sealed class Parameter(Layer owner, string name, Tensor value, bool trainable)
{
    public Layer Owner { get; } = owner;
    public string Name { get; } = name;
    public string FullName => $"{Owner.Name}/{Name}";
    public Tensor Value { get; } = value;
    public Tensor Gradient { get; } = new(value.Shape);

    /// Whether an optimizer updates it: its own flag and its layer's.
    public bool Trainable => trainable && Owner.Trainable;
    internal bool TrainableByKind => trainable;

    public Shape Shape => Value.Shape;
    public int Size => Value.Length;
}
