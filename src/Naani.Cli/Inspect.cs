using System.CommandLine;
using Naani.Layers;
using Naani.Models;
using Naani.Vision;
using Spectre.Console;

namespace Naani.Cli;

/// What the inspection commands (kernels, featuremaps, filter, predict) share: the model argument, image loading, output paths.
static class Inspect
{
    /// --model FILE|NAME: a saved model, or a built-in architecture built with --seed (its initial weights).
    public static Option<string> ModelOption() => new Option<string>("--model", "-m")
    {
        Description = $"A saved model (.naani) or a built-in architecture ({string.Join(", ", Architectures.Names)}), built with --seed: its initial weights.",
        HelpName = "FILE|NAME",
        Required = true,
    }.Check(value => Commands.IsArchitecture(value) || File.Exists(value) ? null
        : Directory.Exists(value) ? $"--model '{value}' is a folder; pass the model file inside it, e.g. {Path.Combine(value, TrainCommand.ModelFile)}."
        : $"--model '{value}' is neither a built-in model ({string.Join(", ", Architectures.Names)}) nor an existing file.");

    public static Option<int> SeedOption() => new("--seed", "-s")
    {
        Description = "Seed of a built-in model's initial weights.",
        HelpName = "S",
        DefaultValueFactory = _ => 42,
    };

    public static Option<string> ImageOption(string description) => new Option<string>("--image", "-i")
    {
        Description = description,
        HelpName = "IMG",
        Required = true,
    }.Check(value => File.Exists(value) ? null : $"--image '{value}': no such file.");

    public static Option<string?> OutOption(string description) => new("--out", "-o") { Description = description, HelpName = "FILE" };

    /// A file wins over a built-in name: the user pointed at it.
    public static Model LoadModel(string nameOrFile, int seed)
    {
        var model = Commands.OpenModel(nameOrFile, seed);
        model.Build();
        AnsiConsole.MarkupLine(File.Exists(nameOrFile) && !Commands.IsKerasJson(nameOrFile)
            ? $"Model [bold]{Markup.Escape(model.Name)}[/] from {Markup.Escape(Path.GetFullPath(nameOrFile))}, input {model.InputShape}"
            : $"Model [bold]{Markup.Escape(model.Name)}[/] (built-in, initial weights of seed {seed}), input {model.InputShape}");
        return model;
    }

    /// The layer named, or the first Conv2D when name is null.
    public static Layer FindLayer(Model model, string? name)
    {
        if (name is null)
            return model.Layers.FirstOrDefault(l => l is Conv2D) ?? throw new UsageException($"Model '{model.Name}' has no Conv2D layer; name one with --layer ({LayerList(model)}).");
        return model.Layers.FirstOrDefault(l => l.Name == name) ?? throw new UsageException($"Model '{model.Name}' has no layer '{name}'; it has: {LayerList(model)}.");
    }

    public static string LayerList(Model model) => string.Join(", ", model.Layers.Select(l => $"{l.Name} ({l.TypeName})"));

    /// The image as the model sees it: resized to the model's input height and width, RGB or gray by its channels.
    public static Tensor LoadForModel(string path, Model model)
    {
        var input = model.InputShape;
        if (input.Rank != 3 || input[2] is not (1 or 3))
            throw new UsageException($"Model '{model.Name}' takes inputs of {input}, not images (height, width, 1 or 3 channels).");
        try
        {
            return ImageFile.Load(path, (input[0], input[1]), input[2] == 1 ? ColorMode.Grayscale : ColorMode.Rgb);
        }
        catch (FileNotFoundException e)
        {
            throw new UsageException(e.Message);
        }
    }

    /// stem-suffix.png beside out (out's stem), for the extra pictures a command writes.
    public static string Beside(string path, string suffix) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, Path.GetFileNameWithoutExtension(path) + suffix + ".png");

    public static void Saved(string path) => AnsiConsole.MarkupLine($"Saved [bold]{Markup.Escape(Path.GetFullPath(path))}[/]");
}
