using System.CommandLine;
using Naani.Models;
using Naani.Onnx;
using Spectre.Console;

namespace Naani.Cli;

/// naani export: a saved model (or a built-in architecture, untrained) as an ONNX file for deployment.
static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m")
        {
            Description = $"A saved .naani file, or a built-in architecture ({string.Join(", ", Architectures.Names)}) with its initial weights (seed 0).",
            HelpName = "FILE|NAME",
            Required = true,
        }.Check(value => Commands.IsArchitecture(value) || File.Exists(value) ? null
            : Directory.Exists(value) ? $"--model '{value}' is a folder; pass the model file inside it, e.g. {Path.Combine(value, TrainCommand.ModelFile)}."
            : $"--model '{value}' is neither an existing file nor a built-in model ({string.Join(", ", Architectures.Names)}).");
        var output = new Option<string>("--out", "-o")
        {
            Description = "The ONNX file to write (replaced atomically if it exists).",
            HelpName = "FILE.onnx",
            Required = true,
        }.Check(value => Directory.Exists(value) ? $"--out '{value}' is a folder; name the file to write, e.g. {Path.Combine(value, "model.onnx")}." : null);
        var opset = new Option<int>("--opset")
        {
            Description = $"ONNX operator set version, {OnnxExporter.MinOpset} to {OnnxExporter.MaxOpset}.",
            HelpName = "N",
            DefaultValueFactory = _ => OnnxExporter.MinOpset,
        }.Check(value => value is >= OnnxExporter.MinOpset and <= OnnxExporter.MaxOpset ? null
            : $"--opset must be from {OnnxExporter.MinOpset} to {OnnxExporter.MaxOpset}; got {value}.");
        var command = new Command("export", "Export a model to ONNX (input \"input\" [N, H, W, C] float32, output \"output\") for ONNX Runtime and other runtimes.")
        {
            model, output, opset,
        };
        Commands.SetAction(command, parse => Run(parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(opset)));
        return command;
    }

    static int Run(string nameOrFile, string output, int opset)
    {
        // A file of the same name as a built-in model wins: the user pointed at it.
        Model model = Commands.OpenModel(nameOrFile, seed: 0);
        string? folder = Path.GetDirectoryName(Path.GetFullPath(output));
        if (folder is not null && !Directory.Exists(folder))
            throw new UsageException($"--out '{output}': the folder {folder} does not exist.");
        OnnxExporter.Export(model, output, opset);   // a layer ONNX export lacks is a runtime failure (exit 1)
        var path = Path.GetFullPath(output);
        AnsiConsole.MarkupLine($"Exported [bold]{Markup.Escape(model.Name)}[/] ({model.ParameterCount:N0} parameters, opset {opset}) to " +
            $"[bold]{Markup.Escape(path)}[/] ({new FileInfo(path).Length / (1024.0 * 1024.0):N1} MiB)");
        AnsiConsole.MarkupLine($"[grey]input \"input\" [[N, {string.Join(", ", model.InputShape.ToArray())}]] float32 (NHWC), " +
            $"output \"output\" [[N, {string.Join(", ", model.OutputShape.ToArray())}]][/]");
        return Commands.Success;
    }
}
