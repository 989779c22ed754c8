using System.Text.Json;
using Naani.Models;

namespace Naani.Tests.Serialization;

/// Files written by earlier Naani versions (format 1: a Sequential; format 2: a Functional with two outputs
/// and loss weights), kept as bytes in Fixtures/ with the predictions they gave when written
/// (make_fixtures.cs.txt made them). Every newer Naani must keep reading them the same way.
public class FormatFixtureTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Serialization", "Fixtures", name);

    static (float[] Probe, float[] Expected, long Iterations) Expected(string version)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Fixture("fixtures.json")));
        var root = document.RootElement;
        float[] Floats(string key) => [.. root.GetProperty(key).EnumerateArray().Select(e => e.GetSingle())];
        return (Floats("probe"), Floats(version), root.GetProperty(version + "_iterations").GetInt64());
    }

    [Theory]
    [InlineData("v1", 1u)]
    [InlineData("v2", 2u)]
    public void A_file_of_an_earlier_format_version_loads_with_its_weights_optimizer_and_predictions(string version, uint formatVersion)
    {
        string path = Fixture($"fixture-{version}.naani");
        Assert.Equal(formatVersion, BitConverter.ToUInt32(File.ReadAllBytes(path), 8));
        var model = Model.Load(path);
        var (probe, expected, iterations) = Expected(version);
        var x = new Tensor(new Shape([2, .. model.InputShape.ToArray()]), probe);
        // The weights load exactly; the predictions agree to rounding (summation order follows the thread count and
        // the vector width, which differ between runs of the suite).
        var actual = model.Predict(x).Data;
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-6f);
        Assert.Equal(iterations, model.Optimizer!.Iterations);
        Assert.NotEmpty(model.Optimizer.GetSlots());
        Assert.Equal(version == "v1" ? ["a", "b", "c", "d"] : null, model.ClassNames);
    }
}

/// The image preprocessing a model was trained with travels with it.
public class PreprocessingInModelFileTests
{
    [Fact]
    public void Preprocessing_is_kept_and_a_malformed_one_is_refused_naming_the_file()
    {
        using var temp = new TempDirectory();
        var model = SerializationTestData.EveryLayerModel();
        model.Preprocessing = new ImagePreprocessing(CropToAspectRatio: true);
        string path = temp.File("pre.naani");
        model.Save(path);
        Assert.Equal(new ImagePreprocessing(true), Model.Load(path).Preprocessing);

        var plain = SerializationTestData.EveryLayerModel();
        string plainPath = temp.File("plain.naani");
        plain.Save(plainPath);
        Assert.Null(Model.Load(plainPath).Preprocessing);

        // The same file with "crop_to_aspect_ratio": "yes": same length, so only the header (and its CRC) change.
        var bytes = File.ReadAllBytes(path);
        string text = System.Text.Encoding.UTF8.GetString(bytes);
        int at = text.IndexOf("\"crop_to_aspect_ratio\": true", StringComparison.Ordinal);
        Assert.True(at > 0);
        System.Text.Encoding.UTF8.GetBytes("\"crop_to_aspect_ratio\": \"ye\"").CopyTo(bytes, at);
        SerializationTestData.FixTrailer(bytes);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Model.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("preprocessing", e.Message);
    }
}
