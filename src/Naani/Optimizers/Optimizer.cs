using System.Numerics;
using Naani.Layers;

namespace Naani.Optimizers;

/// Updates trainable parameters from their gradients. Slot variables (momentum, moments) are
/// created per parameter on first use and can be saved with the model.
public abstract class Optimizer
{
    readonly Dictionary<Parameter, float[][]> slots = [];

    protected Optimizer(double learningRate)
    {
        if (!(learningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), $"Learning rate must be positive; got {learningRate}.");
        LearningRate = learningRate;
    }

    public double LearningRate { get; set; }

    /// Number of steps taken (Keras's optimizer.iterations).
    public long Iterations { get; set; }

    public abstract string Name { get; }

    /// Slots per parameter (e.g. Adam: m and v).
    protected abstract int SlotCount { get; }

    /// One step on every trainable parameter; frozen ones (Trainable = false) are skipped.
    public void Step(IReadOnlyList<Parameter> parameters)
    {
        Iterations++;
        FirstNonFiniteWeight = null;
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            if (!p.Trainable) continue;
            if (!slots.TryGetValue(p, out var s))
            {
                s = new float[SlotCount][];
                for (int j = 0; j < s.Length; j++) s[j] = new float[p.Size];
                slots[p] = s;
            }
            (current, currentSlots) = (p, s);
            // Large weights (a big Dense kernel) are updated in chunks on all threads: the update is memory-bound.
            Threading.For((p.Size + Chunk - 1) / Chunk, updateChunk ??= UpdateChunk, minPerPart: 1);
            if (currentNonFinite) FirstNonFiniteWeight ??= p;
            (current, currentSlots, currentNonFinite) = (null, null, false);
        }
    }

    /// The first parameter (in the order Step took them) that the last Step left with a NaN or infinite value:
    /// finite gradients times a huge learning rate can overflow. Null when every updated weight is finite.
    public Parameter? FirstNonFiniteWeight { get; private set; }

    const int Chunk = 1 << 16;
    Parameter? current;
    float[][]? currentSlots;
    Action<int, int, int>? updateChunk;
    volatile bool currentNonFinite;

    void UpdateChunk(int part, int firstChunk, int endChunk)
    {
        int start = firstChunk * Chunk, end = Math.Min(current!.Size, endChunk * Chunk), length = end - start;
        var s = currentSlots!;
        var w = current.Value.Data.AsSpan(start, length);
        Update(w, current.Gradient.Data.AsSpan(start, length),
            s.Length > 0 ? s[0].AsSpan(start, length) : default, s.Length > 1 ? s[1].AsSpan(start, length) : default);
        // While the updated weights are still in cache: did the update overflow?
        if (!Kernels.Finite.All(w)) currentNonFinite = true;
    }

    /// Updates the weights w from their gradient g; s0 and s1 are this range of the parameter's slots (empty when unused).
    protected abstract void Update(Span<float> w, ReadOnlySpan<float> g, Span<float> s0, Span<float> s1);

    /// The slot arrays of each parameter that has them, for saving.
    public IEnumerable<(Parameter Parameter, float[][] Slots)> GetSlots() => slots.Select(kv => (kv.Key, kv.Value));

    /// Forgets every slot (a checkpoint's are about to replace them).
    public void ClearSlots() => slots.Clear();

    /// Restores slots saved by GetSlots (sizes are checked).
    public void SetSlots(Parameter parameter, float[][] values)
    {
        if (values.Length != SlotCount || values.Any(v => v.Length != parameter.Size))
            throw new ArgumentException($"{Name} state for {parameter.FullName} has the wrong size: expected {SlotCount} slot(s) of {parameter.Size} values.");
        slots[parameter] = values;
    }

    public abstract System.Text.Json.Nodes.JsonObject GetConfig();

    public static Optimizer Parse(string name) => name.ToLowerInvariant() switch
    {
        "adam" => new Adam(),
        "sgd" => new SGD(),
        "rmsprop" => new RMSprop(),
        _ => throw new ArgumentException($"Unknown optimizer '{name}'; expected adam, sgd or rmsprop."),
    };

    protected static int VectorCount => Vector<float>.Count;
}

/// Stochastic gradient descent, with optional momentum and Nesterov momentum (Keras's formulas):
/// v = m v - lr g;  w += v  (Nesterov: w += m v - lr g).
public sealed class SGD(double learningRate = 0.01, double momentum = 0.0, bool nesterov = false) : Optimizer(learningRate)
{
    public double Momentum { get; } = momentum >= 0 && momentum < 1 ? momentum : throw new ArgumentOutOfRangeException(nameof(momentum), $"Momentum must be in [0, 1); got {momentum}.");
    public bool Nesterov { get; } = nesterov;
    public override string Name => "SGD";
    protected override int SlotCount => Momentum > 0 ? 1 : 0;

    protected override void Update(Span<float> w, ReadOnlySpan<float> g, Span<float> v, Span<float> unused)
    {
        float lr = (float)LearningRate, m = (float)Momentum;
        if (m == 0)
        {
            for (int i = 0; i < w.Length; i++) w[i] -= lr * g[i];
            return;
        }
        for (int i = 0; i < w.Length; i++)
        {
            v[i] = m * v[i] - lr * g[i];
            w[i] += Nesterov ? m * v[i] - lr * g[i] : v[i];
        }
    }

    public override System.Text.Json.Nodes.JsonObject GetConfig() => new()
    {
        ["name"] = "sgd",
        ["learning_rate"] = LearningRate,
        ["momentum"] = Momentum,
        ["nesterov"] = Nesterov,
    };
}

/// Adam with Keras's defaults and formulation: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);
/// m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2);  w -= lr_t m / (sqrt(v) + eps).
public sealed class Adam(double learningRate = 0.001, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-7) : Optimizer(learningRate)
{
    public double Beta1 { get; } = beta1;
    public double Beta2 { get; } = beta2;
    public double Epsilon { get; } = epsilon;
    public override string Name => "Adam";
    protected override int SlotCount => 2;

    protected override void Update(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v)
    {
        double t = Iterations;
        float lrT = (float)(LearningRate * Math.Sqrt(1 - Math.Pow(Beta2, t)) / (1 - Math.Pow(Beta1, t)));
        float b1 = (float)(1 - Beta1), b2 = (float)(1 - Beta2), eps = (float)Epsilon;
        int i = 0, vc = VectorCount;
        var vb1 = new Vector<float>(b1); var vb2 = new Vector<float>(b2);
        var vlr = new Vector<float>(lrT); var veps = new Vector<float>(eps);
        for (; i <= w.Length - vc; i += vc)
        {
            var gi = new Vector<float>(g.Slice(i));
            var mi = new Vector<float>(m.Slice(i));
            var vi = new Vector<float>(v.Slice(i));
            mi += (gi - mi) * vb1;
            vi += (gi * gi - vi) * vb2;
            mi.CopyTo(m.Slice(i));
            vi.CopyTo(v.Slice(i));
            (new Vector<float>(w.Slice(i)) - vlr * mi / (Vector.SquareRoot(vi) + veps)).CopyTo(w.Slice(i));
        }
        for (; i < w.Length; i++)
        {
            m[i] += (g[i] - m[i]) * b1;
            v[i] += (g[i] * g[i] - v[i]) * b2;
            w[i] -= lrT * m[i] / (MathF.Sqrt(v[i]) + eps);
        }
    }

    public override System.Text.Json.Nodes.JsonObject GetConfig() => new()
    {
        ["name"] = "adam",
        ["learning_rate"] = LearningRate,
        ["beta_1"] = Beta1,
        ["beta_2"] = Beta2,
        ["epsilon"] = Epsilon,
    };
}

/// RMSprop as Keras: v = rho v + (1 - rho) g^2;  step = lr g / sqrt(v + eps);
/// with momentum: mom = momentum mom + step, w -= mom; else w -= step.
public sealed class RMSprop(double learningRate = 0.001, double rho = 0.9, double momentum = 0.0, double epsilon = 1e-7) : Optimizer(learningRate)
{
    public double Rho { get; } = rho;
    public double Momentum { get; } = momentum;
    public double Epsilon { get; } = epsilon;
    public override string Name => "RMSprop";
    protected override int SlotCount => Momentum > 0 ? 2 : 1;

    protected override void Update(Span<float> w, ReadOnlySpan<float> g, Span<float> v, Span<float> velocity)
    {
        float lr = (float)LearningRate, rho = (float)Rho, mom = (float)Momentum, eps = (float)Epsilon;
        for (int i = 0; i < w.Length; i++)
        {
            v[i] = rho * v[i] + (1 - rho) * g[i] * g[i];
            float step = lr * g[i] / MathF.Sqrt(v[i] + eps);
            if (mom > 0)
            {
                velocity[i] = mom * velocity[i] + step;
                w[i] -= velocity[i];
            }
            else w[i] -= step;
        }
    }

    public override System.Text.Json.Nodes.JsonObject GetConfig() => new()
    {
        ["name"] = "rmsprop",
        ["learning_rate"] = LearningRate,
        ["rho"] = Rho,
        ["momentum"] = Momentum,
        ["epsilon"] = Epsilon,
    };
}
