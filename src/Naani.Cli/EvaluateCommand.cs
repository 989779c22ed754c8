using System.CommandLine;
using System.Text.Json.Nodes;
using Naani.Models;
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

    static int Run(string modelPath, string dataName, int batchSize, string? output, int threads)
    {
        Threading.MaxThreads = threads;
        var model = Commands.OpenModel(modelPath);
        AnsiConsole.MarkupLine($"Model [bold]{Markup.Escape(model.Name)}[/] from {Markup.Escape(Path.GetFullPath(modelPath))} ({model.ParameterCount:N0} parameters)");
        var (_, test, source) = Commands.LoadData(dataName);

        var evaluation = Report.Evaluate(model, test, batchSize);
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
