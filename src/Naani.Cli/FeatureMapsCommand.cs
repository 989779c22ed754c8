using System.CommandLine;
using Naani.Inspection;
using Naani.Vision;
using Spectre.Console;

namespace Naani.Cli;

/// naani featuremaps: what one layer makes of one image, as the seed's figure of the 32 feature maps of conv1,
/// and the same maps after the pooling layer that follows.
static class FeatureMapsCommand
{
    public static Command Create()
    {
        var model = Inspect.ModelOption();
        var image = Inspect.ImageOption("The image; it is resized to the model's input (e.g. 128x128 RGB) as training resizes it.");
        var layer = new Option<string?>("--layer", "-l") { Description = "A convolution or pooling layer [default: the first Conv2D, e.g. conv1].", HelpName = "NAME" };
        var output = Inspect.OutOption("The PNG grid [default: featuremaps-<layer>.png]; beside it <name>-pooled.png (the maps after the next pooling layer) and <name>-input.png (the resized image).");
        var colormap = new Option<string>("--colormap") { Description = "viridis (matplotlib's default) or gray.", HelpName = "NAME", DefaultValueFactory = _ => "viridis" };
        colormap.AcceptOnlyFromAmong("viridis", "gray");
        var seed = Inspect.SeedOption();
        var command = new Command("featuremaps", "Write a PNG grid of a layer's feature maps for one image, and of the same maps after pooling.")
        {
            model, image, layer, output, colormap, seed,
        };
        Commands.SetAction(command, parse => Run(parse.GetValue(model)!, parse.GetValue(image)!, parse.GetValue(layer), parse.GetValue(output),
            Colormaps.Parse(parse.GetValue(colormap)!), parse.GetValue(seed)));
        return command;
    }

    static int Run(string modelName, string imagePath, string? layerName, string? output, Colormap colormap, int seed)
    {
        var model = Inspect.LoadModel(modelName, seed);
        var layer = Inspect.FindLayer(model, layerName);
        if (layer.OutputShape.Rank != 3)
            throw new UsageException($"Layer '{layer.Name}' ({layer.TypeName}) outputs {layer.OutputShape.ToKerasString()}, not feature maps; pick a convolution or pooling layer: " +
                string.Join(", ", model.Layers.Where(l => l.OutputShape.Rank == 3).Select(l => l.Name)) + ".");
        var image = Inspect.LoadForModel(imagePath, model);
        var (maps, pooled) = FeatureMaps.Of(model, image, layer.Name);

        var path = output ?? $"featuremaps-{layer.Name}.png";
        var input = model.InputShape;
        AnsiConsole.MarkupLine($"Input: {Markup.Escape(Path.GetFullPath(imagePath))} resized to {input[0]}x{input[1]}x{input[2]}");
        AnsiConsole.MarkupLine($"{Markup.Escape(layer.Name)} ({layer.TypeName}) output: {Dims(maps.Output)}");
        using (var picture = InspectionImages.FeatureMaps(maps, colormap))
            ImageFile.SavePng(picture, path);
        Inspect.Saved(path);
        if (pooled is not null)
        {
            AnsiConsole.MarkupLine($"After {Markup.Escape(pooled.Layer.Name)} ({pooled.Layer.TypeName}): {Dims(pooled.Output)}");
            var pooledPath = Inspect.Beside(path, "-pooled");
            using var picture = InspectionImages.FeatureMaps(pooled, colormap);
            ImageFile.SavePng(picture, pooledPath);
            Inspect.Saved(pooledPath);
        }
        var inputPath = Inspect.Beside(path, "-input");
        ImageFile.SavePng(image, inputPath);
        Inspect.Saved(inputPath);
        return Commands.Success;
    }

    static string Dims(Tensor t) => string.Join("x", t.Shape.Dims[1..].ToArray());
}
