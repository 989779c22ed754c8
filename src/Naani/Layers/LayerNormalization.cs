using System.Text.Json.Nodes;
using Naani.Initializers;
using Naani.Kernels;

namespace Naani.Layers;

/// Layer normalization, as Keras's LayerNormalization: each sample is normalized by the mean and the biased variance
/// of its values along the given axes, y = gamma * (x - mean) / sqrt(var + epsilon) + beta, the same in training and
/// inference. gamma and beta have the shape of those axes.
///
/// The default is Keras's: axis -1, so in NHWC data every pixel's C channels are normalized on their own (2C params).
/// For the CNN variant that normalizes each whole image, pass the axes (1, 2, 3): one mean and variance per image over
/// H*W*C values, with gamma and beta of shape (H, W, C); GroupNormalization(groups: 1) is that with per-channel gamma
/// and beta instead. Axes count the batch axis as Keras does and must be the trailing ones (contiguous in memory).
public sealed class LayerNormalization : Layer
{
    public LayerNormalization(int axis = -1, double epsilon = 1e-3, bool center = true, bool scale = true,
        Initializer? betaInitializer = null, Initializer? gammaInitializer = null, string? name = null)
        : this([axis], epsilon, center, scale, betaInitializer, gammaInitializer, name) { }

    public LayerNormalization(int[] axes, double epsilon = 1e-3, bool center = true, bool scale = true,
        Initializer? betaInitializer = null, Initializer? gammaInitializer = null, string? name = null) : base(name)
    {
        ArgumentNullException.ThrowIfNull(axes);
        if (axes.Length == 0) throw new ArgumentException("LayerNormalization needs at least one axis.", nameof(axes));
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), $"LayerNormalization epsilon must be positive; got {epsilon}.");
        Axes = [.. axes];
        Epsilon = epsilon;
        Center = center;
        Scale = scale;
        BetaInitializer = betaInitializer ?? Initializer.Zeros;
        GammaInitializer = gammaInitializer ?? Initializer.Ones;
    }

    /// The normalized axes as given (Keras's numbering: 0 is the batch axis, -1 the last).
    public IReadOnlyList<int> Axes { get; }
    public double Epsilon { get; }
    public bool Center { get; }
    public bool Scale { get; }
    public Initializer BetaInitializer { get; }
    public Initializer GammaInitializer { get; }

    public Parameter? Gamma { get; private set; }
    public Parameter? Beta { get; private set; }

    /// Values normalized together (the product of the normalized axes).
    public int NormalizedSize { get; private set; }

    // mean and 1/sqrt(var + epsilon) of each row of the last Forward, for Backward.
    float[] mean = [], invstd = [];
    float[][] gammaGradParts = [], betaGradParts = [];
    Tensor? x, y, dy, dx;
    Action<int, int, int>? forwardRange, backwardRange;

    protected override Shape Build(Shape input)
    {
        int rank = input.Rank;   // Keras's rank is rank + 1, with the batch axis 0
        var resolved = Axes.Select(a => a < 0 ? a + rank + 1 : a).Distinct().Order().ToArray();
        if (resolved.Length != Axes.Count || resolved.Any(a => a < 1 || a > rank) || resolved[0] != rank - resolved.Length + 1 || resolved[^1] != rank)
            throw new ArgumentException(
                $"LayerNormalization '{Name}': axes ({string.Join(", ", Axes)}) must be distinct trailing axes of input {input.ToKerasString()} " +
                $"(Keras numbering, batch axis 0): -1 or {rank} for the last axis, or e.g. ({string.Join(", ", Enumerable.Range(1, rank))}) for the whole sample.");
        var paramShape = new Shape([.. resolved.Select(a => input[a - 1])]);
        NormalizedSize = paramShape.Size;
        if (Scale) Gamma = AddWeight("gamma", paramShape, GammaInitializer);
        if (Center) Beta = AddWeight("beta", paramShape, BetaInitializer);
        return input;
    }

    // Rows each thread takes at least: a few thousand values, or threads cost more than they save.
    int MinRowsPerPart => Math.Max(1, 4096 / NormalizedSize);

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        int rows = x.Length / NormalizedSize;
        if (mean.Length < rows)
        {
            mean = new float[rows];
            invstd = new float[rows];
        }
        (this.x, this.y) = (x, y);
        Threading.For(rows, forwardRange ??= ForwardRange, MinRowsPerPart);
        (this.x, this.y) = (null, null);
    }

    void ForwardRange(int part, int start, int end)
    {
        int d = NormalizedSize;
        Normalization.RowsForward(x!.Data.AsSpan(start * d, (end - start) * d), d,
            Gamma is null ? default : Gamma.Value.Data, Beta is null ? default : Beta.Value.Data, (float)Epsilon,
            y!.Data.AsSpan(start * d, (end - start) * d), mean.AsSpan(start, end - start), invstd.AsSpan(start, end - start));
    }

    // The math is in Normalization.RowsBackward; each thread adds its rows' dgamma and dbeta into its own buffers,
    // summed afterwards in a fixed order.
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        int rows = x.Length / NormalizedSize, parts = Threading.Parts(rows, MinRowsPerPart);
        if (gammaGradParts.Length < parts)
        {
            gammaGradParts = [.. Enumerable.Range(0, parts).Select(_ => new float[Scale ? NormalizedSize : 0])];
            betaGradParts = [.. Enumerable.Range(0, parts).Select(_ => new float[Center ? NormalizedSize : 0])];
        }
        for (int p = 0; p < parts; p++)
        {
            gammaGradParts[p].AsSpan().Clear();
            betaGradParts[p].AsSpan().Clear();
        }
        (this.x, this.dy, this.dx) = (x, dy, dx);
        Threading.For(rows, backwardRange ??= BackwardRange, MinRowsPerPart);
        (this.x, this.dy, this.dx) = (null, null, null);
        for (int p = 0; p < parts; p++)
        {
            if (Gamma is not null) Activations.AddInPlace(Gamma.Gradient.Data, gammaGradParts[p]);
            if (Beta is not null) Activations.AddInPlace(Beta.Gradient.Data, betaGradParts[p]);
        }
    }

    void BackwardRange(int part, int start, int end)
    {
        int d = NormalizedSize;
        Normalization.RowsBackward(x!.Data.AsSpan(start * d, (end - start) * d), dy!.Data.AsSpan(start * d, (end - start) * d), d,
            Gamma is null ? default : Gamma.Value.Data, mean.AsSpan(start, end - start), invstd.AsSpan(start, end - start),
            dx is null ? default : dx.Data.AsSpan(start * d, (end - start) * d), gammaGradParts[part], betaGradParts[part]);
    }

    public override JsonObject GetConfig() => new()
    {
        ["axis"] = new JsonArray([.. Axes.Select(a => (JsonNode)a)]),
        ["epsilon"] = Epsilon,
        ["center"] = Center,
        ["scale"] = Scale,
        ["beta_initializer"] = BetaInitializer.ToConfig(),
        ["gamma_initializer"] = GammaInitializer.ToConfig(),
    };
}
