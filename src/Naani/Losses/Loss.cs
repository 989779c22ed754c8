using Naani.Kernels;

namespace Naani.Losses;

/// A loss reduced as Keras's "sum over batch size": the mean over samples of each sample's loss.
/// Compute returns that mean and writes dL/dyPred into grad. When the model's output activation
/// fuses with the loss (softmax + categorical, sigmoid + binary), grad is dL/dz for the
/// pre-activation z instead: (p - y) / N, which is exact and stable where -y/p would not be.
public abstract class Loss
{
    /// Keras's clipping constant for probabilities.
    public const float Epsilon = 1e-7f;

    public abstract string Name { get; }

    /// Whether the gradient can be taken straight to the pre-activation of this output activation.
    public virtual bool FusesWith(Activation activation) => false;

    /// Mean loss over the batch; grad (same shape as yPred, may be null) receives the gradient.
    public abstract double Compute(Tensor yPred, Tensor yTrue, Tensor? grad, bool fused = false);

    public static Loss Parse(string name) => name.ToLowerInvariant() switch
    {
        "binary_crossentropy" => new BinaryCrossEntropy(),
        "categorical_crossentropy" => new CategoricalCrossEntropy(),
        "sparse_categorical_crossentropy" => new SparseCategoricalCrossEntropy(),
        "mean_squared_error" or "mse" => new MeanSquaredError(),
        _ => throw new ArgumentException($"Unknown loss '{name}'; expected binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy or mean_squared_error."),
    };

    protected static void CheckSameShape(Tensor yPred, Tensor yTrue, string loss)
    {
        if (yPred.Shape != yTrue.Shape)
            throw new ArgumentException($"{loss}: predictions have shape {yPred.Shape} but labels have shape {yTrue.Shape}. " +
                "One-hot labels must match the output; use sparse_categorical_crossentropy for class indices.");
    }
}

/// -mean over units of [y log p + (1 - y) log(1 - p)], with p clipped to [eps, 1 - eps] (or from logits, stably).
public sealed class BinaryCrossEntropy(bool fromLogits = false) : Loss
{
    public bool FromLogits { get; } = fromLogits;
    public override string Name => "binary_crossentropy";
    public override bool FusesWith(Activation activation) => !FromLogits && activation == Activation.Sigmoid;

    public override double Compute(Tensor yPred, Tensor yTrue, Tensor? grad, bool fused = false)
    {
        CheckSameShape(yPred, yTrue, Name);
        int n = yPred.Batch;
        float scale = 1f / yPred.Length;   // 1 / (N * units): mean over units, then over the batch
        double total = 0;
        var p = yPred.Data;
        var y = yTrue.Data;
        for (int i = 0; i < p.Length; i++)
        {
            if (FromLogits)
            {
                // loss = max(z, 0) - z y + log(1 + e^-|z|);  dL/dz = sigmoid(z) - y
                float z = p[i];
                total += Math.Max(z, 0) - z * y[i] + Math.Log(1 + Math.Exp(-Math.Abs(z)));
                if (grad is not null) grad.Data[i] = (Activations.Sigmoid(z) - y[i]) * scale;
            }
            else
            {
                float pc = Math.Clamp(p[i], Epsilon, 1 - Epsilon);
                total -= y[i] * Math.Log(pc) + (1 - y[i]) * Math.Log(1 - pc);
                // Where p was clipped the loss does not change with p, so its gradient is 0, as Keras's clip gives
                // (TensorFlow's clip_by_value passes the gradient only inside [eps, 1 - eps]).
                if (grad is not null)
                    grad.Data[i] = fused ? (p[i] - y[i]) * scale
                        : p[i] < Epsilon || p[i] > 1 - Epsilon ? 0 : (pc - y[i]) / (pc * (1 - pc)) * scale;
            }
        }
        return total / p.Length;
    }
}

/// -sum_c y_c log p_c per sample, p normalized to sum 1 and clipped to [eps, 1 - eps] as Keras does.
public sealed class CategoricalCrossEntropy(bool fromLogits = false) : Loss
{
    public bool FromLogits { get; } = fromLogits;
    public override string Name => "categorical_crossentropy";
    public override bool FusesWith(Activation activation) => !FromLogits && activation == Activation.Softmax;

    public override double Compute(Tensor yPred, Tensor yTrue, Tensor? grad, bool fused = false)
    {
        CheckSameShape(yPred, yTrue, Name);
        return CrossEntropy.Rows(yPred.Data, yPred.Batch, yPred.SampleSize, yTrue.Data, sparse: false, grad?.Data, fused, FromLogits);
    }
}

/// Categorical cross-entropy with labels given as class indices (shape (N) or (N, 1)).
public sealed class SparseCategoricalCrossEntropy(bool fromLogits = false) : Loss
{
    public bool FromLogits { get; } = fromLogits;
    public override string Name => "sparse_categorical_crossentropy";
    public override bool FusesWith(Activation activation) => !FromLogits && activation == Activation.Softmax;

    public override double Compute(Tensor yPred, Tensor yTrue, Tensor? grad, bool fused = false)
    {
        int n = yPred.Batch, classes = yPred.SampleSize;
        if (yTrue.Length != n)
            throw new ArgumentException($"{Name}: expected one class index per sample ({n}); labels have shape {yTrue.Shape}.");
        for (int r = 0; r < n; r++)
        {
            float label = yTrue.Data[r];
            int c = (int)label;
            if (c != label || (uint)c >= (uint)classes)
                throw new ArgumentException($"{Name}: label {label} of sample {r} is not a class index in [0, {classes}).");
        }
        return CrossEntropy.Rows(yPred.Data, n, classes, yTrue.Data, sparse: true, grad?.Data, fused, FromLogits);
    }
}

static class CrossEntropy
{
    /// labels: one-hot rows (N, classes), or one class index per sample when sparse.
    public static double Rows(float[] p, int n, int classes, float[] labels, bool sparse, float[]? grad, bool fused, bool fromLogits)
    {
        double total = 0;
        float invN = 1f / n;
        Span<float> prob = classes <= 1024 ? stackalloc float[classes] : new float[classes];
        for (int r = 0; r < n; r++)
        {
            var row = p.AsSpan(r * classes, classes);
            int label = sparse ? (int)labels[r] : -1;
            var oneHotRow = sparse ? default : labels.AsSpan(r * classes, classes);
            float ySum = 0;
            for (int c = 0; c < classes; c++) ySum += sparse ? (c == label ? 1 : 0) : oneHotRow[c];
            if (fromLogits)
            {
                // p = softmax(z);  loss = -sum y log p;  dL/dz = p sum(y) - y  (= p - y for one-hot y)
                row.CopyTo(prob);
                Activations.Softmax(prob);
            }
            float sum = 0;
            if (!fromLogits)
                for (int c = 0; c < classes; c++) sum += row[c];
            for (int c = 0; c < classes; c++)
            {
                float y = sparse ? (c == label ? 1 : 0) : oneHotRow[c];
                if (fromLogits)
                {
                    if (y != 0) total -= y * Math.Log(Math.Max(prob[c], 1e-30f));
                    if (grad is not null) grad[r * classes + c] = (prob[c] * ySum - y) * invN;
                    continue;
                }
                // loss = -sum_c y_c log(p_c / s) with s = sum_c p_c (clipped as Keras)  =>  dL/dp_c = -y_c / p_c + sum(y) / s
                float pc = Math.Clamp(row[c] / sum, Loss.Epsilon, 1 - Loss.Epsilon);
                if (y != 0) total -= y * Math.Log(pc);
                if (grad is not null)
                    grad[r * classes + c] = fused ? (row[c] - y) * invN : (-y / (pc * sum) + ySum / sum) * invN;
            }
        }
        return total / n;
    }
}

/// mean over units of (p - y)^2.
public sealed class MeanSquaredError : Loss
{
    public override string Name => "mean_squared_error";

    public override double Compute(Tensor yPred, Tensor yTrue, Tensor? grad, bool fused = false)
    {
        CheckSameShape(yPred, yTrue, Name);
        double total = 0;
        float scale = 2f / yPred.Length;
        for (int i = 0; i < yPred.Length; i++)
        {
            float d = yPred.Data[i] - yTrue.Data[i];
            total += d * d;
            if (grad is not null) grad.Data[i] = d * scale;
        }
        return total / yPred.Length;
    }
}
