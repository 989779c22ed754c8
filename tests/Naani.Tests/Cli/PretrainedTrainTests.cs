using Naani.Models;
using Naani.Serialization;

namespace Naani.Tests.Cli;

/// `naani train -m vgg16 --weights FILE --include-top false`: the seeds' transfer learning from the command line. The
/// weights are a stand-in made here (VGG16's base at its real shapes, seeded, written as a Keras 3 .weights.h5); the
/// published ImageNet file is the same but for its values, and its fetching and MD5 check are tested in KerasWeightsTests.
public sealed class PretrainedTrainTests : IDisposable
{
    readonly Serialization.TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    /// Keras's VGG16 and ResNet50 weights expect keras.applications' preprocess_input ("caffe": 0-255, BGR, ImageNet's
    /// mean subtracted); a model made for them starts with a frozen 1x1 convolution doing that to Naani's [0, 1] RGB.
    [Fact]
    public void Models_for_Keras_ImageNet_weights_apply_caffe_preprocessing_to_RGB_pixels_in_0_1()
    {
        var model = (Functional)Architectures.Create("vgg16", seed: 1, inputShape: new Shape(32, 32, 3), includeTop: false, preprocessInput: true);
        var pre = model.GetLayer(Architectures.PreprocessInputName);
        Assert.False(pre.Trainable);
        var probe = new Functional(model.Inputs, [pre.Output], "probe");
        var x = new Tensor(1, 32, 32, 3);
        x.Data[0] = 1f;     // R
        x.Data[1] = 0.5f;   // G
        x.Data[2] = 0f;     // B
        var y = probe.Predict(x).Data;
        Assert.Equal(0 * 255f - 103.939f, y[0], 3);    // B
        Assert.Equal(0.5f * 255 - 116.779f, y[1], 3);  // G
        Assert.Equal(1 * 255f - 123.68f, y[2], 3);     // R
        Assert.Equal(14_714_688, model.ParameterCount - pre.ParameterCount);
    }

    [Fact]
    public void A_pretrained_VGG16_base_stays_frozen_under_a_new_classifier_trained_on_an_image_folder()
    {
        string images = temp.File("images"), weights = temp.File("standin.weights.h5"), run = temp.File("run");
        Assert.Equal(0, CliRunner.Start(["data", "synth", images, "--classes", "3", "-n", "8", "--size", "32"]).WaitForExit(out _));
        var standIn = (Functional)Architectures.Create("vgg16", seed: 7, inputShape: new Shape(32, 32, 3), includeTop: false);
        KerasModelFile.SaveWeights(standIn, weights);

        Assert.Equal(0, CliRunner.Start(["train", "-m", "vgg16", "--weights", weights, "--include-top", "false", "-d", images, "--image-size", "32",
            "-e", "1", "-b", "8", "-t", "2", "--validation-split", "0", "-o", run]).WaitForExit(out var log));
        Assert.Contains("weights of 13 layers", log);
        Assert.Contains("Frozen: the first 20 layers (up to block5_pool)", log);   // input, preprocess_input, the 18 of the base

        var trained = Model.Load(Path.Combine(run, "model.naani"));
        Assert.Equal(new Shape(3), trained.OutputShape);
        foreach (var layer in standIn.Layers.Where(l => l.Parameters.Count > 0))
        {
            var after = trained.GetLayer(layer.Name);
            Assert.False(after.Trainable);
            for (int i = 0; i < layer.Parameters.Count; i++) Assert.Equal(layer.Parameters[i].Value.Data, after.Parameters[i].Value.Data);
        }
        Assert.True(trained.GetLayer("top_dense").Trainable);

        // naani evaluate takes the image folder too (its class folders, read at the model's input size).
        string evaluation = temp.File("evaluation");
        Assert.Equal(0, CliRunner.Start(["evaluate", "-m", Path.Combine(run, "model.naani"), "-d", images, "-o", evaluation]).WaitForExit(out var evaluated));
        Assert.Contains("24 in 3 classes, read at 32x32", evaluated);
        var metrics = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(evaluation, "metrics.json")))!;
        Assert.InRange(metrics["test"]!["accuracy"]!.GetValue<double>(), 0, 1);
        Assert.Equal(512 * 1024 + 1024 + 1024 * 3 + 3, trained.TrainableParameterCount);

        // --weights imagenet through the cache: a site's catalogue (NAANI_HOME/models/catalog.json) names a mirror at a
        // file:// URL with the file's MD5; the first run fetches it into the cache and checks the MD5, the second uses the cache.
        string home = temp.File("home"), models = Path.Combine(home, "models");
        Directory.CreateDirectory(models);
        string md5 = Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(File.ReadAllBytes(weights)));
        File.WriteAllText(Path.Combine(models, "catalog.json"),
            $$"""[{"architecture": "vgg16", "include_top": false, "file": "vgg16_notop.weights.h5", "url": "{{new Uri(weights).AbsoluteUri}}", "md5": "{{md5}}"}]""");
        var environment = new Dictionary<string, string> { ["NAANI_HOME"] = home };
        string[] imagenet = ["train", "-m", "vgg16", "--weights", "imagenet", "--include-top", "false", "-d", images, "--image-size", "32", "-e", "1", "-b", "8", "-t", "2", "--validation-split", "0"];
        Assert.Equal(0, CliRunner.Start([.. imagenet, "-o", temp.File("first")], environment).WaitForExit(out var first));
        Assert.Contains("Downloading file://", first);
        Assert.Contains("MD5 verified", first);
        Assert.True(File.Exists(Path.Combine(models, "vgg16_notop.weights.h5")));
        Assert.Equal(0, CliRunner.Start([.. imagenet, "-o", temp.File("second")], environment).WaitForExit(out var second));
        Assert.DoesNotContain("Downloading", second);
        var fromCache = Model.Load(Path.Combine(temp.File("second"), "model.naani"));
        Assert.Equal(standIn.GetLayer("block3_conv2").Parameters[0].Value.Data, fromCache.GetLayer("block3_conv2").Parameters[0].Value.Data);

        // The ImageNet top is for 1000 classes: asked for it on 3, the command says what to do instead.
        int code = CliRunner.Start(["train", "-m", "vgg16", "--weights", "imagenet", "-d", images, "--image-size", "32", "-o", temp.File("top")])
            .WaitForExit(out var refused, expectSuccess: false);
        Assert.Equal(2, code);
        Assert.Contains("--include-top false", refused);
    }
}
