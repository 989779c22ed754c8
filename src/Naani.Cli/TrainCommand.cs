using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Spectre.Console;

namespace Naani.Cli;

/// naani train: builds a built-in architecture for a dataset, trains it, evaluates it on the test split and
/// writes DIR/model.naani and DIR/metrics.json.
static class TrainCommand
{
    public const string ModelFile = "model.naani";
    public const string MetricsFile = "metrics.json";

    sealed record Settings(
        string Model, string Data, int Epochs, int BatchSize, int Seed, int Threads, string? Out,
        string Optimizer, double? LearningRate, double ValidationSplit, ImageDataSettings Images);

    public static Command Create()
    {
        var model = Commands.ArchitectureOption();
        var data = Commands.DataOption();
        var epochs = new Option<int>("--epochs", "-e") { Description = "Passes over the training data.", HelpName = "N", DefaultValueFactory = _ => 1 }.MustBePositive();
        var batchSize = Commands.BatchSizeOption(32);
        var seed = new Option<int>("--seed", "-s") { Description = "Seed for the initial weights, shuffling and dropout.", HelpName = "S", DefaultValueFactory = _ => 42 };
        var threads = Commands.ThreadsOption();
        var output = new Option<string?>("--out", "-o") { Description = "Folder for model.naani and metrics.json [default: runs/<model>-<yyyyMMdd-HHmmss>].", HelpName = "DIR" };
        var optimizer = new Option<string>("--optimizer") { Description = "adam, sgd or rmsprop.", HelpName = "NAME", DefaultValueFactory = _ => "adam" };
        optimizer.AcceptOnlyFromAmong("adam", "sgd", "rmsprop");
        var learningRate = new Option<double?>("--learning-rate", "--lr") { Description = "Step size [default: the optimizer's: adam 0.001, sgd 0.01, rmsprop 0.001].", HelpName = "LR" }
            .Check(value => value is not { } lr || (lr > 0 && double.IsFinite(lr)) ? null : $"--learning-rate must be a positive number; got {lr.ToString(CultureInfo.InvariantCulture)}.");
        var validationSplit = new Option<double>("--validation-split") { Description = "Fraction of the training data held out for validation (its last samples, as in Keras); 0 for none.", HelpName = "F", DefaultValueFactory = _ => 0.1 }
            .Check(value => value >= 0 && value < 1 ? null : $"--validation-split must be in [0, 1); got {value.ToString(CultureInfo.InvariantCulture)}.");

        var command = new Command("train", "Train a built-in model on a dataset, evaluate it on the test split, and save the model and its metrics.")
        {
            model, data, epochs, batchSize, seed, threads, output, optimizer, learningRate, validationSplit,
        };
        var images = new ImageDataOptions();
        images.AddTo(command);
        Commands.SetAction(command, parse => Run(new Settings(
            parse.GetValue(model)!, parse.GetValue(data)!, parse.GetValue(epochs), parse.GetValue(batchSize), parse.GetValue(seed),
            parse.GetValue(threads), parse.GetValue(output), parse.GetValue(optimizer)!, parse.GetValue(learningRate), parse.GetValue(validationSplit), images.Read(parse))));
        return command;
    }

    static int Run(Settings settings)
    {
        Threading.MaxThreads = settings.Threads;
        using var data = TrainingData.Open(settings.Data, settings.Images, Architectures.DefaultInputShape(settings.Model),
            settings.ValidationSplit, settings.BatchSize, settings.Seed);
        var source = data.Source;

        var model = Architectures.Create(settings.Model, settings.Seed, inputShape: data.ImageShape, classes: data.NumClasses);
        var optimizer = Optimizer.Parse(settings.Optimizer);
        if (settings.LearningRate is { } lr) optimizer.LearningRate = lr;
        var loss = Loss.Parse(Architectures.DefaultLoss(model, sparseLabels: true));
        // googlenet-mini trains on loss1 + 0.3 loss2 + 0.3 loss3 (its auxiliary classifiers); other models have one output.
        model.Compile(optimizer, loss, Architectures.LossWeights(settings.Model), "accuracy");
        model.ClassNames = data.ClassNames;

        AnsiConsole.MarkupLine($"Optimizer {optimizer.Name} (learning rate {optimizer.LearningRate.ToString(CultureInfo.InvariantCulture)}), loss {loss.Name}, " +
            $"batch size {settings.BatchSize}, seed {settings.Seed}, {Threading.MaxThreads} threads");
        Commands.WriteRaw(model.Summary());

        var clock = Stopwatch.StartNew();
        var history = ProgressCallback.Fit(callback => data.Fit(model, settings.BatchSize, settings.Epochs, callback));
        double trainingSeconds = clock.Elapsed.TotalSeconds;

        var evaluations = data.Evaluate(model, settings.BatchSize, settings.Data).ToList();
        foreach (var (title, result) in evaluations) Report.Print(result, title);
        var evaluation = evaluations.FirstOrDefault(e => e.Name.StartsWith("Test", StringComparison.Ordinal)).Result;
        var validationEvaluation = evaluations.FirstOrDefault(e => e.Name.StartsWith("Validation", StringComparison.Ordinal)).Result;

        var directory = Path.GetFullPath(settings.Out ?? Path.Combine("runs", $"{settings.Model.ToLowerInvariant()}-{DateTime.Now:yyyyMMdd-HHmmss}"));
        Directory.CreateDirectory(directory);
        var modelPath = Path.Combine(directory, ModelFile);
        var metricsPath = Path.Combine(directory, MetricsFile);
        model.Save(modelPath, includeOptimizer: true); // atomic: written beside, then renamed over

        var metrics = new JsonObject
        {
            ["model"] = model.Name,
            ["dataset"] = settings.Data,
            ["data_source"] = source,
            ["epochs"] = settings.Epochs,
            ["batch_size"] = settings.BatchSize,
            ["seed"] = settings.Seed,
            ["threads"] = Threading.MaxThreads,
            ["optimizer"] = settings.Optimizer,
            ["learning_rate"] = optimizer.LearningRate,
            ["parameters"] = model.ParameterCount,
            ["test"] = evaluation is null ? null : Report.ToJson(evaluation),
            ["validation"] = validationEvaluation is not null ? Report.ToJson(validationEvaluation) : history.Values.ContainsKey("val_loss")
                ? new JsonObject { ["accuracy"] = history["val_accuracy"][^1], ["loss"] = history["val_loss"][^1] }
                : null,
            ["history"] = new JsonObject
            {
                ["loss"] = Series(history, "loss"),
                ["accuracy"] = Series(history, "accuracy"),
                ["val_loss"] = Series(history, "val_loss"),
                ["val_accuracy"] = Series(history, "val_accuracy"),
            },
            ["training"] = new JsonObject
            {
                ["images_per_second"] = history.Epochs == 0 ? 0 : history["images_per_second"].Average(),
                ["seconds"] = trainingSeconds,
            },
        };
        RunReport.AddImageData(metrics, data, settings.Images);
        Report.WriteJson(metricsPath, metrics);
        var reportFiles = RunReport.Write(directory, model, settings.Model, settings.Data, metrics, history, evaluations);

        AnsiConsole.WriteLine();
        AnsiConsole.MarkupLine($"Saved [bold]{Markup.Escape(modelPath)}[/]");
        AnsiConsole.MarkupLine($"Saved [bold]{Markup.Escape(metricsPath)}[/]");
        foreach (var file in reportFiles) AnsiConsole.MarkupLine($"Saved [bold]{Markup.Escape(file)}[/]");
        return Commands.Success;
    }

    static JsonArray Series(History history, string key) =>
        history.Values.TryGetValue(key, out var values) ? new JsonArray([.. values.Select(v => (JsonNode?)v)]) : [];
}
