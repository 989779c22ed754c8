using System.CommandLine;
using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Naani.Callbacks;
using Naani.Distributed;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Naani.Serialization;
using Naani.Serving;
using Naani.Vision;
using Spectre.Console;

namespace Naani.Cli;

/// naani train: builds a built-in architecture for a dataset, trains it, evaluates it on the test split and
/// writes DIR/model.naani and DIR/metrics.json. While it trains, DIR/checkpoints/ holds the newest checkpoints
/// (every epoch end, and every --checkpoint-every steps); `naani train --resume DIR` continues a run that was
/// killed, bit for bit, with the options it was started with (kept in each checkpoint).
static class TrainCommand
{
    public const string ModelFile = "model.naani";
    public const string MetricsFile = "metrics.json";

    public const string CheckpointFolder = "checkpoints";

    sealed record Settings(
        string Model, string Data, int Epochs, int BatchSize, int Seed, int Threads, string? Out,
        string Optimizer, double? LearningRate, double ValidationSplit, ImageDataSettings Images,
        int CheckpointEvery, int KeepCheckpoints, NonFiniteAction OnNonFinite, string[] Arguments, bool Resuming, bool ThreadsGiven,
        string? Weights, bool IncludeTop, string? Freeze, bool Dashboard = false, int DashboardPort = 0);

    public static Command Create()
    {
        var model = Commands.ArchitectureOption();
        var data = Commands.DataOption();
        // Not required by the parser: --resume DIR alone brings them from the run's checkpoint.
        model.Required = false;
        data.Required = false;
        var epochs = new Option<int>("--epochs", "-e") { Description = "Passes over the training data.", HelpName = "N", DefaultValueFactory = _ => 1 }.MustBePositive();
        var batchSize = Commands.BatchSizeOption(32);
        var seed = new Option<int>("--seed", "-s") { Description = "Seed for the initial weights, shuffling and dropout.", HelpName = "S", DefaultValueFactory = _ => 42 };
        var threads = Commands.ThreadsOption();
        var output = new Option<string?>("--out", "-o") { Description = "Folder for model.naani, metrics.json and checkpoints/ [default: runs/<model>-<yyyyMMdd-HHmmss>].", HelpName = "DIR" };
        var optimizer = new Option<string>("--optimizer") { Description = "adam, sgd or rmsprop.", HelpName = "NAME", DefaultValueFactory = _ => "adam" };
        optimizer.AcceptOnlyFromAmong("adam", "sgd", "rmsprop");
        var learningRate = new Option<double?>("--learning-rate", "--lr") { Description = "Step size [default: the optimizer's: adam 0.001, sgd 0.01, rmsprop 0.001].", HelpName = "LR" }
            .Check(value => value is not { } lr || (lr > 0 && double.IsFinite(lr)) ? null : $"--learning-rate must be a positive number; got {lr.ToString(CultureInfo.InvariantCulture)}.");
        var validationSplit = new Option<double>("--validation-split") { Description = "Fraction of the training data held out for validation (its last samples, as in Keras); 0 for none.", HelpName = "F", DefaultValueFactory = _ => 0.1 }
            .Check(value => value >= 0 && value < 1 ? null : $"--validation-split must be in [0, 1); got {value.ToString(CultureInfo.InvariantCulture)}.");
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Also save a checkpoint every N steps (one is always saved at each epoch end); 0 for epoch ends only.", HelpName = "N", DefaultValueFactory = _ => 0 }
            .Check(value => value >= 0 ? null : $"--checkpoint-every must be 0 or more; got {value}.");
        var keepCheckpoints = new Option<int>("--keep-checkpoints") { Description = "How many of the newest checkpoints to keep in DIR/checkpoints.", HelpName = "K", DefaultValueFactory = _ => 2 }.MustBePositive();
        var onNonFinite = new Option<string>("--on-nonfinite") { Description = "When a loss or gradient becomes NaN or infinite: stop (exit 1, the last good checkpoint kept) or skip-batch.", HelpName = "stop|skip-batch", DefaultValueFactory = _ => "stop" };
        onNonFinite.AcceptOnlyFromAmong("stop", "skip-batch");
        var weights = new Option<string?>("--weights")
        {
            Description = "Start from pretrained weights: imagenet (Keras's published files for vgg16 and resnet50, downloaded once with their " +
                "MD5 checked into ~/.naani/models), or a Keras weight file (.h5, .weights.h5) for the model.",
            HelpName = "imagenet|FILE",
        };
        var includeTop = new Option<bool>("--include-top")
        {
            Description = "With --weights: keep the ImageNet classifier (1000 classes), or false for the convolutional base with a new " +
                "classifier for the data's classes (global average pooling, Dense 1024 relu, Dense softmax/sigmoid).",
            HelpName = "true|false",
            DefaultValueFactory = _ => true,
        };
        var freeze = new Option<string?>("--freeze")
        {
            Description = "Layers that keep their weights: base (the pretrained base; the default with --include-top false), none, " +
                "N (the first N layers, Keras's model.layers[:N]) or up-to:LAYER (every layer up to and including LAYER).",
            HelpName = "base|none|N|up-to:LAYER",
        };
        var dashboard = new Option<bool>("--dashboard")
        {
            Description = "Watch training in a browser: a live page on 127.0.0.1 (loss and accuracy per batch, validation curves, images/s and ETA, " +
                "the confusion matrix and predicted validation images at each epoch's end). Its final state is saved as report.html.",
        };
        var port = new Option<int>("--port") { Description = "The dashboard's port; 0 picks a free one.", HelpName = "P", DefaultValueFactory = _ => 0 }
            .Check(value => value is >= 0 and <= 65535 ? null : $"--port must be 0 to 65535; got {value}.");
        var resume = new Option<string?>("--resume") { Description = "Continue the run in DIR from its newest checkpoint, with the options it was started with (give no others, except --epochs to train longer).", HelpName = "DIR" };

        var command = new Command("train", "Train a built-in model on a dataset, evaluate it on the test split, and save the model and its metrics.")
        {
            model, data, epochs, batchSize, seed, threads, output, optimizer, learningRate, validationSplit, checkpointEvery, keepCheckpoints, onNonFinite, resume,
            weights, includeTop, freeze, dashboard, port,
        };
        var images = new ImageDataOptions();
        images.AddTo(command);

        Settings Read(ParseResult parse, bool resuming)
        {
            string? modelName = parse.GetValue(model), dataName = parse.GetValue(data);
            if (modelName is null || dataName is null)
                throw new UsageException("naani train needs --model and --data (or --resume DIR to continue a run).");
            // What the run was started with, for --resume: every token but the command's own name and the dashboard's
            // (watching is chosen anew when resuming).
            var tokens = parse.Tokens.Where(t => t.Type != TokenType.Command).Select(t => t.Value).ToList();
            string[] arguments = [.. tokens.Where((_, i) => !IsOptionToken(tokens, i, "--port") && !IsOptionToken(tokens, i, "--dashboard", flag: true))];
            return new Settings(modelName, dataName, parse.GetValue(epochs), parse.GetValue(batchSize), parse.GetValue(seed),
                parse.GetValue(threads), parse.GetValue(output), parse.GetValue(optimizer)!, parse.GetValue(learningRate), parse.GetValue(validationSplit), images.Read(parse),
                parse.GetValue(checkpointEvery), parse.GetValue(keepCheckpoints),
                parse.GetValue(onNonFinite) == "skip-batch" ? NonFiniteAction.SkipBatch : NonFiniteAction.Stop, arguments, resuming,
                parse.GetResult(threads) is { Implicit: false }, parse.GetValue(weights), parse.GetValue(includeTop), parse.GetValue(freeze),
                parse.GetValue(dashboard), parse.GetValue(port));
        }

        Commands.SetAction(command, parse =>
        {
            if (parse.GetValue(resume) is not { } runDirectory) return Run(Read(parse, resuming: false));
            // --resume DIR: the options come from the newest readable checkpoint; --epochs may raise the total.
            var given = parse.Tokens.Where(t => t.Type == TokenType.Option).Select(t => t.Value)
                .Where(o => o is not ("--resume" or "--verbose" or "--epochs" or "-e" or "--dashboard" or "--port")).ToList();
            if (given.Count > 0)
                throw new UsageException($"--resume takes the run's own options from its checkpoint; give no others (got {string.Join(", ", given)}), " +
                    "except --epochs to train longer and --dashboard [--port P] to watch it.");
            string directory = Path.GetFullPath(runDirectory);
            var latest = BackupAndRestore.Latest(Path.Combine(directory, CheckpointFolder), message => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(message)}[/]"))
                ?? throw new UsageException($"'{directory}' holds no readable checkpoint in {CheckpointFolder}/: nothing to resume (was it a run folder of naani train?).");
            var saved = latest.User?["args"] as JsonArray
                ?? throw new UsageException($"'{latest.Path}' does not hold the options of a naani train run; resume it from the API (BackupAndRestore).");
            List<string> arguments = [.. saved.Select(a => a!.GetValue<string>())];
            if (parse.GetResult(epochs) is { Implicit: false })
                arguments = WithOption(arguments, "-e", "--epochs", parse.GetValue(epochs).ToString(CultureInfo.InvariantCulture));
            var savedParse = command.Parse([.. arguments.Where((_, i) => !IsOptionToken(arguments, i, "--out", "-o")), "--out", directory]);
            if (savedParse.Errors.Count > 0)
                throw new UsageException($"The options saved in '{latest.Path}' no longer parse: {savedParse.Errors[0].Message}");
            AnsiConsole.MarkupLine($"Resuming [bold]{Markup.Escape(directory)}[/] from {Markup.Escape(Path.GetFileName(latest.Path))} " +
                $"(epoch {latest.Epoch + 1}, step {latest.Step} of {latest.StepsPerEpoch}): naani train {Markup.Escape(string.Join(' ', arguments))}");
            var settings = Read(savedParse, resuming: true);
            // A data-parallel run is resumed with its global batch, on any number of ranks that divides it.
            int savedRanks = latest.User?["ranks"]?.GetValue<int>() ?? 1, ranks = MpiCommunicator.WorldSize;
            if (savedRanks != ranks)
            {
                int global = settings.BatchSize * savedRanks;
                if (global % ranks != 0)
                    throw new UsageException($"The run trained on {savedRanks} ranks x {settings.BatchSize} = a global batch of {global}, which {ranks} ranks cannot share evenly; resume it on a number of ranks that divides {global}.");
                AnsiConsole.MarkupLine($"The run trained on {savedRanks} rank(s) x {settings.BatchSize}; resuming on {ranks} x {global / ranks}, the same global batch of {global}.");
                settings = settings with { BatchSize = global / ranks };
                // The options saved with the next checkpoints say the batch this run uses, beside its ranks.
                arguments = WithOption(arguments, "-b", "--batch-size", (global / ranks).ToString(CultureInfo.InvariantCulture));
            }
            return Run(settings with { Arguments = [.. arguments], Dashboard = parse.GetValue(dashboard), DashboardPort = parse.GetValue(port) });
        });
        return command;
    }

    /// A built-in model (or one's own) with pretrained weights: whole, with the ImageNet top, or its base under a new classifier.
    static Model PretrainedModel(Settings settings, TrainingData data, Model? ownModel)
    {
        string weights = settings.Weights!;
        void Log(string message) => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(message)}[/]");
        if (ownModel is not null)
        {
            KerasWeights.Load(ownModel, weights);
            return ownModel;
        }
        if (settings.IncludeTop)
        {
            if (data.NumClasses != 1000 && weights.Equals("imagenet", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"{settings.Model}'s ImageNet top tells 1000 classes apart; the data has {data.NumClasses}. Add --include-top false for a new classifier on the pretrained base.");
            var whole = Architectures.Create(settings.Model, settings.Seed, inputShape: data.ImageShape, classes: data.NumClasses, preprocessInput: true);
            KerasApplications.LoadWeights(whole, settings.Model, includeTop: true, weights, Log);
            return whole;
        }
        if (Architectures.Create(settings.Model, settings.Seed, inputShape: data.ImageShape, includeTop: false, preprocessInput: true) is not Functional features)
            throw new UsageException($"--include-top false needs a model with a convolutional base (vgg16, resnet50); '{settings.Model}' has none.");
        var loaded = KerasApplications.LoadWeights(features, settings.Model, includeTop: false, weights, Log);
        AnsiConsole.MarkupLine($"Pretrained {Markup.Escape(settings.Model)} base: weights of {loaded.Loaded.Count} layers from {Markup.Escape(weights)}; " +
            $"a new classifier for {data.NumClasses} classes on top");
        return Architectures.Classifier(features, data.NumClasses, name: $"{settings.Model}-transfer");
    }

    /// --freeze: base (the layers that came with pretrained weights: all but the new top), none, N or up-to:LAYER.
    static void Freeze(Model model, string spec)
    {
        var layers = model.Layers;
        int count = spec switch
        {
            "none" => 0,
            "base" => layers.TakeWhile(l => !l.Name.StartsWith("top_", StringComparison.Ordinal)).Count(),
            _ when int.TryParse(spec, NumberStyles.None, CultureInfo.InvariantCulture, out int n) => n <= layers.Count ? n
                : throw new UsageException($"--freeze {n}: the model has {layers.Count} layers."),
            _ when spec.StartsWith("up-to:", StringComparison.Ordinal) => layers.ToList().FindIndex(l => l.Name == spec[6..]) is int at and >= 0 ? at + 1
                : throw new UsageException($"--freeze {spec}: the model has no layer '{spec[6..]}'; its layers: {string.Join(", ", layers.Select(l => l.Name))}."),
            _ => throw new UsageException($"--freeze takes base, none, a number of layers or up-to:LAYER; got '{spec}'."),
        };
        for (int i = 0; i < layers.Count; i++) layers[i].Trainable = i >= count;
        if (count > 0)
            AnsiConsole.MarkupLine($"Frozen: the first {count} layers (up to {Markup.Escape(layers[count - 1].Name)}); {model.TrainableParameterCount:N0} of {model.ParameterCount:N0} parameters train");
    }

    /// A model from Keras JSON must take the data's images and tell its classes apart.
    static void CheckOwnModel(Model model, string path, TrainingData data)
    {
        if (model.InputShape != data.ImageShape)
            throw new UsageException($"The model in '{path}' takes inputs of {model.InputShape}, but {data.ImageShape} images come from the data" +
                " (for an image folder, --image-size and --color choose the size and channels).");
        int units = model.OutputShape[^1];
        bool fits = model.OutputShape.Rank == 1 && (units == data.NumClasses || (units == 1 && data.NumClasses == 2));
        if (!fits)
            throw new UsageException($"The model in '{path}' ends in {model.OutputShape}; the data has {data.NumClasses} classes, so its last layer needs " +
                (data.NumClasses == 2 ? "1 unit (sigmoid) or 2 (softmax)." : $"{data.NumClasses} units (softmax)."));
    }

    /// The arguments with an option's value replaced (given as alias or name, or "name=value"), or the option added.
    static List<string> WithOption(List<string> arguments, string alias, string name, string value) =>
        [.. arguments.Where((_, i) => !IsOptionToken(arguments, i, name, alias)), name, value];

    /// Whether arguments[i] is one of an option's names ("--out", "-o"), "name=value", or the value after a name; a flag's
    /// value is only an explicit true or false (what follows a bare flag is the next option).
    static bool IsOptionToken(List<string> arguments, int i, string name, string? alias = null, bool flag = false)
    {
        bool Named(string token) => token == name || token == alias;
        string token = arguments[i];
        if (Named(token) || token.StartsWith(name + "=", StringComparison.Ordinal)) return true;
        return i > 0 && Named(arguments[i - 1]) && (!flag || token is "true" or "false");
    }

    static int Run(Settings settings)
    {
        // Launched by mpirun: this process is one rank of a data-parallel run (MPI is not loaded otherwise). The ranks
        // on one machine share its cores; rank 0 alone prints and writes files.
        using var world = MpiCommunicator.FromEnvironment();
        var distributed = world is { Size: > 1 } ? world : null;
        bool main = distributed is null || distributed.Rank == 0;
        if (distributed is not null && !settings.ThreadsGiven)
            settings = settings with { Threads = Math.Max(1, Environment.ProcessorCount / MpiCommunicator.LocalSize) };
        if (!main)
        {
            AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) });
            Console.SetOut(TextWriter.Null);
        }
        Threading.MaxThreads = settings.Threads;
        // An architecture of one's own, in Keras's JSON: its input shape decides how image folders are read.
        var ownModel = Commands.IsKerasJson(settings.Model) || Commands.IsKerasModel(settings.Model) ? Commands.OpenModel(settings.Model, settings.Seed) : null;
        using var data = TrainingData.Open(settings.Data, settings.Images, ownModel?.InputShape ?? Architectures.DefaultInputShape(settings.Model),
            settings.ValidationSplit, settings.BatchSize, settings.Seed);
        var source = data.Source;

        var model = settings.Weights is not null ? PretrainedModel(settings, data, ownModel)
            : ownModel ?? Architectures.Create(settings.Model, settings.Seed, inputShape: data.ImageShape, classes: data.NumClasses);
        if (ownModel is not null) CheckOwnModel(model, settings.Model, data);
        if (settings.Freeze is not null || (settings.Weights is not null && !settings.IncludeTop)) Freeze(model, settings.Freeze ?? "base");
        var optimizer = Optimizer.Parse(settings.Optimizer);
        if (settings.LearningRate is { } lr) optimizer.LearningRate = lr;
        var loss = Loss.Parse(Architectures.DefaultLoss(model, sparseLabels: true));
        // googlenet-mini trains on loss1 + 0.3 loss2 + 0.3 loss3 (its auxiliary classifiers); other models have one output.
        model.Compile(optimizer, loss, Architectures.LossWeights(settings.Model), "accuracy");
        model.ClassNames = data.ClassNames;
        // Kept in the model file, so that naani serve and a Predictor turn an uploaded image into the same values.
        model.Preprocessing = new ImagePreprocessing(settings.Images.CropToAspectRatio);

        AnsiConsole.MarkupLine($"Optimizer {optimizer.Name} (learning rate {optimizer.LearningRate.ToString(CultureInfo.InvariantCulture)}), loss {loss.Name}, " +
            $"batch size {settings.BatchSize}, seed {settings.Seed}, {Threading.MaxThreads} threads");
        if (distributed is not null)
            AnsiConsole.MarkupLine($"Data-parallel on MPI: {distributed.Size} ranks x {Threading.MaxThreads} threads, global batch {distributed.Size * settings.BatchSize} " +
                $"({settings.BatchSize} per rank), gradients averaged while backward runs");
        Commands.WriteRaw(model.Summary());

        var directory = Path.GetFullPath(settings.Out ?? Path.Combine("runs", $"{settings.Model.ToLowerInvariant()}-{DateTime.Now:yyyyMMdd-HHmmss}"));
        var checkpoints = Path.Combine(directory, CheckpointFolder);
        if (!settings.Resuming && BackupAndRestore.List(checkpoints).Count > 0)
            throw new UsageException($"'{directory}' already holds checkpoints of a run: continue it with 'naani train --resume {directory}', or choose another --out.");
        if (main) Directory.CreateDirectory(directory);
        var modelPath = Path.Combine(directory, ModelFile);
        var metricsPath = Path.Combine(directory, MetricsFile);
        model.OnNonFinite = settings.OnNonFinite;
        var backup = new BackupAndRestore(checkpoints, settings.CheckpointEvery, keep: settings.KeepCheckpoints, deleteOnTrainEnd: false,
            log: message => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(message)}[/]"))
        {
            UserState = new JsonObject
            {
                ["args"] = new JsonArray([.. settings.Arguments.Select(a => (JsonNode?)a)]),
                ["data_source"] = source,
                ["ranks"] = distributed?.Size ?? 1,
            },
        };

        // The dashboard's state: kept on rank 0 (it predicts on the validation data at each epoch's end), shown live with
        // --dashboard, and saved into report.html at the end.
        var monitor = main ? new TrainingMonitor($"{settings.Model} on {settings.Data}", data.ClassNames, data.MonitorValidation(settings.BatchSize), settings.BatchSize) : null;
        using var server = settings.Dashboard && monitor is not null ? StartDashboard(monitor, $"Naani: training {settings.Model} on {settings.Data}", settings.DashboardPort) : null;
        List<Callback> callbacks = monitor is null ? [backup] : [monitor, backup];

        var clock = Stopwatch.StartNew();
        History history;
        try
        {
            history = ProgressCallback.Fit(callback => data.Fit(model, settings.BatchSize, settings.Epochs, [callback, .. callbacks], distributed));
        }
        catch (NonFiniteTrainingException e)
        {
            monitor?.Finish(e.Message);
            // Stop at once; the newest checkpoint (saved before the bad step) stays as it is for a resume with other settings.
            var failed = new JsonObject
            {
                ["model"] = model.Name,
                ["dataset"] = settings.Data,
                ["status"] = "stopped: non-finite",
                ["reason"] = e.Message,
                ["epoch"] = e.Detail.Epoch + 1,
                ["step"] = e.Detail.Step,
                ["layer"] = e.Detail.Layer,
                ["weight"] = e.Detail.Weight,
                ["last_checkpoint"] = BackupAndRestore.List(checkpoints).FirstOrDefault(),
                ["history"] = e.History is { } h ? HistoryJson(h) : null,
            };
            if (main) Report.WriteJson(metricsPath, failed);
            Commands.Error(e.Message);
            AnsiConsole.MarkupLine($"Wrote [bold]{Markup.Escape(metricsPath)}[/]" + (failed["last_checkpoint"] is { } last ? $"; the last good checkpoint is {Markup.Escape(last.GetValue<string>())}" : ""));
            return Commands.RuntimeFailure;
        }
        double trainingSeconds = clock.Elapsed.TotalSeconds;
        if (distributed is not null)
        {
            // Fit checked this at every epoch's end; said once more here, for the log.
            var sums = distributed.AllGather(model.WeightChecksum());
            if (sums.Distinct().Count() != 1)
                throw new InvalidOperationException($"The ranks ended with different weights (checksums {string.Join(", ", sums.Select(v => v.ToString("x16", CultureInfo.InvariantCulture)))}).");
            AnsiConsole.MarkupLine($"All {distributed.Size} ranks hold the same weights (checksum {sums[0].ToString("x16", CultureInfo.InvariantCulture)}).");
        }
        if (backup.RestoredFrom is { } restored)
            AnsiConsole.MarkupLine($"[grey]Resumed from {Markup.Escape(restored.Path)}[/]");

        var evaluations = data.Evaluate(model, settings.BatchSize, settings.Data, distributed).ToList();
        if (!main) return Commands.Success;   // the other ranks have done their share of the test evaluation
        foreach (var (title, result) in evaluations) Report.Print(result, title);
        var evaluation = evaluations.FirstOrDefault(e => e.Name.StartsWith("Test", StringComparison.Ordinal)).Result;
        var validationEvaluation = evaluations.FirstOrDefault(e => e.Name.StartsWith("Validation", StringComparison.Ordinal)).Result;

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
            ["ranks"] = distributed?.Size ?? 1,
            ["optimizer"] = settings.Optimizer,
            ["learning_rate"] = optimizer.LearningRate,
            ["parameters"] = model.ParameterCount,
            ["test"] = evaluation is null ? null : Report.ToJson(evaluation),
            ["validation"] = validationEvaluation is not null ? Report.ToJson(validationEvaluation) : history.Values.ContainsKey("val_loss")
                ? new JsonObject { ["accuracy"] = history["val_accuracy"][^1], ["loss"] = history["val_loss"][^1] }
                : null,
            ["history"] = HistoryJson(history),
            ["training"] = new JsonObject
            {
                ["resumed_from"] = backup.RestoredFrom?.Path,
                ["skipped_batches"] = model.OnNonFinite == NonFiniteAction.SkipBatch ? history.Values.GetValueOrDefault("skipped_batches")?.LastOrDefault() : null,
                ["images_per_second"] = history.Epochs == 0 ? 0 : history["images_per_second"].Average(),
                ["seconds"] = trainingSeconds,
            },
        };
        RunReport.AddImageData(metrics, data, settings.Images);
        Report.WriteJson(metricsPath, metrics);
        monitor?.Finish();
        var reportFiles = RunReport.Write(directory, model, settings.Model, settings.Data, metrics, history, evaluations, monitor?.Snapshot());

        AnsiConsole.WriteLine();
        AnsiConsole.MarkupLine($"Saved [bold]{Markup.Escape(modelPath)}[/]");
        AnsiConsole.MarkupLine($"Saved [bold]{Markup.Escape(metricsPath)}[/]");
        foreach (var file in reportFiles) AnsiConsole.MarkupLine($"Saved [bold]{Markup.Escape(file)}[/]");
        return Commands.Success;
    }

    /// Starts the live page and says where it is; it stops when the command ends (after the report is written).
    static Dashboard StartDashboard(TrainingMonitor monitor, string title, int port)
    {
        DashboardServer server;
        try
        {
            server = DashboardServer.StartAsync(monitor, title, port).GetAwaiter().GetResult();
        }
        catch (IOException e)
        {
            throw new UsageException(e.Message);
        }
        AnsiConsole.MarkupLine($"Dashboard: [bold link]{Markup.Escape(server.Url)}[/] (live while training runs; saved as report.html at the end)");
        return new Dashboard(server);
    }

    /// The server, stopped synchronously at the end of the command.
    sealed class Dashboard(DashboardServer server) : IDisposable
    {
        public void Dispose() => server.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    static JsonObject HistoryJson(History history) => new()
    {
        ["loss"] = Series(history, "loss"),
        ["accuracy"] = Series(history, "accuracy"),
        ["val_loss"] = Series(history, "val_loss"),
        ["val_accuracy"] = Series(history, "val_accuracy"),
    };

    static JsonArray Series(History history, string key) =>
        history.Values.TryGetValue(key, out var values) ? new JsonArray([.. values.Select(v => (JsonNode?)v)]) : [];
}
