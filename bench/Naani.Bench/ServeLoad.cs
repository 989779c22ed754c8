using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Naani;
using Naani.Data;
using Naani.Models;
using Naani.Vision;

/// The load test of `naani serve` (bench/serve.sh): real Fashion-MNIST test images sent by 1, 8 and 64 concurrent
/// keep-alive clients for a fixed time each, in three forms: `png` (one PNG file per request to /v1/models/NAME/images),
/// `json` (one instance per request to :predict, TensorFlow Serving's REST body) and `tensor` (K samples of float32 per
/// request to :predict as application/octet-stream). For each: requests/s, images/s, latency percentiles, errors, the
/// server's CPU time per image and its peak RSS; beside the same model's in-process Predictor on the same images,
/// batched from tensors and with each PNG decoded first (on all threads, as the server does).
static class ServeLoad
{
    public static int Run(string[] args)
    {
        string Arg(string name, string? fallback = null)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback ?? throw new ArgumentException($"serve-load needs {name}.");
        }
        string url = Arg("--url"), name = Arg("--name"), modelFile = Arg("--model");
        int[] clients = [.. Arg("--clients", "1,8,64").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture))];
        double seconds = double.Parse(Arg("--seconds", "10"), CultureInfo.InvariantCulture);
        int maxBatch = int.Parse(Arg("--max-batch", "32"), CultureInfo.InvariantCulture);
        int threads = int.Parse(Arg("--threads", "2"), CultureInfo.InvariantCulture);
        int serverPid = int.Parse(Arg("--pid", "0"), CultureInfo.InvariantCulture);
        string? json = Array.IndexOf(args, "--json") >= 0 ? Arg("--json") : null;
        string[] modes = Arg("--modes", "png,json,tensor").Split(',');
        int perRequest = int.Parse(Arg("--per-request", "8"), CultureInfo.InvariantCulture);

        var (_, test, _) = Datasets.Load("fashion-mnist");
        int count = Math.Min(1000, test.Count);
        var pngs = EncodePngs(test, count);
        Console.WriteLine($"{count} Fashion-MNIST test images as PNG ({pngs.Average(p => p.Length):0} bytes on average)");

        Threading.MaxThreads = threads;
        var (batched, decoded) = InProcess(modelFile, pngs, maxBatch, seconds);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"In-process Predictor (max batch {maxBatch}, {threads} threads): {batched:N0} images/s batched from tensors, {decoded:N0} images/s decoding each PNG first"));

        var rows = new List<string>();
        foreach (string mode in modes)
        {
            var (path, make, images) = Requests(mode, pngs, test, perRequest);
            foreach (int c in clients)
            {
                long cpu0 = serverPid > 0 ? CpuTicks(serverPid) : 0;
                var r = Drive(new Uri($"{url}/v1/models/{name}{path}"), make, pngs.Length, c, seconds);
                double cpuPerImage = serverPid > 0 ? (CpuTicks(serverPid) - cpu0) * 1e6 / TicksPerSecond / (r.Requests * (double)images) : 0;
                long rss = serverPid > 0 ? PeakRss(serverPid) : 0;
                double perSecond = r.PerSecond * images;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{mode,-6} x{images,-2} {c,3} clients: {r.PerSecond,8:N0} requests/s {perSecond,8:N0} images/s  p50 {r.P50,6:0.00} ms  p95 {r.P95,6:0.00} ms  p99 {r.P99,6:0.00} ms  " +
                    $"errors {r.Errors}  server CPU {cpuPerImage,5:0} us/image  ({perSecond / batched:P0} of batched in-process, {perSecond / decoded:P0} of decode+predict)  peak RSS {rss / 1048576.0:0} MiB"));
                rows.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{{\"mode\": \"{mode}\", \"images_per_request\": {images}, \"clients\": {c}, \"requests_per_second\": {r.PerSecond:0.0}, \"images_per_second\": {perSecond:0.0}, \"p50_ms\": {r.P50:0.000}, \"p95_ms\": {r.P95:0.000}, \"p99_ms\": {r.P99:0.000}, \"errors\": {r.Errors}, \"requests\": {r.Requests}, \"server_cpu_us_per_image\": {cpuPerImage:0.0}, \"server_peak_rss_mib\": {rss / 1048576.0:0.0}}}"));
            }
        }
        if (json is not null)
            File.WriteAllText(json, string.Create(CultureInfo.InvariantCulture,
                $"{{\"in_process_batched_images_per_second\": {batched:0.0}, \"in_process_decode_and_predict_images_per_second\": {decoded:0.0}, \"max_batch\": {maxBatch}, \"threads\": {threads}, \"seconds\": {seconds}, \"runs\": [{string.Join(", ", rows)}]}}\n"));
        return 0;
    }

    static byte[][] EncodePngs(ImageDataset test, int count)
    {
        string folder = Directory.CreateTempSubdirectory("naani-serve-load-").FullName;
        try
        {
            var result = new byte[count][];
            for (int i = 0; i < count; i++)
            {
                string file = Path.Combine(folder, $"{i}.png");
                ImageFile.SavePng(new Tensor(new Shape(28, 28, 1), test.Images.Sample(i).ToArray()), file);
                result[i] = File.ReadAllBytes(file);
            }
            return result;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    static (double Batched, double Decoded) InProcess(string modelFile, byte[][] pngs, int maxBatch, double seconds)
    {
        var predictor = Model.Load(modelFile).CreatePredictor(maxBatch);
        int size = predictor.InputShape.Size, n = pngs.Length;
        var samples = new float[n * size];
        for (int i = 0; i < n; i++)
            if (!ImageFile.TryDecode(pngs[i], $"image {i}", 28, 28, ColorMode.Grayscale, samples.AsSpan(i * size, size), out var reason))
                throw new InvalidDataException(reason);
        var outputs = new float[maxBatch * predictor.OutputSize];
        var batch = new float[maxBatch * size];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Threading.MaxThreads };

        double Measure(bool decode)
        {
            long images = 0;
            var clock = Stopwatch.StartNew();
            for (int start = 0; clock.Elapsed.TotalSeconds < seconds / 2; start = (start + maxBatch) % (n - maxBatch))
            {
                if (decode)
                {
                    int first = start;
                    Parallel.For(0, maxBatch, parallel, j =>
                        ImageFile.TryDecode(pngs[first + j], "", 28, 28, ColorMode.Grayscale, batch.AsSpan(j * size, size), out _));
                }
                else samples.AsSpan(start * size, maxBatch * size).CopyTo(batch);
                predictor.PredictInto(batch, maxBatch, outputs);
                images += maxBatch;
            }
            return images / clock.Elapsed.TotalSeconds;
        }
        Measure(false);   // warm-up
        return (Measure(false), Measure(true));
    }

    sealed record Result(double PerSecond, double P50, double P95, double P99, long Errors, long Requests);

    /// The endpoint, a request-body maker (sample index -> body) and the images each request carries.
    static (string Path, Func<int, HttpContent> Make, int Images) Requests(string mode, byte[][] pngs, ImageDataset test, int perRequest)
    {
        int n = pngs.Length;
        switch (mode)
        {
            case "png":
                return ("/images", i => Body(pngs[i % n], "image/png"), 1);
            case "json":
                var json = new byte[n][];
                for (int i = 0; i < n; i++)
                {
                    var pixels = test.Images.Sample(i);
                    var text = new System.Text.StringBuilder("{\"instances\": [[");
                    for (int y = 0; y < 28; y++)
                    {
                        text.Append(y == 0 ? "[" : ", [");
                        for (int x = 0; x < 28; x++) text.Append(x == 0 ? "" : ", ").Append(pixels[y * 28 + x].ToString("0.####", CultureInfo.InvariantCulture));
                        text.Append(']');
                    }
                    json[i] = System.Text.Encoding.UTF8.GetBytes(text.Append("]]}").ToString());
                }
                return (":predict", i => Body(json[i % n], "application/json"), 1);
            case "tensor":
                int size = test.Images.SampleSize;
                var tensors = new byte[n / perRequest][];
                for (int r = 0; r < tensors.Length; r++)
                {
                    tensors[r] = new byte[perRequest * size * sizeof(float)];
                    for (int j = 0; j < perRequest; j++)
                        System.Runtime.InteropServices.MemoryMarshal.AsBytes(test.Images.Sample(r * perRequest + j)).CopyTo(tensors[r].AsSpan(j * size * sizeof(float)));
                }
                return (":predict", i => Body(tensors[i % tensors.Length], "application/octet-stream"), perRequest);
            default:
                throw new ArgumentException($"serve-load: unknown mode '{mode}' (png, json, tensor).");
        }
    }

    static ByteArrayContent Body(byte[] bytes, string type)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        return content;
    }

    static Result Drive(Uri target, Func<int, HttpContent> make, int n, int clients, double seconds)
    {
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = clients, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        // Warm-up: every connection once.
        Task.WaitAll([.. Enumerable.Range(0, clients).Select(i => Post(http, target, make(i)))]);
        var latencies = new List<double>[clients];
        long errors = 0;
        var clock = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, clients).Select(async c =>
        {
            var mine = latencies[c] = [];
            int i = c;
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                long t0 = Stopwatch.GetTimestamp();
                bool ok = await Post(http, target, make(i));
                mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                if (!ok) Interlocked.Increment(ref errors);
                i = (i + clients) % n;
            }
        }).ToArray();
        Task.WaitAll(tasks);
        double elapsed = clock.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).OrderBy(v => v).ToArray();
        double P(double q) => all.Length == 0 ? 0 : all[Math.Min(all.Length - 1, (int)(q * all.Length))];
        return new Result(all.Length / elapsed, P(0.50), P(0.95), P(0.99), errors, all.Length);
    }

    static async Task<bool> Post(HttpClient http, Uri target, HttpContent content)
    {
        try
        {
            using var response = await http.PostAsync(target, content);
            await response.Content.ReadAsByteArrayAsync();
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    const double TicksPerSecond = 100;   // USER_HZ: /proc's clock ticks, 100 on Linux

    /// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15).
    static long CpuTicks(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    /// VmHWM: the process's peak resident set, in bytes.
    static long PeakRss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }
}
