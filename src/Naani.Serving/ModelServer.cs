using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Naani.Vision;

namespace Naani.Serving;

/// `naani serve`: models behind HTTP on Kestrel, TensorFlow Serving's REST API and image uploads.
///   POST /v1/models/{name}:predict   {"instances": [...NHWC arrays...]} -> {"predictions": [[...outputs...]]}
///   POST /v1/models/{name}/images    an image body (image/png, image/jpeg, image/webp, image/bmp, image/gif), or several
///                                    as multipart/form-data -> {"predictions": [{"class", "index", "probability", "top"}]}
///   GET  /v1/models, /v1/models/{name}   what is served: input shape, classes, parameters, file checksum
///   GET  /healthz (alive), /readyz (models loaded and warmed up), /metrics (Prometheus text format)
/// Requests for one model are batched dynamically (DynamicBatcher). Bad input is a 400 with a message saying what is
/// wrong, an unknown model 404, a body over --max-body-mb 413, a full queue 503 with Retry-After; only a bug is a 500.
/// Stopping (SIGTERM, Ctrl+C, StopAsync) finishes the requests in flight first.
public sealed class ModelServer : IAsyncDisposable
{
    readonly WebApplication app;
    readonly Dictionary<string, ServedModel> models;
    readonly ServerMetrics metrics;
    readonly ServeOptions options;
    volatile bool ready;

    ModelServer(WebApplication app, Dictionary<string, ServedModel> models, ServerMetrics metrics, ServeOptions options)
    {
        this.app = app;
        this.models = models;
        this.metrics = metrics;
        this.options = options;
    }

    /// The address the server listens on, e.g. http://127.0.0.1:8080 (with port 0, the port it was given).
    public string Address { get; private set; } = "";

    public IReadOnlyDictionary<string, ServedModel> Models => models;

    /// Loads every model (name, file), warms it up, and starts listening. log receives one line per event.
    public static async Task<ModelServer> StartAsync(IReadOnlyList<(string Name, string Path)> files, ServeOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        options.Validate();
        if (files.Count == 0) throw new ArgumentException("Give at least one model to serve.", nameof(files));
        var duplicate = files.GroupBy(f => f.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Two models are named '{duplicate.Key}': give each its own --name.");
        if (!IPAddress.TryParse(options.Host, out var address) && options.Host != "localhost")
            throw new ArgumentException($"--host must be an IP address or localhost; got '{options.Host}'.");

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = (long)(options.MaxBodyMegabytes * 1024 * 1024);
            if (options.Host == "localhost") kestrel.ListenLocalhost(options.Port);
            else kestrel.Listen(address!, options.Port);
        });
        var app = builder.Build();

        var models = new Dictionary<string, ServedModel>(StringComparer.Ordinal);
        var metrics = new ServerMetrics(() => models.Values.Select(m => (m.Name, m.Batcher.QueueDepth)));
        var server = new ModelServer(app, models, metrics, options);
        try
        {
            foreach (var (name, path) in files)
            {
                var clock = Stopwatch.StartNew();
                var served = ServedModel.Load(name, path, options, samples => metrics.BatchSize.WithLabels(name).Observe(samples));
                models[name] = served;
                log?.Invoke($"Loaded '{name}' from {path}: {served.Model.Name}, input {served.Model.InputShape}, {served.Model.ParameterCount:N0} parameters, " +
                    $"{served.Predictor.ClassNames.Count} classes, warmed up in {clock.Elapsed.TotalSeconds:0.00} s");
            }
        }
        catch
        {
            foreach (var m in models.Values) await m.DisposeAsync();
            throw;
        }
        server.Map();
        await app.StartAsync();
        server.Address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.ready = true;
        log?.Invoke($"Serving {string.Join(", ", models.Keys)} on {server.Address} (max batch {options.MaxBatch}, max delay {options.MaxDelayMilliseconds} ms, " +
            $"queue {options.MaxQueue}, body {options.MaxBodyMegabytes} MiB, " +
            (options.Replicas > 1 ? $"{options.Replicas} replicas of one thread each)" : $"{Threading.MaxThreads} threads)"));
        return server;
    }

    /// Completes when the server has stopped (SIGTERM, Ctrl+C or StopAsync).
    public Task WaitForShutdownAsync() => app.WaitForShutdownAsync();

    /// Stops listening, lets the requests in flight finish, then stops the batching loops.
    public async Task StopAsync()
    {
        ready = false;
        await app.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        ready = false;
        await app.StopAsync();
        foreach (var m in models.Values) await m.DisposeAsync();
        await app.DisposeAsync();
    }

    void Map()
    {
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", () => ready ? Results.Text("ready\n") : Results.Text("loading\n", statusCode: 503));
        app.MapGet("/metrics", async (HttpContext context) =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.WriteAsync(context.Response.Body, context.RequestAborted);
        });
        app.MapGet("/v1/models", (HttpContext context) => Json(context, 200, w =>
        {
            w.WriteStartArray("models");
            foreach (var m in models.Values) Describe(w, m);
            w.WriteEndArray();
        }));
        app.MapGet("/v1/models/{name}", (HttpContext context, string name) => Handle(context, name, "metadata", m => Json(context, 200, w =>
        {
            w.WritePropertyName("model");
            Describe(w, m);
        })));
        // TensorFlow Serving's verb follows a colon in the last segment: /v1/models/{name}:predict.
        app.MapPost("/v1/models/{target}", (HttpContext context, string target) =>
        {
            int colon = target.LastIndexOf(':');
            string name = colon < 0 ? target : target[..colon], verb = colon < 0 ? "" : target[(colon + 1)..];
            if (verb != "predict")
                return Error(context, 404, $"POST /v1/models/{name}{(verb.Length > 0 ? ":" + verb : "")} is not an endpoint: use /v1/models/{name}:predict (JSON instances) or /v1/models/{name}/images (image files).");
            return Handle(context, name, "predict", m => PredictInstances(context, m));
        });
        app.MapPost("/v1/models/{name}/images", (HttpContext context, string name) => Handle(context, name, "images", m => PredictImages(context, m)));
        app.MapFallback((HttpContext context) => Error(context, 404,
            $"{context.Request.Method} {context.Request.Path} is not an endpoint; see GET /v1/models, POST /v1/models/{{name}}:predict, POST /v1/models/{{name}}/images, /healthz, /readyz, /metrics."));
    }

    /// Runs an endpoint for one model: 404 for an unknown one, the errors mapped to their status codes, metrics recorded.
    async Task Handle(HttpContext context, string name, string endpoint, Func<ServedModel, Task> body)
    {
        long start = Stopwatch.GetTimestamp();
        string label = models.ContainsKey(name) ? name : "(unknown)";
        try
        {
            if (!models.TryGetValue(name, out var model))
            {
                await Error(context, 404, $"There is no model '{name}'; this server has: {string.Join(", ", models.Keys)}.");
                return;
            }
            await body(model);
        }
        catch (BadRequestException e)
        {
            await Error(context, 400, e.Message);
        }
        catch (QueueFullException e)
        {
            context.Response.Headers.RetryAfter = "1";
            await Error(context, 503, e.Message);
        }
        catch (BadHttpRequestException e)
        {
            // Kestrel's own: 413 for a body over the limit, 400 for a malformed request.
            await Error(context, e.StatusCode, e.StatusCode == 413
                ? $"The body is larger than the {options.MaxBodyMegabytes} MiB this server takes (--max-body-mb)."
                : e.Message);
        }
        catch (ObjectDisposedException)
        {
            context.Response.Headers.RetryAfter = "1";
            await Error(context, 503, "The server is shutting down.");
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        finally
        {
            metrics.Requests.WithLabels(label, endpoint, context.Response.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
            metrics.Latency.WithLabels(label, endpoint).Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
    }

    async Task PredictInstances(HttpContext context, ServedModel model)
    {
        using var arrival = model.Batcher.Arrive();
        string? type = context.Request.ContentType;
        bool binary = type is not null && type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase);
        if (!binary && !IsJson(type))
            throw new BadRequestException($"Content-Type must be application/json (instances) or application/octet-stream (float32 tensors) for :predict; got '{type}'. Send images to /v1/models/{model.Name}/images.");
        float[] outputs;
        int count;
        long? length = context.Request.ContentLength;
        if (binary && length is > 0 && length <= (long)(options.MaxBodyMegabytes * 1024 * 1024))
        {
            // The body goes straight into a pooled float array: no byte copies, nothing left for the large-object heap.
            count = Instances.BinaryCount(length.Value, model.Predictor.InputShape);
            int values = (int)(length.Value / sizeof(float));
            var pooled = ArrayPool<float>.Shared.Rent(values);
            try
            {
                await ReadInto(context, pooled.AsMemory(0, values));
                Instances.CheckFinite(pooled.AsSpan(0, values), model.Predictor.InputShape);
                outputs = await model.Batcher.PredictAsync(pooled.AsMemory(0, values), count, arrival);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(pooled);
            }
        }
        else
        {
            var body = await ReadBody(context);
            (var samples, count) = binary ? Instances.ReadBinary(body, model.Predictor.InputShape) : Instances.Read(body, model.Predictor.InputShape);
            outputs = await model.Batcher.PredictAsync(samples, count, arrival);
        }
        int width = model.Predictor.OutputSize;
        await Json(context, 200, w =>
        {
            w.WriteStartArray("predictions");
            for (int i = 0; i < count; i++)
            {
                w.WriteStartArray();
                for (int j = 0; j < width; j++) w.WriteNumberValue(outputs[i * width + j]);
                w.WriteEndArray();
            }
            w.WriteEndArray();
        });
    }

    static readonly string[] ImageTypes = ["image/png", "image/jpeg", "image/jpg", "image/webp", "image/bmp", "image/gif", "image/x-ms-bmp"];

    async Task PredictImages(HttpContext context, ServedModel model)
    {
        using var arrival = model.Batcher.Arrive();
        var shape = model.Predictor.InputShape;
        int size = shape.Size;
        int top = options.DefaultTop;
        if (context.Request.Query.TryGetValue("top", out var topText) &&
            (!int.TryParse(topText, System.Globalization.CultureInfo.InvariantCulture, out top) || top < 1))
            throw new BadRequestException($"top must be a positive whole number; got '{topText}'.");

        List<(string Name, byte[] Bytes)> images = [];
        string? type = context.Request.ContentType;
        if (type is not null && type.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            var form = await context.Request.ReadFormAsync(context.RequestAborted);
            foreach (var file in form.Files)
            {
                using var stream = new MemoryStream();
                await file.CopyToAsync(stream, context.RequestAborted);
                images.Add((file.FileName is { Length: > 0 } n ? n : file.Name, stream.ToArray()));
            }
            if (images.Count == 0) throw new BadRequestException("The multipart form holds no files: attach one or more images.");
        }
        else if (type is not null && ImageTypes.Any(t => type.StartsWith(t, StringComparison.OrdinalIgnoreCase)))
            images.Add(("the body", await ReadBody(context)));
        else
            throw new BadRequestException($"Content-Type must be an image (image/png, image/jpeg, image/webp, image/bmp, image/gif) or multipart/form-data; got '{type ?? "(none)"}'.");

        var samples = new float[images.Count * size];
        for (int i = 0; i < images.Count; i++)
        {
            var (name, bytes) = images[i];
            if (bytes.Length == 0) throw new BadRequestException($"Image {i} ({name}) is empty.");
            if (!ImageFile.TryDecode(bytes, name, shape[0], shape[1], model.Color, samples.AsSpan(i * size, size), out var reason, model.CropToAspectRatio))
                throw new BadRequestException($"Image {i} ({name}) cannot be read: {reason}");
        }
        var outputs = await model.Batcher.PredictAsync(samples, images.Count, arrival);
        int width = model.Predictor.OutputSize;
        await Json(context, 200, w =>
        {
            w.WriteStartArray("predictions");
            for (int i = 0; i < images.Count; i++)
            {
                var p = model.Predictor.Describe(outputs.AsSpan(i * width, width), top);
                w.WriteStartObject();
                w.WriteString("class", p.Class);
                w.WriteNumber("index", p.Index);
                w.WriteNumber("probability", p.Probability);
                w.WriteStartArray("top");
                foreach (var t in p.Top)
                {
                    w.WriteStartObject();
                    w.WriteString("class", t.Class);
                    w.WriteNumber("index", t.Index);
                    w.WriteNumber("probability", t.Probability);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    // application/x-www-form-urlencoded is what `curl -d` sends when told nothing else; TensorFlow Serving takes it too.
    static bool IsJson(string? type) => type is null || type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) ||
        type.StartsWith("text/json", StringComparison.OrdinalIgnoreCase) || type.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase);

    /// Reads a body of exactly destination's size in bytes (its Content-Length) into destination, as little-endian
    /// float32; Kestrel refuses a body shorter than its Content-Length (BadHttpRequestException, a 400).
    static async Task ReadInto(HttpContext context, Memory<float> destination)
    {
        var reader = context.Request.BodyReader;
        long copied = 0, total = (long)destination.Length * sizeof(float);
        while (true)
        {
            var result = await reader.ReadAsync(context.RequestAborted);
            var buffer = result.Buffer;
            copied = CopyBytes(buffer, destination.Span, copied, total);
            reader.AdvanceTo(buffer.End);
            if (result.IsCompleted || copied == total) break;
        }
        if (copied != total) throw new BadRequestException($"The body ended after {copied} of the {total} bytes its Content-Length announced.");
        if (!BitConverter.IsLittleEndian)
        {
            var span = destination.Span;
            for (int i = 0; i < span.Length; i++) span[i] = BitConverter.Int32BitsToSingle(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(BitConverter.SingleToInt32Bits(span[i])));
        }
    }

    static long CopyBytes(in ReadOnlySequence<byte> buffer, Span<float> destination, long copied, long total)
    {
        var bytes = MemoryMarshal.AsBytes(destination);
        foreach (var segment in buffer)
        {
            int n = (int)Math.Min(segment.Length, total - copied);
            segment.Span[..n].CopyTo(bytes[(int)copied..]);
            copied += n;
            if (copied == total) break;
        }
        return copied;
    }

    /// The whole body; Kestrel stops one over the limit with a 413 (BadHttpRequestException).
    static async Task<byte[]> ReadBody(HttpContext context)
    {
        using var buffer = new MemoryStream(context.Request.ContentLength is > 0 and < int.MaxValue ? (int)context.Request.ContentLength : 4096);
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        if (buffer.Length == 0) throw new BadRequestException("The body is empty.");
        return buffer.ToArray();
    }

    static void Describe(Utf8JsonWriter w, ServedModel m)
    {
        w.WriteStartObject();
        w.WriteString("name", m.Name);
        w.WriteString("model", m.Model.Name);
        w.WriteString("file", m.Path);
        w.WriteString("sha256", m.Sha256);
        w.WriteStartArray("input_shape");
        foreach (var d in m.Model.InputShape.ToArray()) w.WriteNumberValue(d);
        w.WriteEndArray();
        w.WriteString("color", m.Color == ColorMode.Rgb ? "rgb" : "grayscale");
        w.WriteBoolean("crop_to_aspect_ratio", m.CropToAspectRatio);
        w.WriteNumber("outputs", m.Predictor.OutputSize);
        w.WriteStartArray("classes");
        foreach (var c in m.Predictor.ClassNames) w.WriteStringValue(c);
        w.WriteEndArray();
        w.WriteNumber("parameters", m.Model.ParameterCount);
        w.WriteNumber("max_batch", m.Predictor.MaxBatch);
        w.WriteEndObject();
    }

    // Class names and messages as written (no \u0027 for an apostrophe): the body is JSON, not HTML.
    static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static Task Json(HttpContext context, int status, Action<Utf8JsonWriter> write)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }
        return context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).AsTask();
    }

    static Task Error(HttpContext context, int status, string message)
    {
        if (context.Response.HasStarted) return Task.CompletedTask;
        return Json(context, status, w => w.WriteString("error", message));
    }
}
