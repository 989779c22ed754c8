using System.CommandLine;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Naani.Serving;
using Naani.Vision;
using Spectre.Console;

namespace Naani.Cli;

/// naani explain: one self-contained HTML page that shows what a network computes: its layers with shapes, parameters
/// and memory, each layer's feature maps for an image, the kernels behind a map, the first convolution and its pooling
/// one value at a time, and the prediction. Written to a file, or served on 127.0.0.1 with --serve.
static class ExplainCommand
{
    public const string DefaultFolder = "explain", PageName = "index.html";

    public static Command Create()
    {
        var model = Inspect.ModelOption();
        var images = new Option<string[]>("--image", "-i")
        {
            Description = "An image to follow through the network; repeat for several (the page gets a picker) [default: a mid-grey image].",
            HelpName = "IMG",
            AllowMultipleArgumentsPerToken = false,
        }.Check(values => values?.FirstOrDefault(v => !File.Exists(v)) is { } missing ? $"--image '{missing}': no such file." : null);
        var output = Inspect.OutOption($"The folder to write {PageName} in, or the .html file itself [default: {DefaultFolder}/].");
        var maxMaps = new Option<int>("--max-maps") { Description = "Feature maps drawn per layer (the first N).", HelpName = "N", DefaultValueFactory = _ => ExplainPage.DefaultMaxMaps }
            .MustBePositive();
        var serve = new Option<bool>("--serve") { Description = "Also serve the page on http://127.0.0.1 until Ctrl+C." };
        var port = new Option<int>("--port") { Description = "The port for --serve (0: any free port).", HelpName = "P", DefaultValueFactory = _ => 8080 }
            .Check(value => value is >= 0 and <= 65535 ? null : $"--port must be 0..65535; got {value}.");
        var seed = Inspect.SeedOption();
        var command = new Command("explain", "Write one self-contained HTML page that shows what a network computes for an image, layer by layer.")
        {
            model, images, output, maxMaps, serve, port, seed,
        };
        Commands.SetAction(command, parse => Run(parse.GetValue(model)!, parse.GetValue(images) ?? [], parse.GetValue(output), parse.GetValue(maxMaps),
            parse.GetValue(serve), parse.GetValue(port), parse.GetValue(seed)));
        return command;
    }

    /// index.html in folder, or the .html file named.
    public static string PagePath(string? output) =>
        output is null ? Path.Combine(DefaultFolder, PageName)
        : output.EndsWith(".html", StringComparison.OrdinalIgnoreCase) || output.EndsWith(".htm", StringComparison.OrdinalIgnoreCase) ? output
        : Path.Combine(output, PageName);

    static int Run(string modelName, string[] imagePaths, string? output, int maxMaps, bool serve, int port, int seed)
    {
        var model = Inspect.LoadModel(modelName, seed);
        if (ExplainPage.Problem(model) is { } problem) throw new UsageException(problem);
        var images = new List<ExplainImage>();
        foreach (var path in imagePaths)
            images.Add(new ExplainImage(Path.GetFileName(path), LoadImage(path, model)));
        if (images.Count == 0)
        {
            var grey = new Tensor(model.InputShape);
            grey.Fill(0.5f);
            images.Add(new ExplainImage("mid-grey (no --image given)", grey));
            AnsiConsole.MarkupLine("No --image: the page follows a mid-grey image (every pixel 0.5) through the network.");
        }

        var html = ExplainPage.Html(model, images, maxMaps);
        var page = PagePath(output);
        IO.AtomicFile.WriteAllText(page, html);
        Inspect.Saved(page);
        AnsiConsole.MarkupLine($"Open it in a browser: [bold]{Markup.Escape(new Uri(Path.GetFullPath(page)).AbsoluteUri)}[/] ({html.Length / 1e6:0.00} MB, no network needed)");
        return serve ? Serve(html, port).GetAwaiter().GetResult() : Commands.Success;
    }

    /// The image resized to the model's input; an unreadable file is the user's to fix.
    static Tensor LoadImage(string path, Models.Model model)
    {
        try
        {
            return Inspect.LoadForModel(path, model);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"--image '{path}' could not be read as an image: {e.Message}");
        }
    }

    /// Serves the page on 127.0.0.1:port (any free port for 0) until Ctrl+C or SIGTERM.
    static async Task<int> Serve(string html, int port)
    {
        WebApplication app;
        string address;
        try
        {
            (app, address) = await LocalWebApp.StartAsync(IPAddress.Loopback, port, web =>
            {
                web.MapGet("/", () => Results.Content(html, "text/html; charset=utf-8"));
                web.MapGet("/" + PageName, () => Results.Content(html, "text/html; charset=utf-8"));
            });
        }
        catch (IOException e)
        {
            throw new UsageException(e.Message);
        }
        await using var running = app;
        AnsiConsole.MarkupLine($"Serving the page on [bold]{Markup.Escape(address)}[/]; Ctrl+C stops.");
        await app.WaitForShutdownAsync();
        return Commands.Success;
    }
}
