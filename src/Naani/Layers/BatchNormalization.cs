using System.Text.Json.Nodes;
using Naani.Initializers;
using Naani.Kernels;

namespace Naani.Layers;

/// Batch normalization over the last axis (the channels of NHWC data, or the units after a Dense), as Keras's
/// BatchNormalization:
///   training:  y = gamma * (x - mean_B) / sqrt(var_B + epsilon) + beta, with mean_B and the biased variance var_B of
///              each channel over the batch's N*H*W values; then moving = moving * momentum + batch * (1 - momentum)
///              for the mean and for that same biased variance (Keras 3 does not apply Bessel's correction);
///   inference: the same with moving_mean and moving_variance in place of the batch statistics.
/// A frozen layer (Trainable = false) always runs in inference mode, as in Keras, so fine-tuning a network that
/// contains it neither uses batch statistics nor moves its averages.
/// Weights, in Keras's order: gamma, beta (trainable), moving_mean, moving_variance (non-trainable): 4C params, 2C of
/// them non-trainable (fewer with center or scale off).
public sealed class BatchNormalization : Layer
{
    public BatchNormalization(int axis = -1, double momentum = 0.99, double epsilon = 1e-3, bool center = true, bool scale = true,
        Initializer? betaInitializer = null, Initializer? gammaInitializer = null,
        Initializer? movingMeanInitializer = null, Initializer? movingVarianceInitializer = null, string? name = null) : base(name)
    {
        if (!(momentum >= 0 && momentum <= 1)) throw new ArgumentOutOfRangeException(nameof(momentum), $"BatchNormalization momentum must be in [0, 1]; got {momentum}.");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), $"BatchNormalization epsilon must be positive; got {epsilon}.");
        Axis = axis;
        Momentum = momentum;
        Epsilon = epsilon;
        Center = center;
        Scale = scale;
        BetaInitializer = betaInitializer ?? Initializer.Zeros;
        GammaInitializer = gammaInitializer ?? Initializer.Ones;
        MovingMeanInitializer = movingMeanInitializer ?? Initializer.Zeros;
        MovingVarianceInitializer = movingVarianceInitializer ?? Initializer.Ones;
    }

    /// Keras's axis, counting the batch axis: -1 or rank (the last axis) are the ones channels-last data allows.
    public int Axis { get; }
    public double Momentum { get; }
    public double Epsilon { get; }
    public bool Center { get; }
    public bool Scale { get; }
    public Initializer BetaInitializer { get; }
    public Initializer GammaInitializer { get; }
    public Initializer MovingMeanInitializer { get; }
    public Initializer MovingVarianceInitializer { get; }

    public Parameter? Gamma { get; private set; }
    public Parameter? Beta { get; private set; }
    public Parameter MovingMean { get; private set; } = null!;
    public Parameter MovingVariance { get; private set; } = null!;

    /// Whether the last Forward normalized with the batch's statistics (training and trainable).
    public bool LastForwardUsedBatchStatistics { get; private set; }

    int channels;
    // The statistics the last Forward used (batch or moving), for Backward; scale/shift fold gamma and beta in.
    float[] mean = [], invstd = [], scale = [], shift = [], zeros = [];
    float[] a = [], b = [], k = [];
    // Per-thread partial sums (double) and float scratch, summed in a fixed order for reproducibility.
    double[][] sums = [], sums2 = [];
    float[][] blocks = [];
    Tensor? x, y, dy, dx;
    Action<int, int, int>? meanRange, varianceRange, applyRange, gradientSumsRange, gradientRange;

    protected override Shape Build(Shape input)
    {
        if (Axis != -1 && Axis != input.Rank)
            throw new ArgumentException($"BatchNormalization '{Name}' normalizes the last (channels) axis: axis must be -1 or {input.Rank} for input {input.ToKerasString()}; got {Axis}.");
        channels = input[^1];
        var shape = new Shape(channels);
        if (Scale) Gamma = AddWeight("gamma", shape, GammaInitializer);
        if (Center) Beta = AddWeight("beta", shape, BetaInitializer);
        MovingMean = AddWeight("moving_mean", shape, MovingMeanInitializer, trainable: false);
        MovingVariance = AddWeight("moving_variance", shape, MovingVarianceInitializer, trainable: false);
        mean = new float[channels];
        invstd = new float[channels];
        scale = new float[channels];
        shift = new float[channels];
        zeros = new float[channels];
        a = new float[channels];
        b = new float[channels];
        k = new float[channels];
        return input;
    }

    void EnsureParts(int parts)
    {
        if (sums.Length >= parts) return;
        sums = [.. Enumerable.Range(0, parts).Select(_ => new double[channels])];
        sums2 = [.. Enumerable.Range(0, parts).Select(_ => new double[channels])];
        blocks = [.. Enumerable.Range(0, parts).Select(_ => new float[2 * channels])];
    }

    // Rows of the (rows, C) matrix each thread takes at least: below this, threads cost more than they save.
    const int MinRowsPerPart = 64;

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        int rows = x.Length / channels;
        (this.x, this.y) = (x, y);
        LastForwardUsedBatchStatistics = training && Trainable;
        if (LastForwardUsedBatchStatistics)
        {
            int parts = Threading.Parts(rows, MinRowsPerPart);
            EnsureParts(parts);
            // mean_B[c] = (1/M) sum_r x[r, c], then var_B[c] = (1/M) sum_r (x[r, c] - mean_B[c])^2, M = N*H*W
            Reduce(parts, rows, meanRange ??= MeanRange, mean);
            Reduce(parts, rows, varianceRange ??= VarianceRange, invstd);   // holds var_B until below
            float momentum = (float)Momentum, rest = (float)(1 - Momentum);
            var mm = MovingMean.Value.Data;
            var mv = MovingVariance.Value.Data;
            for (int c = 0; c < channels; c++)
            {
                mm[c] = mm[c] * momentum + mean[c] * rest;
                mv[c] = mv[c] * momentum + invstd[c] * rest;
                invstd[c] = (float)(1.0 / Math.Sqrt(invstd[c] + Epsilon));
            }
        }
        else
        {
            for (int c = 0; c < channels; c++)
            {
                mean[c] = MovingMean.Value.Data[c];
                invstd[c] = (float)(1.0 / Math.Sqrt(MovingVariance.Value.Data[c] + Epsilon));
            }
        }
        // y = x * scale + shift with scale = gamma * invstd, shift = beta - mean * scale
        for (int c = 0; c < channels; c++)
        {
            scale[c] = (Gamma is null ? 1f : Gamma.Value.Data[c]) * invstd[c];
            shift[c] = (Beta is null ? 0f : Beta.Value.Data[c]) - mean[c] * scale[c];
        }
        Threading.For(rows, applyRange ??= ApplyRange, MinRowsPerPart);
        (this.x, this.y) = (null, null);
    }

    /// Runs a per-thread column sum and writes the total divided by rows into result.
    void Reduce(int parts, int rows, Action<int, int, int> range, float[] result)
    {
        for (int p = 0; p < parts; p++) sums[p].AsSpan().Clear();
        Threading.For(rows, range, MinRowsPerPart);
        for (int c = 0; c < channels; c++)
        {
            double total = 0;
            for (int p = 0; p < parts; p++) total += sums[p][c];
            result[c] = (float)(total / rows);
        }
    }

    ReadOnlySpan<float> Rows(Tensor t, int start, int end) => t.Data.AsSpan(start * channels, (end - start) * channels);

    void MeanRange(int part, int start, int end) =>
        Normalization.ColumnSums(Rows(x!, start, end), channels, zeros, squared: false, sums[part], blocks[part]);

    void VarianceRange(int part, int start, int end) =>
        Normalization.ColumnSums(Rows(x!, start, end), channels, mean, squared: true, sums[part], blocks[part]);

    void ApplyRange(int part, int start, int end) =>
        Normalization.ScaleShiftColumns(Rows(x!, start, end), channels, scale, shift, y!.Data.AsSpan(start * channels, (end - start) * channels));

    // in the forward pass xhat = (x - mean) * invstd and y = gamma * xhat + beta, so
    //   dbeta += sum_r dy,  dgamma += sum_r dy * xhat = invstd * sum_r dy * (x - mean);
    // with batch statistics mean and invstd depend on x too, and over the M rows
    //   dx = gamma * invstd * (dy - (1/M) sum dy - xhat * (1/M) sum dy * xhat)
    //      = a * dy + b * x + k,   a = gamma * invstd,  b = -a * invstd^2 * (1/M) sum dy * (x - mean),  k = -a * (1/M) sum dy - b * mean;
    // with the moving statistics (inference, frozen) they are constants: dx = a * dy.
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        int rows = x.Length / channels;
        int parts = Threading.Parts(rows, MinRowsPerPart);
        EnsureParts(parts);
        for (int p = 0; p < parts; p++)
        {
            sums[p].AsSpan().Clear();
            sums2[p].AsSpan().Clear();
        }
        (this.x, this.dy, this.dx) = (x, dy, dx);
        Threading.For(rows, gradientSumsRange ??= GradientSumsRange, MinRowsPerPart);
        for (int c = 0; c < channels; c++)
        {
            double sumDy = 0, sumDyX = 0;
            for (int p = 0; p < parts; p++)
            {
                sumDy += sums[p][c];
                sumDyX += sums2[p][c];
            }
            if (Beta is not null) Beta.Gradient.Data[c] += (float)sumDy;
            if (Gamma is not null) Gamma.Gradient.Data[c] += (float)(sumDyX * invstd[c]);
            a[c] = (Gamma is null ? 1f : Gamma.Value.Data[c]) * invstd[c];
            if (LastForwardUsedBatchStatistics)
            {
                b[c] = (float)(-a[c] * invstd[c] * invstd[c] * sumDyX / rows);
                k[c] = (float)(-a[c] * sumDy / rows) - b[c] * mean[c];
            }
            else
            {
                b[c] = 0;
                k[c] = 0;
            }
        }
        if (dx is not null) Threading.For(rows, gradientRange ??= GradientRange, MinRowsPerPart);
        (this.x, this.dy, this.dx) = (null, null, null);
    }

    void GradientSumsRange(int part, int start, int end) =>
        Normalization.ColumnGradientSums(Rows(dy!, start, end), Rows(x!, start, end), channels, mean, sums[part], sums2[part], blocks[part]);

    void GradientRange(int part, int start, int end) =>
        Normalization.AffineGradientColumns(Rows(dy!, start, end), Rows(x!, start, end), channels, a, b, k,
            dx!.Data.AsSpan(start * channels, (end - start) * channels));

    public override JsonObject GetConfig() => new()
    {
        ["axis"] = Axis,
        ["momentum"] = Momentum,
        ["epsilon"] = Epsilon,
        ["center"] = Center,
        ["scale"] = Scale,
        ["beta_initializer"] = BetaInitializer.ToConfig(),
        ["gamma_initializer"] = GammaInitializer.ToConfig(),
        ["moving_mean_initializer"] = MovingMeanInitializer.ToConfig(),
        ["moving_variance_initializer"] = MovingVarianceInitializer.ToConfig(),
    };
}
