using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Spectre.Console;

namespace Naani.Cli;

/// naani bench: the throughput of one built-in model on random data, training steps or inference.
static class BenchCommand
{
    sealed record Settings(string Model, int BatchSize, int Threads, int Steps, int Warmup, bool Inference, string? Json, bool Profile);

    public static Command Create()
    {
        var model = Commands.ArchitectureOption();
        var batchSize = Commands.BatchSizeOption(32);
        var threads = Commands.ThreadsOption();
        var steps = new Option<int>("--steps", "-n") { Description = "Timed steps.", HelpName = "N", DefaultValueFactory = _ => 20 }.MustBePositive();
        var warmup = new Option<int>("--warmup", "-w") { Description = "Untimed steps first (JIT, allocation of the workspaces).", HelpName = "W", DefaultValueFactory = _ => 3 }.MustNotBeNegative();
        var inference = new Option<bool>("--inference") { Description = "Time Predict on one batch instead of training steps." };
        var json = new Option<string?>("--json") { Description = "Also write the results to this JSON file.", HelpName = "FILE" };
        var profile = new Option<bool>("--profile") { Description = "Also time every layer's forward and backward pass, the loss and the optimizer, and print where a step's time goes." };
        var command = new Command("bench", "Measure training (or inference) throughput of a built-in model on random data.")
        {
            model, batchSize, threads, steps, warmup, inference, json, profile,
        };
        Commands.SetAction(command, parse => Run(new Settings(
            parse.GetValue(model)!, parse.GetValue(batchSize), parse.GetValue(threads), parse.GetValue(steps),
            parse.GetValue(warmup), parse.GetValue(inference), parse.GetValue(json), parse.GetValue(profile))));
        return command;
    }

    static int Run(Settings settings)
    {
        Threading.MaxThreads = settings.Threads;
        var model = Architectures.Create(settings.Model, seed: 0);
        model.Compile(new Adam(), Loss.Parse(Architectures.DefaultLoss(model, sparseLabels: true)), "accuracy");
        var (x, y) = RandomBatch(model, settings.BatchSize);
        string mode = settings.Inference ? "inference" : "train";
        AnsiConsole.MarkupLine($"Benchmarking [bold]{model.Name}[/] ({model.ParameterCount:N0} parameters, input {model.InputShape}): " +
            $"{mode}, batch {settings.BatchSize}, {Threading.MaxThreads} threads, {settings.Warmup} warm-up + {settings.Steps} timed steps");

        Action step = settings.Inference ? () => model.Predict(x, settings.BatchSize) : () => model.TrainStep(x, y);
        for (int i = 0; i < settings.Warmup; i++)
            step();
        // Profiling adds two clock reads per layer and pass: negligible, but it is off unless asked for.
        if (settings.Profile) model.Profiler = new Profiler();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < settings.Steps; i++)
            step();
        double seconds = clock.Elapsed.TotalSeconds;

        double msPerStep = seconds * 1000 / settings.Steps;
        double imagesPerSecond = (double)settings.Steps * settings.BatchSize / seconds;
        long peakRss = Process.GetCurrentProcess().PeakWorkingSet64;

        var table = new Table().Border(TableBorder.Rounded).HideHeaders()
            .AddColumn("").AddColumn(new TableColumn("").RightAligned());
        table.AddRow("images/s", $"[bold green]{imagesPerSecond:N1}[/]");
        table.AddRow("ms/step", msPerStep.ToString("N2", CultureInfo.InvariantCulture));
        table.AddRow("peak working set", $"{peakRss / (1024.0 * 1024.0):N0} MiB");
        AnsiConsole.Write(table);
        if (model.Profiler is { } profiler)
        {
            if (settings.Inference) profiler.Steps = settings.Steps;
            Commands.WriteRaw(profiler.Report());
        }

        if (settings.Json is { } path)
        {
            Report.WriteJson(path, new JsonObject
            {
                ["images_per_second"] = imagesPerSecond,
                ["ms_per_step"] = msPerStep,
                ["model"] = model.Name,
                ["batch_size"] = settings.BatchSize,
                ["threads"] = Threading.MaxThreads,
                ["mode"] = mode,
                ["steps"] = settings.Steps,
                ["warmup"] = settings.Warmup,
                ["peak_rss_bytes"] = peakRss,
            });
            AnsiConsole.MarkupLine($"Saved [bold]{Markup.Escape(Path.GetFullPath(path))}[/]");
        }
        return Commands.Success;
    }

    /// Uniform pixels in [0, 1) and random valid labels, in the form the model's default loss takes.
    static (Tensor X, Tensor Y) RandomBatch(Model model, int batchSize)
    {
        var random = new Rng(1);
        var x = new Tensor(model.InputShape.WithBatch(batchSize));
        for (int i = 0; i < x.Length; i++)
            x.Data[i] = random.NextFloat();
        int outputs = model.OutputShape[^1];
        var y = outputs == 1 ? new Tensor(batchSize, 1) : new Tensor(batchSize);
        for (int n = 0; n < batchSize; n++)
            y.Data[n] = random.NextInt(Math.Max(2, outputs));
        return (x, y);
    }
}
