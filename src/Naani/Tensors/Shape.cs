namespace Naani;

/// An immutable list of dimensions. Layer shapes exclude the batch axis (H, W, C);
/// tensor shapes include it (N, H, W, C). Printed the Keras way: (None, 24, 24, 32).
public sealed class Shape : IEquatable<Shape>
{
    readonly int[] dims;

    public Shape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        foreach (var d in dims)
            if (d <= 0)
                throw new ArgumentException($"Every dimension must be positive; got ({string.Join(", ", dims)}).", nameof(dims));
        this.dims = (int[])dims.Clone();
    }

    public int Rank => dims.Length;
    public int this[int axis] => dims[axis];
    public int this[Index axis] => dims[axis];
    public ReadOnlySpan<int> Dims => dims;

    /// Number of elements: the product of the dimensions (1 for a scalar shape).
    public int Size
    {
        get
        {
            long size = 1;
            foreach (var d in dims) size *= d;
            if (size > Array.MaxLength)
                throw new InvalidOperationException($"Shape {this} has {size:N0} elements, more than one array can hold.");
            return (int)size;
        }
    }

    public long LongSize
    {
        get
        {
            long size = 1;
            foreach (var d in dims) size *= d;
            return size;
        }
    }

    public int[] ToArray() => (int[])dims.Clone();

    /// The shape with a batch axis in front: (H, W, C) -> (N, H, W, C).
    public Shape WithBatch(int batch) => new([batch, .. dims]);

    /// The shape without its first (batch) axis.
    public Shape WithoutBatch() => new(dims[1..]);

    public Shape WithLast(int last) => new([.. dims[..^1], last]);

    public bool Equals(Shape? other) => other is not null && dims.AsSpan().SequenceEqual(other.dims);
    public override bool Equals(object? obj) => Equals(obj as Shape);
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in dims) h.Add(d);
        return h.ToHashCode();
    }
    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(Shape? a, Shape? b) => !(a == b);

    /// (2, 3) for a full shape.
    public override string ToString() => "(" + string.Join(", ", dims) + (dims.Length == 1 ? ",)" : ")");

    /// Keras's way of printing a per-sample shape with the batch axis unknown: (None, 24, 24, 32).
    public string ToKerasString() => "(None" + string.Concat(dims.Select(d => ", " + d)) + ")";
}
