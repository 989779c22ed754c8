using System.CommandLine;
using Naani.Models;
using Spectre.Console;

namespace Naani.Cli;

/// naani summary: the Keras-style layer table of a built-in architecture or a saved model; with --memory,
/// what each layer's activations and weights take and what a training step needs.
static class SummaryCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m")
        {
            Description = $"A built-in architecture ({string.Join(", ", Architectures.Names)}) or a saved .naani file.",
            HelpName = "NAME|FILE",
            Required = true,
        }.Check(value => Commands.IsArchitecture(value) || File.Exists(value) ? null
            : $"--model '{value}' is neither a built-in model ({string.Join(", ", Architectures.Names)}) nor an existing file.");
        var memory = new Option<bool>("--memory")
        {
            Description = "Add each layer's activation values and bytes per image and its weights' bytes, the totals, and the memory of a training step.",
        };
        var batchSize = Commands.BatchSizeOption(32);
        batchSize.Description = "Batch size of the training step whose memory --memory reports.";
        var command = new Command("summary", "Print a model's layers, output shapes and parameter counts.") { model, memory, batchSize };
        Commands.SetAction(command, parse => Run(parse.GetValue(model)!, parse.GetValue(memory), parse.GetValue(batchSize)));
        return command;
    }

    static int Run(string nameOrFile, bool memory, int batchSize)
    {
        // A file of the same name as a built-in model wins: the user pointed at it.
        Model model = Commands.OpenModel(nameOrFile);
        Commands.WriteRaw(model.Summary(memory, batchSize));
        if (model.ClassNames is { Count: > 0 } names)
            AnsiConsole.MarkupLine($"Classes: {Markup.Escape(string.Join(", ", names))}");
        return Commands.Success;
    }
}
