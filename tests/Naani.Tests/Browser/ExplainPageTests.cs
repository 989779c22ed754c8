using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Naani.Data;
using Naani.Inspection;
using Naani.Layers;
using Naani.Models;
using Naani.Tests.Cli;
using Naani.Tests.Data;
using Naani.Vision;

namespace Naani.Tests.Browser;

/// The page naani explain writes: its numbers against the model's own forward pass, and the page itself in headless
/// Chromium (no console errors, canvases drawn, the kernel panel, the step-throughs, the probabilities, --serve).
public sealed partial class ExplainPageTests : IDisposable
{
    readonly Serialization.TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    /// Where the browser tests leave their screenshots (docs/images/ holds copies).
    static string ScreenshotFolder => Path.Combine(AppContext.BaseDirectory, "screenshots");

    static Model MnistBaseline()
    {
        var model = Architectures.MnistBaseline(seed: 42);
        model.Build();
        return model;
    }

    /// The first Fashion-MNIST test image (an ankle boot) where Debian's dataset is installed, else a synthetic 28x28
    /// picture; written as a PNG and read back as the CLI reads images.
    string TestImagePng(out string name)
    {
        var pixels = new Tensor(28, 28, 1);
        if (Directory.Exists(FashionMnistFactAttribute.Folder))
        {
            var images = IdxReader.Read(Path.Combine(FashionMnistFactAttribute.Folder, "t10k-images-idx3-ubyte.gz"));
            for (int p = 0; p < 784; p++) pixels.Data[p] = images.Values[p] / 255f;
            name = "fashion-mnist-test-0.png";
        }
        else
        {
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                    pixels.Data[y * 28 + x] = Math.Abs(x - 14) + Math.Abs(y - 14) < 9 ? 0.2f + 0.03f * x : (x * 7 + y * 3) % 11 / 40f;
            name = "synthetic.png";
        }
        var path = temp.File(name);
        ImageFile.SavePng(pixels, path);
        return path;
    }

    ExplainImage TestImage()
    {
        var path = TestImagePng(out var name);
        return new ExplainImage(name, ImageFile.Load(path, (28, 28), ColorMode.Grayscale));
    }

    static float[] Floats(JsonNode? base64) => MemoryMarshalFloats(Convert.FromBase64String(base64!.GetValue<string>()));

    static float[] MemoryMarshalFloats(byte[] bytes) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray();

    static Tensor OutputOf(Model model, Tensor image, string layerName) =>
        FeatureMaps.Compute(model, image).Single(o => o.Layer.Name == layerName).Output;

    [Fact]
    public void Explain_data_lists_every_layer_of_mnist_baseline_with_shapes_parameters_and_memory()
    {
        var model = MnistBaseline();
        var data = ExplainPage.Data(model, [TestImage()]);

        var layers = data["layers"]!.AsArray();
        var expected = model.Layers.Where(l => l is not Input).ToList();
        Assert.Equal(expected.Select(l => l.Name), layers.Select(l => l!["name"]!.GetValue<string>()));
        Assert.Equal(["Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense", "Dense"], layers.Select(l => l!["type"]!.GetValue<string>()));
        Assert.Equal("(None, 24, 24, 32)", layers[0]!["shapeText"]!.GetValue<string>());
        Assert.Equal("(None, 12, 12, 32)", layers[1]!["shapeText"]!.GetValue<string>());
        Assert.Equal(832, layers[0]!["params"]!.GetValue<long>());   // 5 x 5 x 1 x 32 + 32
        Assert.Equal(592_074, layers.Sum(l => l!["params"]!.GetValue<long>()));
        Assert.Equal(24 * 24 * 32, layers[0]!["values"]!.GetValue<long>());
        Assert.Equal([true, true, true, false, false, false], layers.Select(l => l!["maps"]!.GetValue<bool>()));
        Assert.Equal(model.ForwardActivationValues, data["model"]!["forwardValues"]!.GetValue<long>());

        var probabilities = data["images"]![0]!["probabilities"]!.AsArray().Select(p => p!.GetValue<float>()).ToArray();
        Assert.Equal(10, probabilities.Length);
        Assert.Equal(1.0, probabilities.Sum(), 4);
        Assert.Null(data["classNames"]);   // a built-in model stores no class names
    }

    [Fact]
    public void Explain_feature_maps_dequantize_within_one_step_of_the_layers_output()
    {
        var model = MnistBaseline();
        var image = TestImage();
        var data = ExplainPage.Data(model, [image], maxMaps: 8);
        var conv = model.Layers.OfType<Conv2D>().First();
        var output = OutputOf(model, image.Pixels, conv.Name);

        var maps = data["images"]![0]!["maps"]!["0"]!;
        Assert.Equal(8, maps["count"]!.GetValue<int>());
        Assert.Equal(32, maps["total"]!.GetValue<int>());
        var q = Convert.FromBase64String(maps["data"]!.GetValue<string>());
        Assert.Equal(8 * 24 * 24, q.Length);
        for (int k = 0; k < 8; k++)
        {
            float lo = maps["min"]![k]!.GetValue<float>(), hi = maps["max"]![k]!.GetValue<float>();
            for (int p = 0; p < 24 * 24; p++)
            {
                float value = lo + q[k * 576 + p] / 255f * (hi - lo), actual = output.Data[p * 32 + k];
                Assert.True(Math.Abs(value - actual) <= (hi - lo) / 255f + 1e-6f, $"map {k} pixel {p}: {value} vs {actual}");
            }
        }
    }

    [Fact]
    public void Explain_step_through_embeds_the_first_convolution_and_the_pooling_after_it()
    {
        var model = MnistBaseline();
        var image = TestImage();
        var stepper = ExplainPage.Data(model, [image])["stepper"]!;
        var conv = model.Layers.OfType<Conv2D>().First();
        Assert.Equal(0, stepper["layer"]!.GetValue<int>());
        Assert.Equal(image.Pixels.Data, Floats(stepper["inputs"]![0]));
        Assert.Equal(conv.Kernel.Value.Data, Floats(stepper["kernel"]));

        // The formula the page computes, in C#: y[0, 0, k] = relu(b[k] + sum_ij x[i, j] k[i, j, 0, k]); the model agrees.
        var output = OutputOf(model, image.Pixels, conv.Name);
        var bias = Floats(stepper["bias"]);
        for (int k = 0; k < 32; k++)
        {
            double sum = bias[k];
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++)
                    sum += image.Pixels.Data[i * 28 + j] * conv.Kernel.Value.Data[(i * 5 + j) * 32 + k];
            Assert.Equal(Math.Max(0, sum), output.Data[k], 5);
        }

        var pool = stepper["pool"]!;
        Assert.Equal(1, pool["layer"]!.GetValue<int>());
        Assert.Equal("max", pool["kind"]!.GetValue<string>());
        Assert.Equal(32, pool["shownChannels"]!.GetValue<int>());
        Assert.Equal(output.Data, Floats(pool["inputs"]![0]));
    }

    [Fact]
    public void Explain_refuses_models_that_do_not_take_one_image()
    {
        var dense = new Sequential("dense-only", 1).Add(new Input(new Shape(8))).Add(new Dense(3));
        Assert.Contains("not images", ExplainPage.Problem(dense));
        var a = Input.Create(new Shape(8, 8, 1));
        var b = Input.Create(new Shape(8, 8, 1));
        var twoInputs = new Functional([a, b], [new Flatten().Call(new Concatenate().Call(a, b))], "two-inputs", 1);
        Assert.Contains("2 inputs", ExplainPage.Problem(twoInputs));
        Assert.Null(ExplainPage.Problem(MnistBaseline()));
        Assert.Null(ExplainPage.Problem(Architectures.Create("resnet-mini", seed: 1)));
        Assert.Throws<ArgumentException>(() => ExplainPage.Data(dense, [new ExplainImage("x", new Tensor(8))]));
    }

    [Theory]
    [InlineData("resnet-mini")]
    [InlineData("googlenet-mini")]
    public void Explain_follows_an_image_through_branches_and_merges_as_the_model_computes_it(string name)
    {
        var model = Architectures.Create(name, seed: 4);
        model.Build();
        var image = TestImage();
        var data = ExplainPage.Data(model, [image]);

        // The main output's probabilities are the model's own prediction.
        var expected = model.Predict(image.Pixels.Reshape(1, 28, 28, 1), batchSize: 1).Data;
        var probabilities = data["images"]![0]!["probabilities"]!.AsArray().Select(p => p!.GetValue<float>()).ToArray();
        Assert.Equal(expected.Length, probabilities.Length);
        for (int k = 0; k < expected.Length; k++) Assert.Equal(expected[k], probabilities[k], 5);

        // Every call is listed once, merges name what they read, and each layer comes after what it reads.
        var layers = data["layers"]!.AsArray();
        Assert.Contains(layers, l => l!["inputs"]!.AsArray().Count > 1);
        for (int i = 0; i < layers.Count; i++)
            Assert.All(layers[i]!["inputs"]!.AsArray(), r => Assert.InRange(r!.GetValue<int>(), -1, i - 1));
        Assert.Equal(model.ParameterCount, layers.Sum(l => l!["params"]!.GetValue<long>()));
    }

    [Fact]
    public void Explain_page_is_self_contained()
    {
        var html = ExplainPage.Html(MnistBaseline(), [TestImage()]);
        Assert.DoesNotMatch(new Regex("(src|href)\\s*=\\s*[\"']?(https?:)?//", RegexOptions.IgnoreCase), html);
        Assert.DoesNotContain("stylesheet", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("@import", html, StringComparison.OrdinalIgnoreCase);
        Assert.InRange(html.Length, 10_000, 1_000_000);
    }

    [Fact]
    public void Explain_cli_reports_missing_models_unreadable_images_and_non_image_models()
    {
        var missing = CliRunner.Start(["explain", "-m", temp.File("none.naani")]);
        Assert.Equal(2, missing.WaitForExit(out var log, expectSuccess: false));
        Assert.Contains("neither a built-in model", log);

        var notImage = temp.File("notes.png");
        File.WriteAllText(notImage, "these are not pixels");
        var unreadable = CliRunner.Start(["explain", "-m", "mnist-baseline", "--image", notImage, "-o", temp.File("out")]);
        Assert.Equal(2, unreadable.WaitForExit(out log, expectSuccess: false));
        Assert.Contains("notes.png", log);
        Assert.False(File.Exists(temp.File("out/index.html")));

        var page = temp.File("grey.html");
        CliRunner.Start(["explain", "-m", "mnist-baseline", "-o", page]).WaitForExit(out log);
        Assert.Contains("mid-grey", log);
        Assert.True(File.Exists(page));
    }

    // ---- in the browser -----------------------------------------------------------------------------------------

    /// The page for mnist-baseline and the test image, with Fashion-MNIST's class names as a trained model stores them.
    (string Url, Model Model, ExplainImage Image) WritePage()
    {
        var model = MnistBaseline();
        model.ClassNames = MnistFamily.FashionClassNames;
        var image = TestImage();
        var path = temp.File("explain/index.html");
        ExplainPage.Write(path, model, [image]);
        return (new Uri(path).AbsoluteUri, model, image);
    }

    [ChromiumFact]
    public async Task Explain_page_renders_layers_maps_and_probabilities_without_console_errors()
    {
        var (url, model, _) = WritePage();
        await using var browser = await HeadlessChromium.StartAsync(1600, 1000);
        await browser.NavigateAsync(url);
        Assert.True(await browser.WaitForAsync("window.naaniExplain !== undefined", TimeSpan.FromSeconds(10)));

        int layers = model.Layers.Count(l => l is not Input);
        Assert.Equal(layers + 1, (await browser.EvaluateAsync("document.querySelectorAll('#network tbody tr').length")).GetInt32());
        Assert.Equal(32 * 3, (await browser.EvaluateAsync("document.querySelectorAll('canvas.map').length")).GetInt32());
        Assert.True(await browser.NonBlankPixelsAsync("#input-canvas") > 100);
        Assert.True(await browser.NonBlankPixelsAsync("#conv-input") > 100);
        Assert.True(await browser.NonBlankPixelsAsync("#conv-output") > 100);
        Assert.True(await browser.NonBlankPixelsAsync("#pool-output") > 10);
        // Most maps of conv1 vary over the image: count the canvases with any drawing.
        int drawn = 0;
        for (int k = 0; k < 32; k++)
            if (await browser.NonBlankPixelsAsync($"canvas.map[data-layer=\"0\"][data-map=\"{k}\"]") > 0) drawn++;
        Assert.True(drawn >= 16, $"only {drawn} of conv1's 32 maps drew anything");

        var bars = await browser.EvaluateAsync("[...document.querySelectorAll('#prediction .bar')].map(b => Number(b.getAttribute('data-p')))");
        Assert.Equal(10, bars.GetArrayLength());
        Assert.Equal(1.0, bars.EnumerateArray().Sum(b => b.GetDouble()), 3);
        Assert.Contains("Ankle boot", (await browser.EvaluateAsync("document.getElementById('prediction').textContent")).GetString());

        await browser.ScreenshotAsync(Path.Combine(ScreenshotFolder, "explain-mnist.png"));
        Assert.Empty(browser.ConsoleErrors);
    }

    [ChromiumFact]
    public async Task Explain_page_clicking_a_feature_map_shows_its_kernel_as_numbers_and_heat_map()
    {
        var (url, model, _) = WritePage();
        var conv = model.Layers.OfType<Conv2D>().First();
        await using var browser = await HeadlessChromium.StartAsync(1600, 1000);
        await browser.NavigateAsync(url);

        await browser.ClickAsync("canvas.map[data-layer=\"0\"][data-map=\"3\"]");
        Assert.True(await browser.WaitForAsync("document.querySelectorAll('.kernel-matrix td').length > 0", TimeSpan.FromSeconds(5)));
        var cells = await browser.EvaluateAsync("[...document.querySelectorAll('.kernel-matrix td')].map(td => Number(td.textContent))");
        Assert.Equal(25, cells.GetArrayLength());   // 5 x 5, one input channel
        int n = 0;
        foreach (var cell in cells.EnumerateArray())
        {
            float weight = conv.Kernel.Value.Data[n++ * 32 + 3];   // kernel[i, j, 0, 3]
            Assert.Equal(weight, cell.GetDouble(), 3);
        }
        Assert.True(await browser.NonBlankPixelsAsync(".kernel-heat") > 0);
        Assert.True(await browser.NonBlankPixelsAsync("#kernel-map") > 0);
        Assert.Contains("bias[3]", (await browser.EvaluateAsync("document.getElementById('kernel-content').textContent")).GetString());

        // A pooling map has no kernel, and says so.
        await browser.ClickAsync("canvas.map[data-layer=\"1\"][data-map=\"0\"]");
        Assert.True(await browser.WaitForAsync("document.querySelector('.kernel-none') !== null", TimeSpan.FromSeconds(5)));

        await browser.ClickAsync("canvas.map[data-layer=\"0\"][data-map=\"3\"]");
        await browser.EvaluateAsync("window.scrollTo(0, 0)");
        await browser.ScreenshotAsync(Path.Combine(ScreenshotFolder, "explain-kernel.png"));
        Assert.Empty(browser.ConsoleErrors);
    }

    [ChromiumFact]
    public async Task Explain_page_convolution_step_through_matches_the_model_and_steps_with_arrow_keys()
    {
        var (url, model, image) = WritePage();
        var conv = model.Layers.OfType<Conv2D>().First();
        var pool = model.Layers.OfType<MaxPooling2D>().First();
        var convOutput = OutputOf(model, image.Pixels, conv.Name);
        var poolOutput = OutputOf(model, image.Pixels, pool.Name);
        await using var browser = await HeadlessChromium.StartAsync(1600, 1000);
        await browser.NavigateAsync(url);

        for (int k = 0; k < 32; k++)
        {
            var r = await browser.EvaluateAsync($"window.naaniExplain.convolutionAt({k}, 0, 0)");
            Assert.Equal(25, r.GetProperty("products").GetArrayLength());
            Assert.Equal(convOutput.Data[k], r.GetProperty("output").GetDouble(), 5);
            Assert.Equal(r.GetProperty("sum").GetDouble() + r.GetProperty("bias").GetDouble(), r.GetProperty("preActivation").GetDouble(), 6);
        }
        var inner = await browser.EvaluateAsync("window.naaniExplain.convolutionAt(5, 17, 9).output");
        Assert.Equal(convOutput.Data[(17 * 24 + 9) * 32 + 5], inner.GetDouble(), 5);
        for (int c = 0; c < 32; c += 7)
        {
            var r = await browser.EvaluateAsync($"window.naaniExplain.poolingAt({c}, 3, 4)");
            Assert.Equal(4, r.GetProperty("values").GetArrayLength());
            Assert.Equal(poolOutput.Data[(3 * 12 + 4) * 32 + c], r.GetProperty("output").GetDouble(), 6);
        }

        Assert.Equal("0", (await browser.EvaluateAsync("document.getElementById('conv-sum').getAttribute('data-x')")).GetString());
        await browser.PressKeyAsync("ArrowRight");
        await browser.PressKeyAsync("ArrowRight");
        Assert.True(await browser.WaitForAsync("document.getElementById('conv-sum').getAttribute('data-x') === '2'", TimeSpan.FromSeconds(5)));
        var text = (await browser.EvaluateAsync("document.getElementById('conv-sum').textContent")).GetString()!;
        Assert.Contains(" x ", text);
        Assert.Contains("+ bias", text);
        Assert.Contains("ReLU: max(0, ", text);
        // The last number written out is the output at (0, 2) of filter 0, to the 3 decimals shown.
        var last = double.Parse(NumberAtEnd().Match(text).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.Equal(convOutput.Data[2 * 32 + 0], last, 0.0006);
        Assert.Equal(convOutput.Data[2 * 32], double.Parse((await browser.EvaluateAsync("document.getElementById('conv-sum').getAttribute('data-output')")).GetString()!,
            CultureInfo.InvariantCulture), 5);
        await browser.PressKeyAsync("ArrowDown");
        Assert.True(await browser.WaitForAsync("document.getElementById('conv-sum').getAttribute('data-y') === '1'", TimeSpan.FromSeconds(5)));

        // For the picture: a window on the shoe, and the pooling window on a strong response.
        await browser.EvaluateAsync("window.naaniExplain.moveTo('conv', 3, 14, 9)");
        Assert.Equal(convOutput.Data[(14 * 24 + 9) * 32 + 3], double.Parse((await browser.EvaluateAsync("document.getElementById('conv-sum').getAttribute('data-output')")).GetString()!,
            CultureInfo.InvariantCulture), 5);
        await browser.EvaluateAsync("window.naaniExplain.moveTo('pool', 3, 7, 4)");
        await browser.EvaluateAsync("document.getElementById('conv-stepper').scrollIntoView()");
        await browser.ScreenshotAsync(Path.Combine(ScreenshotFolder, "explain-convolution.png"));
        await browser.EvaluateAsync("document.getElementById('pool-stepper').scrollIntoView()");
        await browser.ScreenshotAsync(Path.Combine(ScreenshotFolder, "explain-pooling.png"));
        Assert.Empty(browser.ConsoleErrors);
    }

    static Tensor RgbImage(int size, int seed)
    {
        var image = new Tensor(size, size, 3);
        var random = new Random(seed);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                for (int c = 0; c < 3; c++)
                    image.Data[(y * size + x) * 3 + c] = (x - size / 2) * (x - size / 2) + (y - size / 3) * (y - size / 3) < size * size / 9
                        ? 0.9f - 0.3f * c : (float)Math.Round(random.NextDouble() * 255) / 255f;
        return image;
    }

    [ChromiumFact]
    public async Task Explain_page_steps_through_an_rgb_convolution_with_same_padding_and_stride_2_for_each_image()
    {
        var model = Architectures.Small32(seed: 3);   // Conv2D 10 4x4 stride 2 'same': one row and column of zeros on top and left
        model.Build();
        ExplainImage[] images = [new("first", RgbImage(32, 1)), new("second", RgbImage(32, 2))];
        var path = temp.File("rgb/index.html");
        ExplainPage.Write(path, model, images);
        var conv = model.Layers.OfType<Conv2D>().First();

        await using var browser = await HeadlessChromium.StartAsync(1600, 1000);
        await browser.NavigateAsync(new Uri(path).AbsoluteUri);
        Assert.Equal(2, (await browser.EvaluateAsync("document.querySelectorAll('#image-picker option').length")).GetInt32());
        Assert.True((await browser.EvaluateAsync("document.getElementById('pool-stepper').hidden")).GetBoolean());   // no pooling in small-32
        for (int n = 0; n < 2; n++)
        {
            await browser.EvaluateAsync($"(() => {{ const s = document.getElementById('image-picker'); s.value = '{n}'; s.dispatchEvent(new Event('change')); }})()");
            var output = OutputOf(model, images[n].Pixels, conv.Name);
            foreach (var (y, x) in new[] { (0, 0), (15, 15), (7, 3), (0, 15) })
                for (int k = 0; k < 10; k++)
                {
                    var r = await browser.EvaluateAsync($"window.naaniExplain.convolutionAt({k}, {y}, {x})");
                    Assert.Equal(3, r.GetProperty("channels").GetArrayLength());
                    Assert.Equal(output.Data[(y * 16 + x) * 10 + k], r.GetProperty("output").GetDouble(), 5);
                }
            Assert.True(await browser.NonBlankPixelsAsync("#input-canvas") > 100);
        }
        var text = (await browser.EvaluateAsync("document.getElementById('conv-sum').textContent")).GetString()!;
        Assert.Contains("channel R: ", text);
        Assert.Contains("channel B: ", text);
        Assert.Contains("sum of the channels = ", text);
        var corner = await browser.EvaluateAsync("window.naaniExplain.convolutionAt(0, 0, 0)");
        Assert.Equal(-1, corner.GetProperty("top").GetInt32());   // pad_total = max((16 - 1) 2 + 4 - 32, 0) = 2, top = 1
        Assert.Equal(7, corner.GetProperty("products").EnumerateArray().Count(p => p.GetProperty("padded").GetBoolean()) / 3);
        Assert.Empty(browser.ConsoleErrors);
    }

    [ChromiumFact]
    public async Task Explain_page_for_vgg16_stays_small_and_renders_its_layers()
    {
        var model = Architectures.Create("vgg16", seed: 1);
        model.Build();
        var image = new ExplainImage("rgb", RgbImage(224, 5));
        var path = temp.File("vgg16/index.html");
        ExplainPage.Write(path, model, [image]);
        Assert.InRange(new FileInfo(path).Length, 1_000_000, 30_000_000);

        await using var browser = await HeadlessChromium.StartAsync(1600, 1000);
        await browser.NavigateAsync(new Uri(path).AbsoluteUri);
        Assert.True(await browser.WaitForAsync("window.naaniExplain !== undefined", TimeSpan.FromSeconds(30)));
        int spatial = model.Layers.Count(l => l is not Input && l.OutputShape.Rank == 3);
        Assert.Equal(spatial * 32, (await browser.EvaluateAsync("document.querySelectorAll('canvas.map').length")).GetInt32());
        Assert.Contains("first 32 of 512", (await browser.EvaluateAsync("document.getElementById('maps').textContent")).GetString());
        var conv = model.Layers.OfType<Conv2D>().First();
        var output = OutputOf(model, image.Pixels, conv.Name);
        Assert.Equal(output.Data[(5 * 224 + 7) * 64 + 9], (await browser.EvaluateAsync("window.naaniExplain.convolutionAt(9, 5, 7).output")).GetDouble(), 4);
        int drawn = 0;
        for (int k = 0; k < 32; k++)
            if (await browser.NonBlankPixelsAsync($"canvas.map[data-layer=\"0\"][data-map=\"{k}\"]") > 100) drawn++;
        Assert.True(drawn >= 8, $"only {drawn} of block1_conv1's first 32 maps drew anything");
        Assert.True(await browser.NonBlankPixelsAsync("#conv-output") > 100);
        var pooled = OutputOf(model, image.Pixels, "block1_pool");
        Assert.Contains("block1_conv2", (await browser.EvaluateAsync("document.getElementById('pool-note').textContent")).GetString());
        for (int c = 0; c < 10; c += 3)
            Assert.Equal(pooled.Data[(50 * 112 + 60) * 64 + c], (await browser.EvaluateAsync($"window.naaniExplain.poolingAt({c}, 50, 60).output")).GetDouble(), 4);
        Assert.Empty(browser.ConsoleErrors);
    }

    [ChromiumFact]
    public async Task Explain_page_for_a_model_without_a_classifier_shows_maps_and_no_prediction()
    {
        var model = Architectures.AlexNetConv1(seed: 2);   // conv1 alone: 96 filters 11x11x3, stride 4, 227x227x3 -> 55x55x96
        model.Build();
        var image = new ExplainImage("rgb", RgbImage(227, 7));
        var data = ExplainPage.Data(model, [image]);
        Assert.Null(data["images"]![0]!["probabilities"]);
        Assert.Null(data["stepper"]!["pool"]);
        var path = temp.File("alexnet/index.html");
        ExplainPage.Write(path, model, [image]);

        await using var browser = await HeadlessChromium.StartAsync(1600, 1000);
        await browser.NavigateAsync(new Uri(path).AbsoluteUri);
        Assert.True(await browser.WaitForAsync("window.naaniExplain !== undefined", TimeSpan.FromSeconds(10)));
        Assert.Equal(0, (await browser.EvaluateAsync("document.querySelectorAll('#prediction .bar').length")).GetInt32());
        Assert.Contains("no prediction", (await browser.EvaluateAsync("document.getElementById('prediction-note').textContent")).GetString());
        Assert.Contains("first 32 of 96", (await browser.EvaluateAsync("document.getElementById('maps').textContent")).GetString());
        var output = OutputOf(model, image.Pixels, "conv1");
        var r = await browser.EvaluateAsync("window.naaniExplain.convolutionAt(40, 54, 13)");
        Assert.Equal(363, r.GetProperty("products").GetArrayLength());
        Assert.Equal(output.Data[(54 * 55 + 13) * 96 + 40], r.GetProperty("output").GetDouble(), 4);
        Assert.Empty(browser.ConsoleErrors);
    }

    [ChromiumFact]
    public async Task Explain_page_for_an_inception_network_lists_its_branches_without_console_errors()
    {
        var model = Architectures.Create("googlenet-mini", seed: 4);
        model.Build();
        var path = temp.File("googlenet/index.html");
        ExplainPage.Write(path, model, [TestImage()]);

        await using var browser = await HeadlessChromium.StartAsync(1600, 1000);
        await browser.NavigateAsync(new Uri(path).AbsoluteUri);
        Assert.True(await browser.WaitForAsync("window.naaniExplain !== undefined", TimeSpan.FromSeconds(10)));
        var rows = (await browser.EvaluateAsync("document.querySelectorAll('#network tbody tr').length")).GetInt32();
        Assert.Equal((await browser.EvaluateAsync("window.naaniExplain.data.layers.length")).GetInt32() + 1, rows);
        Assert.Contains("\u2190", (await browser.EvaluateAsync("document.getElementById('network').textContent")).GetString());
        var bars = await browser.EvaluateAsync("[...document.querySelectorAll('#prediction .bar')].map(b => Number(b.getAttribute('data-p')))");
        Assert.Equal(1.0, bars.EnumerateArray().Sum(b => b.GetDouble()), 3);
        Assert.Empty(browser.ConsoleErrors);
    }

    [ChromiumFact]
    public async Task Explain_serve_serves_the_page_on_loopback_until_stopped()
    {
        var imagePath = TestImagePng(out _);
        var child = CliRunner.Start(["explain", "-m", "mnist-baseline", "--image", imagePath, "-o", temp.File("served"), "--serve", "--port", "0"]);
        try
        {
            string? url = null;
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (url is null && DateTime.UtcNow < deadline && !child.Process.HasExited)
            {
                var match = ServedAt().Match(child.Output());
                if (match.Success) url = match.Groups[1].Value;
                else await Task.Delay(100);
            }
            Assert.True(url is not null, "naani explain --serve printed no address:\n" + child.Output());
            Assert.True(File.Exists(temp.File("served/index.html")));

            await using var browser = await HeadlessChromium.StartAsync();
            await browser.NavigateAsync(url);
            Assert.True(await browser.WaitForAsync("window.naaniExplain !== undefined", TimeSpan.FromSeconds(10)));
            Assert.Equal(7, (await browser.EvaluateAsync("document.querySelectorAll('#network tbody tr').length")).GetInt32());
            Assert.True(await browser.NonBlankPixelsAsync("#input-canvas") > 100);
            Assert.Empty(browser.ConsoleErrors);
        }
        finally
        {
            if (!child.Process.HasExited) child.Process.Kill(entireProcessTree: true);
            child.Process.WaitForExit();
        }
    }

    [GeneratedRegex(@"(-?[0-9.]+)\s*$")]
    private static partial Regex NumberAtEnd();

    [GeneratedRegex(@"Serving the page on (http://127\.0\.0\.1:[0-9]+)/")]
    private static partial Regex ServedAt();
}
