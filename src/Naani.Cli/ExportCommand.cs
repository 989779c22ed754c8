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
            Description = "The file to write (replaced atomically if it exists): FILE.onnx for ONNX Runtime, FILE.keras for Keras 3 " +
                "(keras.models.load_model), FILE.weights.h5 for Keras 3's model.load_weights, FILE.json for the architecture as Keras JSON.",
            HelpName = "FILE.onnx|FILE.keras|FILE.weights.h5|FILE.json",
            Required = true,
        }.Check(value => Directory.Exists(value) ? $"--out '{value}' is a folder; name the file to write, e.g. {Path.Combine(value, "model.onnx")}." : null);
        var opset = new Option<int>("--opset")
        {
            Description = $"ONNX operator set version, {OnnxExporter.MinOpset} to {OnnxExporter.MaxOpset}.",
            HelpName = "N",
            DefaultValueFactory = _ => OnnxExporter.MinOpset,
        }.Check(value => value is >= OnnxExporter.MinOpset and <= OnnxExporter.MaxOpset ? null
            : $"--opset must be from {OnnxExporter.MinOpset} to {OnnxExporter.MaxOpset}; got {value}.");
        var command = new Command("export", "Export a model to ONNX (input \"input\" [N, H, W, C] float32, output \"output\") for ONNX Runtime and other runtimes, or to Keras (.keras, .weights.h5, .json).")
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
        var path = Path.GetFullPath(output);
        if (output.EndsWith(".keras", StringComparison.OrdinalIgnoreCase) || output.EndsWith(".weights.h5", StringComparison.OrdinalIgnoreCase)
            || output.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            if (output.EndsWith(".keras", StringComparison.OrdinalIgnoreCase)) Serialization.KerasModelFile.Save(model, output);
            else if (output.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) IO.AtomicFile.WriteAllText(output, model.ToKerasJson());
            else Serialization.KerasModelFile.SaveWeights(model, output);
            AnsiConsole.MarkupLine($"Exported [bold]{Markup.Escape(model.Name)}[/] ({model.ParameterCount:N0} parameters) for Keras 3 to " +
                $"[bold]{Markup.Escape(path)}[/] ({new FileInfo(path).Length / (1024.0 * 1024.0):N1} MiB)");
            return Commands.Success;
        }
        OnnxExporter.Export(model, output, opset);   // a layer ONNX export lacks is a runtime failure (exit 1)
        AnsiConsole.MarkupLine($"Exported [bold]{Markup.Escape(model.Name)}[/] ({model.ParameterCount:N0} parameters, opset {opset}) to " +
            $"[bold]{Markup.Escape(path)}[/] ({new FileInfo(path).Length / (1024.0 * 1024.0):N1} MiB)");
        AnsiConsole.MarkupLine($"[grey]input \"input\" [[N, {string.Join(", ", model.InputShape.ToArray())}]] float32 (NHWC), " +
            $"output \"output\" [[N, {string.Join(", ", model.OutputShape.ToArray())}]][/]");
        return Commands.Success;
    }
}
