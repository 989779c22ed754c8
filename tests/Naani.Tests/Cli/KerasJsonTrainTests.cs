using System.Text.Json.Nodes;
using Naani.Models;
using Naani.Tests.Data;

namespace Naani.Tests.Cli;

/// `naani train -m my-model.json`: a network described only in Keras JSON trains on real data from the command line.
public sealed class KerasJsonTrainTests : IDisposable
{
    readonly Serialization.TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Serialization", "Fixtures", name));

    [FashionMnistFact]
    public void A_network_in_Keras_JSON_trains_on_Fashion_MNIST_and_is_saved_as_a_Naani_model()
    {
        string json = temp.File("my-model.json"), run = temp.File("run");
        File.WriteAllText(json, Fixture("keras3-sequential.json"));
        Assert.Equal(0, CliRunner.Start(["train", "-m", json, "-d", "fashion-mnist", "-e", "1", "-b", "64", "-t", "2", "--validation-split", "0.9", "-o", run])
            .WaitForExit(out var log));
        Assert.Contains("fashion_cnn", log);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")))!;
        double accuracy = metrics["test"]!["accuracy"]!.GetValue<double>();
        // Chance is 0.10; after 94 steps (0.69 measured) batch normalization's moving averages (momentum 0.99) still lag.
        Assert.True(accuracy > 0.60, $"test accuracy {accuracy} after one epoch on 6,000 images");
        var model = Model.Load(Path.Combine(run, "model.naani"));
        Assert.Equal("fashion_cnn", model.Name);
        Assert.Equal(50650, model.ParameterCount);

        // summary reads the same file.
        Assert.Equal(0, CliRunner.Start(["summary", "-m", json]).WaitForExit(out var summary));
        Assert.Contains("batch_normalization (BatchNormalization)", summary);

        // The trained model goes to Keras 3 as a .keras file; read back, it evaluates to the same test accuracy.
        string keras = temp.File("trained.keras"), evaluation = temp.File("evaluation");
        Assert.Equal(0, CliRunner.Start(["export", "-m", Path.Combine(run, "model.naani"), "-o", keras]).WaitForExit(out var exported));
        Assert.Contains("for Keras 3", exported);
        Assert.Equal(0, CliRunner.Start(["evaluate", "-m", keras, "-d", "fashion-mnist", "-o", evaluation]).WaitForExit(out _));
        var again = JsonNode.Parse(File.ReadAllText(Path.Combine(evaluation, "metrics.json")))!;
        Assert.Equal(accuracy, again["test"]!["accuracy"]!.GetValue<double>());
    }

    [FashionMnistFact]
    public void A_network_whose_output_does_not_fit_the_classes_is_refused_before_training()
    {
        var root = JsonNode.Parse(Fixture("keras3-sequential.json"))!;
        var layers = root["config"]!["layers"]!.AsArray();
        layers[layers.Count - 1]!["config"]!["units"] = 5;
        string json = temp.File("five.json");
        File.WriteAllText(json, root.ToJsonString());
        int code = CliRunner.Start(["train", "-m", json, "-d", "fashion-mnist", "-e", "1", "-o", temp.File("run")]).WaitForExit(out var log, expectSuccess: false);
        Assert.Equal(2, code);
        Assert.Contains("10 classes", log);
        Assert.Contains("10 units", log);
    }
}
