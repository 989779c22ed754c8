using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Naani;
using Naani.Models;
using Naani.Onnx;

/// ONNX Runtime's inference speed on a built-in model exported by Naani.Onnx: the deployment baseline that
/// `naani bench --inference` is compared with (same model, seed 0, batch, threads, warm-up and steps).
/// Usage: Naani.Bench ort --model NAME --batch-size B [--threads T] [--steps N] [--warmup W] [--json FILE]
static class OrtBench
{
    const string Usage = "usage: Naani.Bench ort --model NAME --batch-size B [--threads T] [--steps N (20)] [--warmup W (3)] [--json FILE]";

    public static int Run(string[] args)
    {
        string? model = null, json = null;
        int batchSize = 0, threads = Environment.ProcessorCount, steps = 20, warmup = 3;
        for (int i = 0; i < args.Length; i++)
        {
            string option = args[i];
            if (i + 1 >= args.Length) return Fail($"{option} needs a value.");
            string value = args[++i];
            switch (option)
            {
                case "--model" or "-m": model = value; break;
                case "--batch-size" or "-b": batchSize = PositiveInt(option, value); break;
                case "--threads" or "-t": threads = PositiveInt(option, value); break;
                case "--steps" or "-n": steps = PositiveInt(option, value); break;
                case "--warmup" or "-w": warmup = PositiveInt(option, value, allowZero: true); break;
                case "--json": json = value; break;
                default: return Fail($"unknown option '{option}'.");
            }
            if (batchSize < 0 || threads < 0 || steps < 0 || warmup < 0) return Fail($"{option} must be a positive integer; got '{value}'.");
        }
        if (model is null || batchSize == 0) return Fail("--model and --batch-size are required.");
        if (!Architectures.Names.Contains(model, StringComparer.OrdinalIgnoreCase))
            return Fail($"unknown model '{model}'; built-in models: {string.Join(", ", Architectures.Names)}.");

        var naani = Architectures.Create(model, seed: 0);
        var onnx = OnnxExporter.ExportToBytes(naani);
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        using var session = new InferenceSession(onnx, options);

        // Uniform pixels in [0, 1), as naani bench; the input and output buffers are made once and reused.
        var random = new Rng(1);
        var x = new float[batchSize * naani.InputShape.Size];
        for (int i = 0; i < x.Length; i++) x[i] = random.NextFloat();
        var y = new float[batchSize * naani.OutputShape.Size];
        using var input = OrtValue.CreateTensorValueFromMemory(x, [batchSize, .. naani.InputShape.ToArray().Select(d => (long)d)]);
        using var output = OrtValue.CreateTensorValueFromMemory(y, [batchSize, .. naani.OutputShape.ToArray().Select(d => (long)d)]);
        using var runOptions = new RunOptions();
        string[] inputNames = ["input"], outputNames = ["output"];
        OrtValue[] inputs = [input], outputs = [output];
        void Step() => session.Run(runOptions, inputNames, inputs, outputNames, outputs);

        Console.WriteLine($"ONNX Runtime {OrtEnv.Instance().GetVersionString()}: {naani.Name} ({naani.ParameterCount:N0} parameters, input {naani.InputShape}, " +
            $"{onnx.Length / (1024.0 * 1024.0):N1} MiB ONNX), inference, batch {batchSize}, {threads} threads, {warmup} warm-up + {steps} timed steps");
        for (int i = 0; i < warmup; i++) Step();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) Step();
        double seconds = clock.Elapsed.TotalSeconds;

        double msPerStep = seconds * 1000 / steps;
        double imagesPerSecond = (double)steps * batchSize / seconds;
        long peakRss = Process.GetCurrentProcess().PeakWorkingSet64;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"images/s {imagesPerSecond:0.0}, ms/step {msPerStep:0.00}, peak working set {peakRss / (1024.0 * 1024.0):0} MiB"));

        if (json is not null)
        {
            var result = new JsonObject
            {
                ["framework"] = "onnxruntime",
                ["images_per_second"] = imagesPerSecond,
                ["ms_per_step"] = msPerStep,
                ["model"] = naani.Name,
                ["batch_size"] = batchSize,
                ["threads"] = threads,
                ["mode"] = "inference",
                ["steps"] = steps,
                ["warmup"] = warmup,
                ["peak_rss_bytes"] = peakRss,
                ["onnxruntime_version"] = OrtEnv.Instance().GetVersionString(),
            };
            File.WriteAllText(json, result.ToJsonString() + "\n");
        }
        return 0;
    }

    static int PositiveInt(string option, string value, bool allowZero = false) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && (n > 0 || allowZero && n == 0) ? n : -1;

    static int Fail(string message)
    {
        Console.Error.WriteLine($"error: {message}");
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
