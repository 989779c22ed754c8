using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Naani.Models;
using Naani.Serving;
using Naani.Tests.Kernels;
using Naani.Vision;

namespace Naani.Tests.Serving;

/// A real server on a free loopback port: its answers are Predict's, concurrent clients each get their own, and
/// every kind of bad request gets its status code and a message, never a 500.
[Collection(ThreadingCollection.Name)]
public sealed class ModelServerTests : IAsyncLifetime
{
    readonly Serialization.TempDirectory temp = new();
    Model model = null!;
    string path = "";
    ModelServer server = null!;
    readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(60) };

    static readonly string[] Classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    public async Task InitializeAsync()
    {
        model = Architectures.Create("mnist-baseline", seed: 5);
        model.ClassNames = Classes;
        path = temp.File("fashion.naani");
        model.Save(path);
        server = await ModelServer.StartAsync([("fashion", path)], new ServeOptions { Port = 0, MaxBatch = 16 });
    }

    public async Task DisposeAsync()
    {
        await server.DisposeAsync();
        http.Dispose();
        temp.Dispose();
    }

    static Tensor Images(int n, ulong seed)
    {
        var rng = new Rng(seed);
        var x = new Tensor(n, 28, 28, 1);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat();
        return x;
    }

    static string InstancesJson(Tensor x)
    {
        var instances = new JsonArray();
        for (int n = 0; n < x.Batch; n++)
        {
            var rows = new JsonArray();
            for (int h = 0; h < 28; h++)
            {
                var row = new JsonArray();
                for (int w = 0; w < 28; w++) row.Add(new JsonArray(x.Data[(n * 28 + h) * 28 + w]));
                rows.Add(row);
            }
            instances.Add(rows);
        }
        return new JsonObject { ["instances"] = instances }.ToJsonString();
    }

    async Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> Send(HttpRequestMessage request)
    {
        var response = await http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        JsonNode? body = null;
        try
        {
            body = JsonNode.Parse(text);
        }
        catch (JsonException) { }
        return (response.StatusCode, body, response);
    }

    Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> Post(string route, string content, string type) =>
        Send(new HttpRequestMessage(HttpMethod.Post, server.Address + route) { Content = new StringContent(content, new MediaTypeHeaderValue(type)) });

    Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> PostBytes(string route, byte[] content, string type)
    {
        var body = new ByteArrayContent(content);
        body.Headers.ContentType = new MediaTypeHeaderValue(type);
        return Send(new HttpRequestMessage(HttpMethod.Post, server.Address + route) { Content = body });
    }

    static void AssertPredictions(float[] expected, JsonNode body, int count)
    {
        var predictions = body["predictions"]!.AsArray();
        Assert.Equal(count, predictions.Count);
        for (int n = 0; n < count; n++)
            for (int c = 0; c < 10; c++)
                Assert.Equal(expected[n * 10 + c], predictions[n]![c]!.GetValue<float>(), 1e-5f);   // a tolerance, not rounding to 5 places
    }

    [Fact]
    public async Task Predict_in_tensorflow_servings_shape_answers_what_Predict_computes()
    {
        var x = Images(3, 1);
        var expected = model.Predict(x).Data;
        var (status, body, _) = await Post("/v1/models/fashion:predict", InstancesJson(x), "application/json");
        Assert.Equal(HttpStatusCode.OK, status);
        AssertPredictions(expected, body!, 3);
    }

    [Fact]
    public async Task Predict_takes_float32_tensors_as_an_octet_stream_and_answers_what_Predict_computes()
    {
        var x = Images(5, 3);
        var expected = model.Predict(x).Data;
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray();
        var (status, body, _) = await PostBytes("/v1/models/fashion:predict", bytes, "application/octet-stream");
        Assert.Equal(HttpStatusCode.OK, status);
        AssertPredictions(expected, body!, 5);

        // Not a whole number of samples, or a value that is not finite: 400 naming the fault.
        var (partial, error, _) = await PostBytes("/v1/models/fashion:predict", bytes[..^4], "application/octet-stream");
        Assert.Equal(HttpStatusCode.BadRequest, partial);
        Assert.Contains("not a whole number of samples", error!["error"]!.GetValue<string>());
        Assert.Contains("3136 bytes", error["error"]!.GetValue<string>());
        BitConverter.GetBytes(float.NaN).CopyTo(bytes, (2 * 784 + 17) * 4);
        var (nan, nanError, _) = await PostBytes("/v1/models/fashion:predict", bytes, "application/octet-stream");
        Assert.Equal(HttpStatusCode.BadRequest, nan);
        Assert.Contains("Sample 2", nanError!["error"]!.GetValue<string>());
        Assert.Contains("element 17", nanError["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task Concurrent_clients_each_get_their_own_answers_and_are_batched()
    {
        const int clients = 24;
        var inputs = Enumerable.Range(0, clients).Select(i => Images(1, (ulong)(100 + i))).ToArray();
        var expected = inputs.Select(x => model.Predict(x).Data).ToArray();
        var answers = await Task.WhenAll(Enumerable.Range(0, clients).Select(async i =>
        {
            var results = new List<float[]>();
            for (int r = 0; r < 5; r++)
            {
                var (status, body, _) = await Post("/v1/models/fashion:predict", InstancesJson(inputs[i]), "application/json");
                Assert.Equal(HttpStatusCode.OK, status);
                results.Add([.. body!["predictions"]![0]!.AsArray().Select(v => v!.GetValue<float>())]);
            }
            return results;
        }));
        for (int i = 0; i < clients; i++)
            foreach (var answer in answers[i])
                for (int c = 0; c < 10; c++) Assert.Equal(expected[i][c], answer[c], 5);

        string metrics = await http.GetStringAsync(server.Address + "/metrics");
        Assert.Contains("naani_requests_total{model=\"fashion\",endpoint=\"predict\",status=\"200\"}", metrics);
        // 120 requests took fewer forward passes than requests: they were batched.
        var count = metrics.Split('\n').Single(l => l.StartsWith("naani_batch_size_count{model=\"fashion\"}", StringComparison.Ordinal));
        Assert.True(double.Parse(count.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) < clients * 5, count);
    }

    [Fact]
    public async Task Replicas_answer_concurrent_tensor_requests_each_with_its_own_rows()
    {
        await using var replicated = await ModelServer.StartAsync([("m", path)],
            new ServeOptions { Port = 0, MaxBatch = 8, Replicas = 2, MaxBodyMegabytes = 0.1 });
        Assert.Equal(2, replicated.Models["m"].Batcher.Replicas);
        const int clients = 16;
        var inputs = Enumerable.Range(0, clients).Select(i => Images(1 + i % 3, (ulong)(300 + i))).ToArray();
        var expected = inputs.Select(x => model.Predict(x).Data).ToArray();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async i =>
        {
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(inputs[i].Data.AsSpan()).ToArray();
            for (int r = 0; r < 4; r++)
            {
                var content = new ByteArrayContent(bytes);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                var (status, body, _) = await Send(new HttpRequestMessage(HttpMethod.Post, replicated.Address + "/v1/models/m:predict") { Content = content });
                Assert.Equal(HttpStatusCode.OK, status);
                AssertPredictions(expected[i], body!, inputs[i].Batch);
            }
        }));

        // A tensor body over --max-body-mb (40 samples, 125,440 bytes > 0.1 MiB) is still a 413, not a pooled buffer.
        var tooBig = new ByteArrayContent(new byte[40 * 784 * 4]);
        tooBig.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var (bigStatus, bigBody, _) = await Send(new HttpRequestMessage(HttpMethod.Post, replicated.Address + "/v1/models/m:predict") { Content = tooBig });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, bigStatus);
        Assert.Contains("--max-body-mb", bigBody!["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task Images_one_as_the_body_or_several_as_a_form_give_classes_and_probabilities()
    {
        var x = Images(2, 7);
        var files = new[] { temp.File("a.png"), temp.File("b.png") };
        for (int i = 0; i < 2; i++)
            ImageFile.SavePng(new Tensor(new Shape(28, 28, 1), x.Data.AsSpan(i * 784, 784).ToArray()), files[i]);
        // What the server should see: the PNGs decoded as a Predictor user would.
        var decoded = new float[2 * 784];
        for (int i = 0; i < 2; i++) Assert.True(ImageFile.TryLoad(files[i], 28, 28, ColorMode.Grayscale, decoded.AsSpan(i * 784, 784), out _));
        var predictor = model.CreatePredictor();
        var expected = predictor.Predict(decoded, 2, top: 3);

        var (status, body, _) = await PostBytes("/v1/models/fashion/images?top=3", File.ReadAllBytes(files[0]), "image/png");
        Assert.Equal(HttpStatusCode.OK, status);
        var first = body!["predictions"]![0]!;
        Assert.Equal(expected[0].Class, first["class"]!.GetValue<string>());
        Assert.Equal(expected[0].Index, first["index"]!.GetValue<int>());
        Assert.Equal(expected[0].Probability, first["probability"]!.GetValue<float>(), 5);
        Assert.Equal(3, first["top"]!.AsArray().Count);

        using var form = new MultipartFormDataContent();
        for (int i = 0; i < 2; i++)
        {
            var part = new ByteArrayContent(File.ReadAllBytes(files[i]));
            part.Headers.ContentType = new MediaTypeHeaderValue("image/png");
            form.Add(part, "images", Path.GetFileName(files[i]));
        }
        (status, body, _) = await Send(new HttpRequestMessage(HttpMethod.Post, server.Address + "/v1/models/fashion/images?top=3") { Content = form });
        Assert.Equal(HttpStatusCode.OK, status);
        var predictions = body!["predictions"]!.AsArray();
        Assert.Equal(2, predictions.Count);
        for (int i = 0; i < 2; i++) Assert.Equal(expected[i].Class, predictions[i]!["class"]!.GetValue<string>());
    }

    [Fact]
    public async Task Metadata_health_and_readiness()
    {
        var (status, body, _) = await Send(new HttpRequestMessage(HttpMethod.Get, server.Address + "/v1/models/fashion"));
        Assert.Equal(HttpStatusCode.OK, status);
        var m = body!["model"]!;
        Assert.Equal(592074, m["parameters"]!.GetValue<long>());
        Assert.Equal([28, 28, 1], m["input_shape"]!.AsArray().Select(d => d!.GetValue<int>()));
        Assert.Equal(Classes, m["classes"]!.AsArray().Select(c => c!.GetValue<string>()));
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path))), m["sha256"]!.GetValue<string>());
        Assert.Equal("ok\n", await http.GetStringAsync(server.Address + "/healthz"));
        Assert.Equal("ready\n", await http.GetStringAsync(server.Address + "/readyz"));
    }

    [Fact]
    public async Task Bad_requests_get_400_with_a_message_and_never_500()
    {
        string route = "/v1/models/fashion:predict";
        var cases = new (string Route, byte[] Body, string Type, string Says)[]
        {
            (route, "{not json"u8.ToArray(), "application/json", "not valid JSON"),
            (route, "{\"instances\": []}"u8.ToArray(), "application/json", "empty"),
            (route, "{\"instances\": [[1, 2]]}"u8.ToArray(), "application/json", "expected a list of 28"),
            (route, "{\"rows\": 1}"u8.ToArray(), "application/json", "no \"instances\""),
            (route, Encoding.UTF8.GetBytes(InstancesJson(Images(1, 2)).Replace("[0.", "[\"x\", 0.")), "application/json", "expected a list of 1"),
            (route, "{}"u8.ToArray(), "text/plain", "Content-Type must be application/json (instances) or application/octet-stream"),
            ("/v1/models/fashion/images", "this is no image"u8.ToArray(), "image/png", "cannot be read"),
            ("/v1/models/fashion/images", "x"u8.ToArray(), "text/plain", "Content-Type must be an image"),
            ("/v1/models/fashion/images", [], "image/png", "empty"),
            ("/v1/models/fashion/images?top=zero", "x"u8.ToArray(), "image/png", "top must be"),
        };
        foreach (var (r, content, type, says) in cases)
        {
            var (status, body, _) = await PostBytes(r, content, type);
            Assert.True(status == HttpStatusCode.BadRequest, $"{r} {type}: {status} {body?.ToJsonString()}");
            Assert.Contains(says, body!["error"]!.GetValue<string>());
        }
        var (notFound, error, _) = await Post("/v1/models/nope:predict", "{}", "application/json");
        Assert.Equal(HttpStatusCode.NotFound, notFound);
        Assert.Contains("no model 'nope'", error!["error"]!.GetValue<string>());
        (notFound, _, _) = await Post("/v1/models/fashion:classify", "{}", "application/json");
        Assert.Equal(HttpStatusCode.NotFound, notFound);

        string metrics = await http.GetStringAsync(server.Address + "/metrics");
        Assert.DoesNotContain("status=\"500\"", metrics);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413_and_a_full_queue_is_503_with_retry_after()
    {
        await using var small = await ModelServer.StartAsync([("m", path)],
            new ServeOptions { Port = 0, MaxBatch = 32, MaxBodyMegabytes = 0.01, MaxQueue = 2 });
        var hold = new TaskCompletionSource();
        small.Models["m"].Batcher.HoldForTests = hold.Task;
        var big = new byte[64 * 1024];
        var tooBig = new ByteArrayContent(big);
        tooBig.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, small.Address + "/v1/models/m/images") { Content = tooBig });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("--max-body-mb", await response.Content.ReadAsStringAsync());

        // The batching loop is held after taking the first request, which keeps its place in the queue until its batch
        // runs: with room for two, the third request finds the queue full.
        string one = "{\"instances\": [" + string.Join(",", Enumerable.Repeat("[" + string.Join(",", Enumerable.Repeat("[" + string.Join(",", Enumerable.Repeat("0", 28)) + "]", 28)) + "]", 1)) + "]}";
        Task<HttpResponseMessage> Send() => http.PostAsync(small.Address + "/v1/models/m:predict", new StringContent(one, Encoding.UTF8, "application/json"));
        var first = Send();
        await Task.Delay(200);
        var second = Send();
        await Task.Delay(200);
        var third = await Send();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, third.StatusCode);
        Assert.Equal("1", third.Headers.RetryAfter!.Delta!.Value.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        hold.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await second).StatusCode);
    }

    [Fact]
    public async Task Stopping_finishes_the_requests_in_flight()
    {
        var slow = await ModelServer.StartAsync([("m", path)], new ServeOptions { Port = 0 });
        var hold = new TaskCompletionSource();
        slow.Models["m"].Batcher.HoldForTests = hold.Task;
        var x = Images(1, 3);
        var request = http.PostAsync(slow.Address + "/v1/models/m:predict", new StringContent(InstancesJson(x), Encoding.UTF8, "application/json"));
        await Task.Delay(300);   // the request is in the batching loop, held
        var stopping = slow.DisposeAsync().AsTask();
        await Task.Delay(300);
        Assert.False(request.IsCompleted);
        Assert.False(stopping.IsCompleted);   // the server waits for it
        hold.SetResult();
        var response = await request;
        await stopping;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["predictions"]![0]!.AsArray();
        Assert.Equal(model.Predict(x).Data[0], answer[0]!.GetValue<float>(), 5);
    }
}
