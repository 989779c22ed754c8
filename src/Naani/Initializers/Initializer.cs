namespace Naani.Initializers;

/// Fills a new weight tensor. Fans follow Keras: for a kernel of shape (..., in, out) the
/// receptive field is the product of the leading axes; fan_in = in * field, fan_out = out * field.
public abstract class Initializer
{
    public abstract string Name { get; }
    public abstract void Fill(Span<float> values, Shape shape, Rng rng);

    public static readonly Initializer GlorotUniform = new GlorotUniformInitializer();
    public static readonly Initializer HeNormal = new HeNormalInitializer();
    public static readonly Initializer HeUniform = new HeUniformInitializer();
    public static readonly Initializer Zeros = new ConstantInitializer("zeros", 0f);
    public static readonly Initializer Ones = new ConstantInitializer("ones", 1f);

    public static Initializer Parse(string name) => name.ToLowerInvariant() switch
    {
        "glorot_uniform" => GlorotUniform,
        "he_normal" => HeNormal,
        "he_uniform" => HeUniform,
        "zeros" => Zeros,
        "ones" => Ones,
        _ => throw new ArgumentException($"Unknown initializer '{name}'; expected glorot_uniform, he_normal, he_uniform, zeros or ones."),
    };

    public static (double FanIn, double FanOut) Fans(Shape shape)
    {
        if (shape.Rank == 1) return (shape[0], shape[0]);
        double field = 1;
        for (int i = 0; i < shape.Rank - 2; i++) field *= shape[i];
        return (shape[^2] * field, shape[^1] * field);
    }

    public override string ToString() => Name;

    sealed class GlorotUniformInitializer : Initializer
    {
        public override string Name => "glorot_uniform";
        // U(-l, l) with l = sqrt(6 / (fan_in + fan_out))
        public override void Fill(Span<float> values, Shape shape, Rng rng)
        {
            var (fanIn, fanOut) = Fans(shape);
            float limit = (float)Math.Sqrt(6.0 / (fanIn + fanOut));
            for (int i = 0; i < values.Length; i++) values[i] = rng.Uniform(-limit, limit);
        }
    }

    sealed class HeUniformInitializer : Initializer
    {
        public override string Name => "he_uniform";
        // U(-l, l) with l = sqrt(6 / fan_in)
        public override void Fill(Span<float> values, Shape shape, Rng rng)
        {
            float limit = (float)Math.Sqrt(6.0 / Fans(shape).FanIn);
            for (int i = 0; i < values.Length; i++) values[i] = rng.Uniform(-limit, limit);
        }
    }

    sealed class HeNormalInitializer : Initializer
    {
        public override string Name => "he_normal";
        // Truncated normal (|z| <= 2) scaled so its standard deviation is sqrt(2 / fan_in), as Keras.
        public override void Fill(Span<float> values, Shape shape, Rng rng)
        {
            double stddev = Math.Sqrt(2.0 / Fans(shape).FanIn) / 0.87962566103423978;
            for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextTruncatedGaussian() * stddev);
        }
    }

    sealed class ConstantInitializer(string name, float value) : Initializer
    {
        public override string Name => name;
        public override void Fill(Span<float> values, Shape shape, Rng rng) => values.Fill(value);
    }
}
