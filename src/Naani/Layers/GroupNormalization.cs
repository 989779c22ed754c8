using System.Text.Json.Nodes;
using Naani.Initializers;
using Naani.Kernels;

namespace Naani.Layers;

/// Group normalization over channels-last data, as Keras's GroupNormalization: the C channels are split into
/// groups of C / groups consecutive channels, and each sample's values of one group (H*W*C/groups of them) are
/// normalized by their mean and biased variance, y = gamma[c] * (x - mean_g) / sqrt(var_g + epsilon) + beta[c].
/// The same in training and inference. groups = -1 means one group per channel (instance normalization);
/// groups = 1 normalizes each whole sample. Params: gamma and beta, C each.
public class GroupNormalization : Layer
{
    public GroupNormalization(int groups = 32, int axis = -1, double epsilon = 1e-3, bool center = true, bool scale = true,
        Initializer? betaInitializer = null, Initializer? gammaInitializer = null, string? name = null) : base(name)
    {
        if (groups == 0 || groups < -1) throw new ArgumentOutOfRangeException(nameof(groups), $"GroupNormalization groups must be positive, or -1 for one per channel; got {groups}.");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), $"GroupNormalization epsilon must be positive; got {epsilon}.");
        Groups = groups;
        Axis = axis;
        Epsilon = epsilon;
        Center = center;
        Scale = scale;
        BetaInitializer = betaInitializer ?? Initializer.Zeros;
        GammaInitializer = gammaInitializer ?? Initializer.Ones;
    }

    /// As given: a count, or -1 for one group per channel (see GroupCount for the built value).
    public int Groups { get; }
    /// Keras's axis, counting the batch axis: only the last (channels) axis is supported.
    public int Axis { get; }
    public double Epsilon { get; }
    public bool Center { get; }
    public bool Scale { get; }
    public Initializer BetaInitializer { get; }
    public Initializer GammaInitializer { get; }

    public Parameter? Gamma { get; private set; }
    public Parameter? Beta { get; private set; }

    /// Groups once built (Groups, or the channel count for -1).
    public int GroupCount { get; private set; }

    int channels, pixels;
    // mean_g and 1/sqrt(var_g + epsilon) per (sample, group) of the last Forward, for Backward.
    float[] mean = [], invstd = [], zeros = [];
    Workspace[] parts = [];
    Tensor? x, y, dy, dx;
    Action<int, int, int>? forwardRange, backwardRange;

    // One thread's buffers: per-channel sums and coefficients, and its share of dgamma and dbeta.
    sealed class Workspace(int channels)
    {
        public readonly double[] Sums = new double[channels], Sums2 = new double[channels];
        public readonly float[] Block = new float[2 * channels];
        public readonly float[] Shift = new float[channels], A = new float[channels], B = new float[channels], K = new float[channels];
        public readonly float[] GammaGrad = new float[channels], BetaGrad = new float[channels];
    }

    protected override Shape Build(Shape input)
    {
        if (Axis != -1 && Axis != input.Rank)
            throw new ArgumentException($"{TypeName} '{Name}' normalizes groups of the last (channels) axis: axis must be -1 or {input.Rank} for input {input.ToKerasString()}; got {Axis}.");
        channels = input[^1];
        pixels = input.Size / channels;
        GroupCount = Groups == -1 ? channels : Groups;
        if (GroupCount > channels || channels % GroupCount != 0)
            throw new ArgumentException($"{TypeName} '{Name}': {GroupCount} groups must divide the {channels} channels of input {input.ToKerasString()}.");
        if (Scale) Gamma = AddWeight("gamma", new Shape(channels), GammaInitializer);
        if (Center) Beta = AddWeight("beta", new Shape(channels), BetaInitializer);
        zeros = new float[channels];
        return input;
    }

    int GroupSize => channels / GroupCount;

    void EnsureParts(int count)
    {
        if (parts.Length < count) parts = [.. Enumerable.Range(0, count).Select(_ => new Workspace(channels))];
    }

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        EnsureParts(Threading.Parts(x.Batch));
        if (mean.Length < x.Batch * GroupCount)
        {
            mean = new float[x.Batch * GroupCount];
            invstd = new float[x.Batch * GroupCount];
        }
        (this.x, this.y) = (x, y);
        Threading.For(x.Batch, forwardRange ??= ForwardRange);
        (this.x, this.y) = (null, null);
    }

    Span<float> Image(Tensor t, int n) => t.Data.AsSpan(n * t.SampleSize, t.SampleSize);

    void ForwardRange(int part, int start, int end)
    {
        var ws = parts[part];
        int groupSize = GroupSize, count = pixels * groupSize;
        for (int n = start; n < end; n++)
        {
            var xn = Image(x!, n);
            // mean_g = (1/M) sum over the group's pixels and channels, M = H*W*C/groups
            Array.Clear(ws.Sums);
            Normalization.ColumnSums(xn, channels, zeros, squared: false, ws.Sums, ws.Block);
            for (int g = 0; g < GroupCount; g++)
            {
                double sum = 0;
                for (int c = g * groupSize; c < (g + 1) * groupSize; c++) sum += ws.Sums[c];
                mean[n * GroupCount + g] = (float)(sum / count);
                ws.Shift.AsSpan(g * groupSize, groupSize).Fill(mean[n * GroupCount + g]);
            }
            // var_g = (1/M) sum (x - mean_g)^2
            Array.Clear(ws.Sums);
            Normalization.ColumnSums(xn, channels, ws.Shift, squared: true, ws.Sums, ws.Block);
            for (int g = 0; g < GroupCount; g++)
            {
                double sum = 0;
                for (int c = g * groupSize; c < (g + 1) * groupSize; c++) sum += ws.Sums[c];
                invstd[n * GroupCount + g] = (float)(1.0 / Math.Sqrt(sum / count + Epsilon));
            }
            // y = x * scale + shift, scale[c] = gamma[c] * invstd_g, shift[c] = beta[c] - mean_g * scale[c]
            for (int c = 0; c < channels; c++)
            {
                int g = n * GroupCount + c / groupSize;
                ws.A[c] = (Gamma is null ? 1f : Gamma.Value.Data[c]) * invstd[g];
                ws.K[c] = (Beta is null ? 0f : Beta.Value.Data[c]) - mean[g] * ws.A[c];
            }
            Normalization.ScaleShiftColumns(xn, channels, ws.A, ws.K, Image(y!, n));
        }
    }

    // in the forward pass, per sample and group over its M values: xhat = (x - mean_g) * invstd_g, y = gamma[c] * xhat + beta[c], so
    //   dbeta[c] += sum_p dy,  dgamma[c] += sum_p dy * xhat = invstd_g * sum_p dy * (x - mean_g),
    //   dx = invstd_g * (gamma[c] dy - (1/M) S1 - xhat (1/M) S2),  S1 = sum_group gamma dy,  S2 = sum_group gamma dy xhat,
    //      = a[c] dy + b_g x + k_g,  a[c] = invstd_g gamma[c],  b_g = -invstd_g^2 S2 / M,  k_g = -invstd_g S1 / M - b_g mean_g.
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        int count = Threading.Parts(x.Batch);
        EnsureParts(count);
        for (int p = 0; p < count; p++)
        {
            Array.Clear(parts[p].GammaGrad);
            Array.Clear(parts[p].BetaGrad);
        }
        (this.x, this.dy, this.dx) = (x, dy, dx);
        Threading.For(x.Batch, backwardRange ??= BackwardRange);
        (this.x, this.dy, this.dx) = (null, null, null);
        for (int p = 0; p < count; p++)
        {
            if (Gamma is not null) Activations.AddInPlace(Gamma.Gradient.Data, parts[p].GammaGrad);
            if (Beta is not null) Activations.AddInPlace(Beta.Gradient.Data, parts[p].BetaGrad);
        }
    }

    void BackwardRange(int part, int start, int end)
    {
        var ws = parts[part];
        int groupSize = GroupSize, count = pixels * groupSize;
        for (int n = start; n < end; n++)
        {
            var xn = Image(x!, n);
            var dyn = Image(dy!, n);
            for (int g = 0; g < GroupCount; g++) ws.Shift.AsSpan(g * groupSize, groupSize).Fill(mean[n * GroupCount + g]);
            Array.Clear(ws.Sums);
            Array.Clear(ws.Sums2);
            Normalization.ColumnGradientSums(dyn, xn, channels, ws.Shift, ws.Sums, ws.Sums2, ws.Block);
            for (int g = 0; g < GroupCount; g++)
            {
                float s = invstd[n * GroupCount + g];
                double s1 = 0, s2 = 0;
                for (int c = g * groupSize; c < (g + 1) * groupSize; c++)
                {
                    float gamma = Gamma is null ? 1f : Gamma.Value.Data[c];
                    ws.BetaGrad[c] += (float)ws.Sums[c];
                    ws.GammaGrad[c] += (float)(s * ws.Sums2[c]);
                    s1 += gamma * ws.Sums[c];
                    s2 += gamma * s * ws.Sums2[c];
                }
                float b = (float)(-(double)s * s * s2 / count);
                float k = (float)(-s * s1 / count) - b * mean[n * GroupCount + g];
                for (int c = g * groupSize; c < (g + 1) * groupSize; c++)
                {
                    ws.A[c] = s * (Gamma is null ? 1f : Gamma.Value.Data[c]);
                    ws.B[c] = b;
                    ws.K[c] = k;
                }
            }
            if (dx is not null) Normalization.AffineGradientColumns(dyn, xn, channels, ws.A, ws.B, ws.K, Image(dx, n));
        }
    }

    public override JsonObject GetConfig() => new()
    {
        ["groups"] = Groups,
        ["axis"] = Axis,
        ["epsilon"] = Epsilon,
        ["center"] = Center,
        ["scale"] = Scale,
        ["beta_initializer"] = BetaInitializer.ToConfig(),
        ["gamma_initializer"] = GammaInitializer.ToConfig(),
    };
}

/// Instance normalization: GroupNormalization with one group per channel, so each channel of each sample is
/// normalized over its H*W values (style transfer's normalization). Keras has no such class; this is
/// keras.layers.GroupNormalization(groups=-1), and it is saved under its own name.
public sealed class InstanceNormalization(double epsilon = 1e-3, bool center = true, bool scale = true,
    Initializer? betaInitializer = null, Initializer? gammaInitializer = null, string? name = null)
    : GroupNormalization(-1, -1, epsilon, center, scale, betaInitializer, gammaInitializer, name)
{
    public override JsonObject GetConfig()
    {
        var config = base.GetConfig();
        config.Remove("groups");
        config.Remove("axis");
        return config;
    }
}
