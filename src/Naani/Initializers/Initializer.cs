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

    public static readonly Initializer GlorotNormal = new VarianceScaling(1, "fan_avg", "truncated_normal", "glorot_normal");
    public static readonly Initializer LecunNormal = new VarianceScaling(1, "fan_in", "truncated_normal", "lecun_normal");
    public static readonly Initializer LecunUniform = new VarianceScaling(1, "fan_in", "uniform", "lecun_uniform");

    /// The names Parse knows (Keras's, in snake case; Keras's class names, GlorotUniform etc., are accepted too).
    public static IReadOnlyList<string> Names { get; } =
        ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform", "zeros", "ones"];

    public static Initializer Parse(string name) => Serialization.KerasJson.SnakeCase(name) switch
    {
        "glorot_uniform" => GlorotUniform,
        "glorot_normal" => GlorotNormal,
        "he_normal" => HeNormal,
        "he_uniform" => HeUniform,
        "lecun_normal" => LecunNormal,
        "lecun_uniform" => LecunUniform,
        "zeros" or "zero" => Zeros,
        "ones" or "one" => Ones,
        "random_normal" => new RandomNormal(0, 0.05),
        "random_uniform" => new RandomUniform(-0.05, 0.05),
        "truncated_normal" => new TruncatedNormal(0, 0.05),
        _ => throw new ArgumentException($"Unknown initializer '{name}'; known: {string.Join(", ", Names)}, and with parameters " +
            "RandomNormal, RandomUniform, TruncatedNormal, Constant and VarianceScaling."),
    };

    /// How the initializer is written into a layer's config: its name when it has no parameters, else Keras's
    /// object {"class_name": ..., "config": {...}} (which FromConfig reads back).
    public virtual System.Text.Json.Nodes.JsonNode ToConfig() => System.Text.Json.Nodes.JsonValue.Create(Name);

    /// An initializer from a config: a name ("he_normal", or Keras's class name "HeNormal"), or Keras's object
    /// {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.05, "seed": null}}.
    public static Initializer FromConfig(System.Text.Json.Nodes.JsonNode? config)
    {
        if (config is System.Text.Json.Nodes.JsonValue value && value.TryGetValue<string>(out var name)) return Parse(name);
        if (config is not System.Text.Json.Nodes.JsonObject obj || obj["class_name"] is not System.Text.Json.Nodes.JsonValue classValue
            || !classValue.TryGetValue<string>(out var className))
            throw new ArgumentException($"An initializer is a name or an object with \"class_name\" and \"config\"; got {config?.ToJsonString() ?? "null"}.");
        var settings = obj["config"] as System.Text.Json.Nodes.JsonObject ?? [];
        double Number(string key, double fallback)
        {
            var node = settings[key];
            if (node is null) return fallback;
            try
            {
                return node.GetValue<double>();
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                throw new ArgumentException($"Initializer {className}: '{key}' must be a number; got {node.ToJsonString()}.", e);
            }
        }
        string Text(string key, string fallback) => settings[key] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<string>(out var s) ? s : fallback;
        return Serialization.KerasJson.SnakeCase(className) switch
        {
            "random_normal" => new RandomNormal(Number("mean", 0), Number("stddev", 0.05)),
            "random_uniform" => new RandomUniform(Number("minval", -0.05), Number("maxval", 0.05)),
            "truncated_normal" => new TruncatedNormal(Number("mean", 0), Number("stddev", 0.05)),
            "constant" => new ConstantInitializer("constant", (float)Number("value", 0), parameterized: true),
            "variance_scaling" => new VarianceScaling(Number("scale", 1), Text("mode", "fan_in"), Text("distribution", "truncated_normal")),
            _ => Parse(className),
        };
    }

    static System.Text.Json.Nodes.JsonObject KerasObject(string className, System.Text.Json.Nodes.JsonObject config)
    {
        config["seed"] = null;
        return new() { ["class_name"] = className, ["config"] = config };
    }

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

    sealed class ConstantInitializer(string name, float value, bool parameterized = false) : Initializer
    {
        public override string Name => name;
        public override void Fill(Span<float> values, Shape shape, Rng rng) => values.Fill(value);
        public override System.Text.Json.Nodes.JsonNode ToConfig() => parameterized
            ? new System.Text.Json.Nodes.JsonObject { ["class_name"] = "Constant", ["config"] = new System.Text.Json.Nodes.JsonObject { ["value"] = value } }
            : base.ToConfig();
    }

    /// Keras's VarianceScaling: scale divided by the fan the mode names, then a truncated normal (|z| at most 2, rescaled to
    /// that variance), a normal or a uniform distribution of that variance. Glorot, He and LeCun are its cases.
    public sealed class VarianceScaling : Initializer
    {
        readonly string? name;

        public VarianceScaling(double scale, string mode, string distribution, string? name = null)
        {
            if (!(scale > 0)) throw new ArgumentException($"VarianceScaling's scale must be positive; got {scale}.");
            if (mode is not ("fan_in" or "fan_out" or "fan_avg")) throw new ArgumentException($"VarianceScaling's mode must be fan_in, fan_out or fan_avg; got '{mode}'.");
            if (distribution == "normal") distribution = "truncated_normal";   // Keras's old name
            if (distribution is not ("truncated_normal" or "untruncated_normal" or "uniform"))
                throw new ArgumentException($"VarianceScaling's distribution must be truncated_normal, untruncated_normal or uniform; got '{distribution}'.");
            (Scale, Mode, Distribution, this.name) = (scale, mode, distribution, name);
        }

        public double Scale { get; }
        public string Mode { get; }
        public string Distribution { get; }
        public override string Name => name ?? "variance_scaling";

        public override void Fill(Span<float> values, Shape shape, Rng rng)
        {
            var (fanIn, fanOut) = Fans(shape);
            double fan = Mode == "fan_in" ? fanIn : Mode == "fan_out" ? fanOut : (fanIn + fanOut) / 2;
            double variance = Scale / Math.Max(1, fan);
            switch (Distribution)
            {
                case "truncated_normal":
                    double stddev = Math.Sqrt(variance) / 0.87962566103423978;
                    for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextTruncatedGaussian() * stddev);
                    break;
                case "untruncated_normal":
                    double sigma = Math.Sqrt(variance);
                    for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextGaussian() * sigma);
                    break;
                default:
                    float limit = (float)Math.Sqrt(3 * variance);
                    for (int i = 0; i < values.Length; i++) values[i] = rng.Uniform(-limit, limit);
                    break;
            }
        }

        public override System.Text.Json.Nodes.JsonNode ToConfig() => name is not null ? base.ToConfig()
            : KerasObject("VarianceScaling", new() { ["scale"] = Scale, ["mode"] = Mode, ["distribution"] = Distribution });
    }

    /// Keras's RandomNormal(mean, stddev).
    public sealed class RandomNormal(double mean, double stddev) : Initializer
    {
        public override string Name => "random_normal";
        public override void Fill(Span<float> values, Shape shape, Rng rng)
        {
            for (int i = 0; i < values.Length; i++) values[i] = (float)(mean + stddev * rng.NextGaussian());
        }
        public override System.Text.Json.Nodes.JsonNode ToConfig() => KerasObject("RandomNormal", new() { ["mean"] = mean, ["stddev"] = stddev });
    }

    /// Keras's RandomUniform(minval, maxval).
    public sealed class RandomUniform(double minval, double maxval) : Initializer
    {
        public override string Name => "random_uniform";
        public override void Fill(Span<float> values, Shape shape, Rng rng)
        {
            for (int i = 0; i < values.Length; i++) values[i] = (float)(minval + (maxval - minval) * rng.NextDouble());
        }
        public override System.Text.Json.Nodes.JsonNode ToConfig() => KerasObject("RandomUniform", new() { ["minval"] = minval, ["maxval"] = maxval });
    }

    /// Keras's TruncatedNormal(mean, stddev): normal values more than two standard deviations from the mean are drawn again.
    public sealed class TruncatedNormal(double mean, double stddev) : Initializer
    {
        public override string Name => "truncated_normal";
        public override void Fill(Span<float> values, Shape shape, Rng rng)
        {
            for (int i = 0; i < values.Length; i++) values[i] = (float)(mean + stddev * rng.NextTruncatedGaussian());
        }
        public override System.Text.Json.Nodes.JsonNode ToConfig() => KerasObject("TruncatedNormal", new() { ["mean"] = mean, ["stddev"] = stddev });
    }
}
