using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Naani.Data;
using Naani.Models;
using Naani.Vision;
using Spectre.Console;

namespace Naani.Cli;

/// naani predict: the class and its probability for each image of a file or a folder.
static class PredictCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "A saved model file (.naani), as written by naani train.", HelpName = "FILE", Required = true }
            .Check(value => File.Exists(value) ? null
                : Directory.Exists(value) ? $"--model '{value}' is a folder; pass the model file inside it, e.g. {Path.Combine(value, TrainCommand.ModelFile)}."
                : $"--model '{value}': no such file.");
        var image = new Option<string>("--image", "-i")
        {
            Description = "An image, or a folder: every image in it and its subfolders. When the subfolders are named after the model's classes, the accuracy is reported too.",
            HelpName = "IMG|DIR",
            Required = true,
        }.Check(value => File.Exists(value) || Directory.Exists(value) ? null : $"--image '{value}': no such file or folder.");
        var top = new Option<int>("--top") { Description = "Show the K most probable classes per image.", HelpName = "K", DefaultValueFactory = _ => 1 }.MustBePositive();
        var batchSize = Commands.BatchSizeOption(32);
        var threads = Commands.ThreadsOption();
        var json = new Option<string?>("--json") { Description = "Also write the predictions as JSON to FILE.", HelpName = "FILE" };
        var command = new Command("predict", "Print the predicted class and its probability for an image or every image of a folder.")
        {
            model, image, top, batchSize, threads, json,
        };
        Commands.SetAction(command, parse => Run(parse.GetValue(model)!, parse.GetValue(image)!, parse.GetValue(top), parse.GetValue(batchSize), parse.GetValue(threads), parse.GetValue(json)));
        return command;
    }

    sealed record Prediction(string File, int Class, float Probability, (int Class, float Probability)[] Top, int? Actual);

    /// Yields images one at a time from a list of files, each resized to the model's input.
    sealed class FileSource(IReadOnlyList<string> files, Shape shape, int[] labels, string[] classNames) : IImageSource
    {
        public int Count => files.Count;
        public Shape ImageShape => shape;
        public IReadOnlyList<string> ClassNames => classNames;
        public int GetLabel(int index) => labels[index];
        public string Describe(int index) => files[index];

        public bool TryRead(int index, Span<float> pixels, out string? reason) =>
            ImageFile.TryLoad(files[index], shape[0], shape[1], shape[2] == 1 ? ColorMode.Grayscale : ColorMode.Rgb, pixels, out reason);
    }

    static int Run(string modelPath, string target, int top, int batchSize, int threads, string? jsonPath)
    {
        Threading.MaxThreads = threads;
        var model = Commands.OpenModel(modelPath);
        var input = model.InputShape;
        if (input.Rank != 3 || input[2] is not (1 or 3))
            throw new UsageException($"Model '{model.Name}' takes inputs of {input}, not images.");
        int classes = Commands.ClassCount(model);
        var names = model.ClassNames is { } saved && saved.Count == classes ? saved.ToArray() : [.. Enumerable.Range(0, classes).Select(i => i.ToString(CultureInfo.InvariantCulture))];
        AnsiConsole.MarkupLine($"Model [bold]{Markup.Escape(model.Name)}[/] from {Markup.Escape(Path.GetFullPath(modelPath))}: input {input}, classes {Markup.Escape(string.Join(", ", names))}");

        var files = File.Exists(target)
            ? [Path.GetFullPath(target)]
            : Directory.EnumerateFiles(target, "*", SearchOption.AllDirectories).Where(ImageFile.HasImageExtension).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new UsageException($"{Path.GetFullPath(target)} holds no images ({string.Join(", ", ImageFile.Extensions)}).");

        // In a folder whose subfolders are named after the classes, the subfolder is the actual class.
        var actual = files.Select(f => File.Exists(target) ? -1 : ActualClass(target, f, names)).ToArray();
        bool labelled = actual.All(a => a >= 0);
        var source = new FileSource(files, input, [.. actual.Select(a => Math.Max(0, a))], names);
        using var pipeline = new BatchPipeline(source, new PipelineOptions
        {
            BatchSize = batchSize,
            Shuffle = false,
            Warning = m => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(m)}[/]"),
        });
        var (outputs, _) = model.Predict(pipeline);
        var kept = Enumerable.Range(0, files.Count).Where(i => !pipeline.Unreadable.ContainsKey(i)).ToArray();

        var predictions = new List<Prediction>();
        int units = outputs.SampleSize;
        for (int r = 0; r < kept.Length; r++)
        {
            var row = outputs.Data.AsSpan(r * units, units);
            float[] probabilities = units == 1 ? [1 - row[0], row[0]] : row.ToArray();
            var ranked = probabilities.Select((p, c) => (Class: c, Probability: p)).OrderByDescending(x => x.Probability).ThenBy(x => x.Class).ToArray();
            predictions.Add(new Prediction(files[kept[r]], ranked[0].Class, ranked[0].Probability, ranked[..Math.Min(top, ranked.Length)], labelled ? actual[kept[r]] : null));
        }

        var table = new Table().Border(TableBorder.Rounded).AddColumn("Image").AddColumn("Class").AddColumn(new TableColumn("Probability").RightAligned());
        if (top > 1) table.AddColumn("Next");
        if (labelled) table.AddColumn("Actual");
        string root = File.Exists(target) ? Path.GetDirectoryName(Path.GetFullPath(target))! : Path.GetFullPath(target);
        foreach (var p in predictions)
        {
            var cells = new List<string>
            {
                Markup.Escape(Path.GetRelativePath(root, p.File)),
                p.Actual is { } a && a != p.Class ? $"[red]{Markup.Escape(names[p.Class])}[/]" : $"[bold]{Markup.Escape(names[p.Class])}[/]",
                p.Probability.ToString("0.0000", CultureInfo.InvariantCulture),
            };
            if (top > 1) cells.Add(Markup.Escape(string.Join(", ", p.Top.Skip(1).Select(t => $"{names[t.Class]} {t.Probability.ToString("0.0000", CultureInfo.InvariantCulture)}"))));
            if (labelled) cells.Add(Markup.Escape(names[p.Actual!.Value]));
            table.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(table);
        if (labelled)
        {
            int right = predictions.Count(p => p.Actual == p.Class);
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"Accuracy [bold]{(double)right / predictions.Count:0.0000}[/] ({right:N0} of {predictions.Count:N0}; the subfolders name the actual classes)"));
        }
        if (pipeline.Unreadable.Count > 0)
            AnsiConsole.MarkupLine($"[yellow]{pipeline.Unreadable.Count} file(s) could not be read and were skipped.[/]");

        if (jsonPath is not null)
        {
            var array = new JsonArray();
            foreach (var p in predictions)
                array.Add(new JsonObject
                {
                    ["file"] = p.File,
                    ["class"] = names[p.Class],
                    ["class_index"] = p.Class,
                    ["probability"] = p.Probability,
                    ["top"] = new JsonArray([.. p.Top.Select(t => (JsonNode?)new JsonObject { ["class"] = names[t.Class], ["probability"] = t.Probability })]),
                    ["actual"] = p.Actual is { } a ? names[a] : null,
                });
            Report.WriteJson(jsonPath, new JsonObject { ["model"] = Path.GetFullPath(modelPath), ["predictions"] = array });
            Inspect.Saved(jsonPath);
        }
        return Commands.Success;
    }

    static int ActualClass(string root, string file, string[] names)
    {
        var relative = Path.GetRelativePath(root, file);
        var first = relative.Split(Path.DirectorySeparatorChar)[0];
        return relative.Contains(Path.DirectorySeparatorChar) ? Array.IndexOf(names, first) : -1;
    }
}
