using System.Numerics;
using System.Runtime.Intrinsics;

namespace Naani.Kernels;

// Element-wise activations on rows of a (rows, cols) matrix; softmax works along each row.
// Backward takes the forward OUTPUT y (every supported activation's derivative is a function of y)
// and turns dy (dL/dy) into dz (dL/dz) in place.
public static class Activations
{
    /// y[r, c] = f(y[r, c] + bias[c]) for every row r; bias may be empty. One pass over y for relu and linear.
    public static void AddBiasAndApply(Span<float> y, int cols, ReadOnlySpan<float> bias, Activation activation)
    {
        if (cols <= 0 || y.Length % cols != 0)
            throw new ArgumentException($"A buffer of {y.Length} values is not a whole number of rows of {cols}.");
        if (!bias.IsEmpty && bias.Length != cols)
            throw new ArgumentException($"Bias has {bias.Length} values; the rows have {cols}.");
        if (bias.IsEmpty)
        {
            Apply(y, cols, activation);
            return;
        }
        if (activation is Activation.Relu or Activation.Linear && Vector256.IsHardwareAccelerated && (cols % 16 == 0 || TiledLength(cols) <= MaxTile))
        {
            BiasReluTiled(y, cols, bias, activation == Activation.Relu);
            return;
        }
        if (activation is Activation.Relu or Activation.Linear)
        {
            bool relu = activation == Activation.Relu;
            for (int r = 0; r < y.Length; r += cols)
                for (int j = 0; j < cols; j++)
                {
                    float v = y[r + j] + bias[j];
                    y[r + j] = relu && v < 0 ? 0 : v;
                }
            return;
        }
        int rows = y.Length / cols;
        for (int r = 0; r < rows; r++)
            AddInPlace(y.Slice(r * cols, cols), bias);
        Apply(y, cols, activation);
    }

    // The bias pattern repeats every lcm(cols, 16) values, a whole number of vectors, so the buffer is
    // processed flat against a bias tiled to that length: the bias itself when cols is a multiple of 16,
    // else a copy repeated (10 filters: 160 values) as long as it stays small.
    const int MaxTile = 1024;

    static int TiledLength(int cols)
    {
        int a = cols, b = 16;
        while (b != 0) (a, b) = (b, a % b);
        return cols / a * 16;
    }

    static unsafe void BiasReluTiled(Span<float> y, int cols, ReadOnlySpan<float> bias, bool relu)
    {
        int tile = TiledLength(cols);
        float* copy = stackalloc float[cols % 16 == 0 ? 0 : tile];
        for (int t = 0; t < tile && cols % 16 != 0; t++) copy[t] = bias[t % cols];
        fixed (float* py = y) fixed (float* pb = bias)
        {
            float* tiled = cols % 16 == 0 ? pb : copy;
            long n = y.Length, i = 0;
            // A tile is a whole number of 16-float vectors, or of 8-float ones without AVX-512.
            if (Vector512.IsHardwareAccelerated)
                for (; i + tile <= n; i += tile)
                    for (int t = 0; t < tile; t += 16)
                    {
                        var v = Vector512.Load(py + i + t) + Vector512.Load(tiled + t);
                        if (relu) v = Vector512.Max(v, Vector512<float>.Zero);
                        v.Store(py + i + t);
                    }
            else
                for (; i + tile <= n; i += tile)
                    for (int t = 0; t < tile; t += 8)
                    {
                        var v = Vector256.Load(py + i + t) + Vector256.Load(tiled + t);
                        if (relu) v = Vector256.Max(v, Vector256<float>.Zero);
                        v.Store(py + i + t);
                    }
            for (int t = 0; i < n; i++, t++)   // the last rows, fewer than a tile
            {
                float v = py[i] + tiled[t];
                py[i] = relu && v < 0 ? 0 : v;
            }
        }
    }

    public static void Apply(Span<float> y, int cols, Activation activation)
    {
        switch (activation)
        {
            case Activation.Linear: break;
            case Activation.Relu: Relu(y); break;
            case Activation.Sigmoid:
                for (int i = 0; i < y.Length; i++) y[i] = Sigmoid(y[i]);
                break;
            case Activation.Tanh:
                for (int i = 0; i < y.Length; i++) y[i] = MathF.Tanh(y[i]);
                break;
            case Activation.Softmax:
                for (int r = 0; r < y.Length / cols; r++) Softmax(y.Slice(r * cols, cols));
                break;
            default: throw new ArgumentOutOfRangeException(nameof(activation));
        }
    }

    /// dy *= f'(z), with f' written in terms of the forward output y = f(z).
    public static void Backward(ReadOnlySpan<float> y, Span<float> dy, int cols, Activation activation)
    {
        switch (activation)
        {
            case Activation.Linear: break;
            case Activation.Relu: ReluBackward(y, dy); break;
            case Activation.Sigmoid:
                // y = 1 / (1 + e^-z)  =>  dy/dz = y (1 - y)
                for (int i = 0; i < dy.Length; i++) dy[i] *= y[i] * (1f - y[i]);
                break;
            case Activation.Tanh:
                // y = tanh z  =>  dy/dz = 1 - y^2
                for (int i = 0; i < dy.Length; i++) dy[i] *= 1f - y[i] * y[i];
                break;
            case Activation.Softmax:
                // y_i = e^z_i / sum_j e^z_j  =>  dz_i = y_i (dy_i - sum_j dy_j y_j)
                for (int r = 0; r < dy.Length / cols; r++)
                {
                    var yr = y.Slice(r * cols, cols);
                    var dr = dy.Slice(r * cols, cols);
                    float dot = 0;
                    for (int i = 0; i < cols; i++) dot += dr[i] * yr[i];
                    for (int i = 0; i < cols; i++) dr[i] = yr[i] * (dr[i] - dot);
                }
                break;
            default: throw new ArgumentOutOfRangeException(nameof(activation));
        }
    }

    public static float Sigmoid(float z) => z >= 0 ? 1f / (1f + MathF.Exp(-z)) : MathF.Exp(z) / (1f + MathF.Exp(z));

    /// Numerically stable softmax of one row, in place (the row's max is subtracted first).
    public static void Softmax(Span<float> row)
    {
        float max = float.NegativeInfinity;
        foreach (var v in row) max = MathF.Max(max, v);
        float sum = 0;
        for (int i = 0; i < row.Length; i++)
        {
            row[i] = MathF.Exp(row[i] - max);
            sum += row[i];
        }
        float inv = 1f / sum;
        for (int i = 0; i < row.Length; i++) row[i] *= inv;
    }

    public static void AddInPlace(Span<float> y, ReadOnlySpan<float> x)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= y.Length - 16; i += 16)
                (Vector512.Create(y.Slice(i, 16)) + Vector512.Create(x.Slice(i, 16))).CopyTo(y.Slice(i, 16));
        for (; i <= y.Length - Vector<float>.Count; i += Vector<float>.Count)
            (new Vector<float>(y.Slice(i)) + new Vector<float>(x.Slice(i))).CopyTo(y.Slice(i));
        for (; i < y.Length; i++) y[i] += x[i];
    }

    /// values[i] += addend (offsets moved by a constant: a band's argmax to its place in the image).
    public static void AddInPlace(Span<int> values, int addend)
    {
        var step = new Vector<int>(addend);
        int i = 0;
        for (; i <= values.Length - Vector<int>.Count; i += Vector<int>.Count)
            (new Vector<int>(values.Slice(i)) + step).CopyTo(values.Slice(i));
        for (; i < values.Length; i++) values[i] += addend;
    }

    /// y = x * scale.
    public static void Scale(ReadOnlySpan<float> x, float scale, Span<float> y)
    {
        int i = 0;
        var s = new Vector<float>(scale);
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            (new Vector<float>(x.Slice(i)) * s).CopyTo(y.Slice(i));
        for (; i < x.Length; i++) y[i] = x[i] * scale;
    }

    public static void Relu(Span<float> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= y.Length - 16; i += 16)
                Vector512.Max(Vector512.Create(y.Slice(i, 16)), Vector512<float>.Zero).CopyTo(y.Slice(i, 16));
        for (; i <= y.Length - Vector<float>.Count; i += Vector<float>.Count)
            Vector.Max(new Vector<float>(y.Slice(i)), Vector<float>.Zero).CopyTo(y.Slice(i));
        for (; i < y.Length; i++) y[i] = MathF.Max(y[i], 0f);
    }

    // y = max(z, 0)  =>  dz = dy where y > 0, else 0
    public static void ReluBackward(ReadOnlySpan<float> y, Span<float> dy)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= dy.Length - 16; i += 16)
            {
                var mask = Vector512.GreaterThan(Vector512.Create(y.Slice(i, 16)), Vector512<float>.Zero);
                Vector512.BitwiseAnd(Vector512.Create(dy.Slice(i, 16)), mask).CopyTo(dy.Slice(i, 16));
            }
        for (; i <= dy.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            var mask = Vector.GreaterThan(new Vector<float>(y.Slice(i)), Vector<float>.Zero);
            Vector.BitwiseAnd(new Vector<float>(dy.Slice(i)), Vector.AsVectorSingle(mask)).CopyTo(dy.Slice(i));
        }
        for (; i < dy.Length; i++) if (!(y[i] > 0)) dy[i] = 0;
    }

    /// sums[c] (+)= sum over rows of x[r, c]: the bias gradient.
    public static unsafe void SumRows(ReadOnlySpan<float> x, int cols, Span<float> sums, bool accumulate)
    {
        if (!accumulate) sums.Clear();
        int tile = TiledLength(cols);
        if (tile > MaxTile || !Vector256.IsHardwareAccelerated)
        {
            for (int r = 0; r < x.Length / cols; r++)
                AddInPlace(sums, x.Slice(r * cols, cols));
            return;
        }
        // Sum whole tiles of lcm(cols, 16) values as vectors (one flat loop, no call per row: a first layer's
        // bias gradient sums half a million rows of 32), then fold the tile into the columns.
        float* acc = stackalloc float[tile];
        new Span<float>(acc, tile).Clear();
        long n = x.Length / cols * (long)cols, i = 0;
        fixed (float* px = x)
        {
            if (Vector512.IsHardwareAccelerated)
                for (; i + tile <= n; i += tile)
                    for (int t = 0; t < tile; t += 16)
                        (Vector512.Load(acc + t) + Vector512.Load(px + i + t)).Store(acc + t);
            else
                for (; i + tile <= n; i += tile)
                    for (int t = 0; t < tile; t += 8)
                        (Vector256.Load(acc + t) + Vector256.Load(px + i + t)).Store(acc + t);
            for (int t = 0; i < n; i++, t++) acc[t] += px[i];
        }
        for (int t = 0; t < tile; t++) sums[t % cols] += acc[t];
    }
}
