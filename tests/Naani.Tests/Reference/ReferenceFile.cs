using System.Text.Json;
using Xunit;

namespace Naani.Tests.Reference;

/// One JSON file written by make_reference.py: a description, the layer's config, named tensors
/// (NHWC / HWIO, as Naani stores them) and scalars.
internal sealed class ReferenceFile
{
    readonly JsonElement root;

    ReferenceFile(string name, JsonElement root)
    {
        Name = name;
        this.root = root;
    }

    public string Name { get; }

    public static ReferenceFile Load(string name)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Reference", name);
        Assert.True(File.Exists(path), $"{path} is missing: run tests/Naani.Tests/Reference/make_reference.py and rebuild.");
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return new ReferenceFile(name, document.RootElement.Clone());
    }

    public string Description => root.GetProperty("description").GetString()!;
    public string Layer => root.GetProperty("layer").GetString()!;
    public JsonElement Config => root.GetProperty("config");

    public int ConfigInt(string key) => Config.GetProperty(key).GetInt32();
    public string ConfigString(string key) => Config.GetProperty(key).GetString()!;
    public (int, int) ConfigPair(string key)
    {
        var pair = Config.GetProperty(key);
        return (pair[0].GetInt32(), pair[1].GetInt32());
    }

    public double Scalar(string key) => root.GetProperty("scalars").GetProperty(key).GetDouble();

    /// The named tensor, with its values rounded to float32 (inputs were float32 to begin with).
    public Tensor Tensor(string key)
    {
        var (shape, values) = Values(key);
        return new Tensor(new Shape(shape), [.. values.Select(v => (float)v)]);
    }

    /// The named tensor's values as written (references are float64 results).
    public double[] Doubles(string key) => Values(key).Data;

    (int[] Shape, double[] Data) Values(string key)
    {
        var t = root.GetProperty("tensors").GetProperty(key);
        int[] shape = [.. t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32())];
        double[] data = [.. t.GetProperty("data").EnumerateArray().Select(v => v.GetDouble())];
        Assert.Equal(shape.Aggregate(1, (a, b) => a * b), data.Length);
        return (shape, data);
    }

    /// |actual - expected| <= 1e-5 * max(1, |expected|) for every value: 1e-5 absolute for values up
    /// to 1, relative above. float32 rounding of these sums (at most a few hundred O(1) terms) is ~1e-6.
    public void AssertClose(string key, ReadOnlySpan<float> actual, double offset = 0)
    {
        var expected = Doubles(key);
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double a = actual[i] - offset;
            if (!(Math.Abs(a - expected[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i]))))
                Assert.Fail($"{Name} {key}[{i}]: Naani {a:G9}, PyTorch {expected[i]:G9}");
        }
    }

    public void AssertClose(string key, double actual)
    {
        double expected = Scalar(key);
        Assert.True(Math.Abs(actual - expected) <= 1e-5 * Math.Max(1, Math.Abs(expected)), $"{Name} {key}: Naani {actual:G9}, PyTorch {expected:G9}");
    }
}
