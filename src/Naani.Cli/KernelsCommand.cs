using System.CommandLine;
using Naani.Inspection;
using Naani.Layers;
using Naani.Vision;

namespace Naani.Cli;

/// naani kernels: a convolution's kernels, printed per input channel as the seed's log_initial_kernels prints them,
/// and drawn as a PNG grid about as wide as tall (one cell per kernel holding its input-channel tiles, at most 16;
/// blue negative, red positive).
static class KernelsCommand
{
    public static Command Create()
    {
        var model = Inspect.ModelOption();
        var layer = new Option<string?>("--layer", "-l") { Description = "The Conv2D layer [default: the first one, e.g. conv1].", HelpName = "NAME" };
        var output = Inspect.OutOption("The PNG grid [default: kernels-<layer>.png].");
        var max = new Option<int?>("--max") { Description = "Print and draw only the first N kernels [default: all].", HelpName = "N" }
            .Check(value => value is null or > 0 ? null : $"--max must be positive; got {value}.");
        var seed = Inspect.SeedOption();
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Write the PNG without printing the matrices." };
        var command = new Command("kernels", "Print a convolution layer's kernels (one matrix per input channel) and write them as a PNG grid, one cell per kernel.")
        {
            model, layer, output, max, seed, quiet,
        };
        Commands.SetAction(command, parse => Run(parse.GetValue(model)!, parse.GetValue(layer), parse.GetValue(output), parse.GetValue(max), parse.GetValue(seed), parse.GetValue(quiet)));
        return command;
    }

    static int Run(string modelName, string? layerName, string? output, int? max, int seed, bool quiet)
    {
        var model = Inspect.LoadModel(modelName, seed);
        var layer = Inspect.FindLayer(model, layerName);
        if (layer is not Conv2D conv)
            throw new UsageException($"Layer '{layer.Name}' is a {layer.TypeName}; only Conv2D layers have kernels. Conv2D layers: " +
                string.Join(", ", model.Layers.OfType<Conv2D>().Select(l => l.Name)) + ".");
        if (!quiet) Commands.WriteRaw(KernelLog.Format(conv, max));
        var path = output ?? $"kernels-{conv.Name}.png";
        using (var picture = InspectionImages.Kernels(conv, max))
            ImageFile.SavePng(picture, path);
        Inspect.Saved(path);
        return Commands.Success;
    }
}
