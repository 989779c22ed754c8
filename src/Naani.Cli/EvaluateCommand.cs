using System.CommandLine;
using System.Text.Json.Nodes;
using Naani.Data;
using Naani.Models;
using Naani.Vision;
using Spectre.Console;

namespace Naani.Cli;

/// naani evaluate: a saved model on a dataset's test split; prints the report and writes its metrics.
static class EvaluateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "A saved model file (.naani), as written by naani train.", HelpName = "FILE", Required = true }
            .Check(value => File.Exists(value) ? null
                : Directory.Exists(value) ? $"--model '{value}' is a folder; pass the model file inside it, e.g. {Path.Combine(value, TrainCommand.ModelFile)}."
                : $"--model '{value}': no such file.");
        var data = Commands.DataOption();
        var batchSize = Commands.BatchSizeOption(128);
        var output = new Option<string?>("--out", "-o") { Description = "Write DIR/metrics.json [default: metrics-eval.json beside the model file].", HelpName = "DIR" };
        var threads = Commands.ThreadsOption();
        var command = new Command("evaluate", "Evaluate a saved model on a dataset's test split: accuracy, loss, per-class precision/recall/F1, confusion matrix.")
        {
            model, data, batchSize, output, threads,
        };
        Commands.SetAction(command, parse => Run(parse.GetValue(model)!, parse.GetValue(data)!, parse.GetValue(batchSize), parse.GetValue(output), parse.GetValue(threads)));
        return command;
    }

    /// An image folder: its test/ split (else validation/, else train/, else the whole folder: class subfolders), read at
    /// the model's input size and channels, with the model's class names deciding which folder is which class.
    static (Evaluation, string) EvaluateFolder(Model model, string folder, int batchSize)
    {
        var root = Path.GetFullPath(folder);
        var (trainDir, validationDir, testDir) = ImageFolderDataset.FindSplits(root);
        string directory = testDir ?? validationDir ?? trainDir ?? root;
        var shape = model.InputShape;
        if (shape.Rank != 3 || shape[2] is not (1 or 3))
            throw new UsageException($"Model '{model.Name}' takes inputs of {shape}, not images (height, width, 1 or 3 channels).");
        var options = new ImageFolderOptions
        {
            ImageSize = (shape[0], shape[1]),
            Color = shape[2] == 1 ? ColorMode.Grayscale : ColorMode.Rgb,
            CropToAspectRatio = model.Preprocessing?.CropToAspectRatio ?? false,
            ClassNames = model.ClassNames is { Count: > 0 } names ? names : null,
            Warning = message => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(message)}[/]"),
        };
        ImageFolderDataset images;
        try
        {
            images = ImageFolderDataset.Open(directory, options);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new UsageException(e.Message);
        }
        AnsiConsole.MarkupLine($"Images [bold]{Markup.Escape(directory)}[/]: {images.Count:N0} in {images.NumClasses} classes, read at {shape[0]}x{shape[1]}");
        using var pipeline = new BatchPipeline(images, new PipelineOptions { BatchSize = batchSize, Shuffle = false });
        return (Report.Evaluate(model, pipeline), directory);
    }

    static int Run(string modelPath, string dataName, int batchSize, string? output, int threads)
    {
        Threading.MaxThreads = threads;
        var model = Commands.OpenModel(modelPath);
        AnsiConsole.MarkupLine($"Model [bold]{Markup.Escape(model.Name)}[/] from {Markup.Escape(Path.GetFullPath(modelPath))} ({model.ParameterCount:N0} parameters)");
        Evaluation evaluation;
        string source;
        if (ImageFolderDataset.IsImageFolder(dataName)) (evaluation, source) = EvaluateFolder(model, dataName, batchSize);
        else
        {
            var (_, test, from) = Commands.LoadData(dataName);
            (evaluation, source) = (Report.Evaluate(model, test, batchSize), from);
        }
        Report.Print(evaluation, $"Test: {dataName}");

        var metricsPath = output is null
            ? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, "metrics-eval.json")
            : Path.Combine(Path.GetFullPath(output), TrainCommand.MetricsFile);
        Report.WriteJson(metricsPath, new JsonObject
        {
            ["model"] = model.Name,
            ["model_file"] = Path.GetFullPath(modelPath),
            ["dataset"] = dataName,
            ["data_source"] = source,
            ["batch_size"] = batchSize,
            ["threads"] = Threading.MaxThreads,
            ["parameters"] = model.ParameterCount,
            ["test"] = Report.ToJson(evaluation),
        });
        AnsiConsole.WriteLine();
        AnsiConsole.MarkupLine($"Saved [bold]{Markup.Escape(metricsPath)}[/]");
        return Commands.Success;
    }
}
