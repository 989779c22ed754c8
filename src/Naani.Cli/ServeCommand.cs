using System.CommandLine;
using System.Globalization;
using Naani.Serving;
using Spectre.Console;

namespace Naani.Cli;

/// naani serve: saved models behind HTTP (Naani.Serving.ModelServer), until SIGTERM or Ctrl+C.
static class ServeCommand
{
    public static Command Create()
    {
        var models = new Option<string[]>("--model", "-m")
        {
            Description = "A saved model file to serve; give -m several times for several models.",
            HelpName = "FILE",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        models.Validators.Add(result =>
        {
            foreach (var file in result.GetValueOrDefault<string[]>() ?? [])
                if (!File.Exists(file)) result.AddError($"--model '{file}' is not an existing file.");
        });
        var names = new Option<string[]>("--name") { Description = "The name each -m is served under, in order [default: the file's name without its extension].", HelpName = "NAME" };
        var host = new Option<string>("--host") { Description = "Address to listen on (an IP address or localhost); 0.0.0.0 for every interface.", HelpName = "ADDRESS", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port to listen on.", HelpName = "PORT", DefaultValueFactory = _ => 8080 };
        var maxBatch = new Option<int>("--max-batch") { Description = "The most samples one forward pass takes: concurrent requests are gathered up to this many.", HelpName = "N", DefaultValueFactory = _ => 32 }.MustBePositive();
        var maxDelay = new Option<double>("--max-delay-ms") { Description = "How long the first request of a batch waits for others to join it.", HelpName = "MS", DefaultValueFactory = _ => 2 };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests waiting per model before new ones get 503 with Retry-After.", HelpName = "N", DefaultValueFactory = _ => 1024 }.MustBePositive();
        var maxBody = new Option<double>("--max-body-mb") { Description = "The largest request body in MiB; larger ones get 413.", HelpName = "MB", DefaultValueFactory = _ => 16 };
        var replicas = new Option<int>("--replicas") { Description = "Copies of each model answering batches side by side, one thread each (1: one copy on all threads). Raises throughput under load for small models; costs a copy of the weights each.", HelpName = "R", DefaultValueFactory = _ => 1 }.MustBePositive();
        var threads = Commands.ThreadsOption();

        var command = new Command("serve", "Serve saved models over HTTP: TensorFlow Serving's REST API, image uploads, dynamic batching, Prometheus metrics.")
        {
            models, names, host, port, maxBatch, maxDelay, maxQueue, maxBody, replicas, threads,
        };
        Commands.SetAction(command, parse =>
        {
            var files = parse.GetValue(models)!;
            var given = parse.GetValue(names) ?? [];
            if (given.Length > files.Length)
                throw new UsageException($"{given.Length} --name for {files.Length} -m: give at most one name per model.");
            var served = files.Select((f, i) => (Name: i < given.Length ? given[i] : Path.GetFileNameWithoutExtension(f), Path: Path.GetFullPath(f))).ToList();
            var options = new ServeOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                MaxBatch = parse.GetValue(maxBatch),
                MaxDelayMilliseconds = parse.GetValue(maxDelay),
                MaxQueue = parse.GetValue(maxQueue),
                MaxBodyMegabytes = parse.GetValue(maxBody),
                Replicas = parse.GetValue(replicas),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new UsageException(e.Message.Split(" (Parameter")[0]);
            }
            Threading.MaxThreads = parse.GetValue(threads);
            return Run(served, options).GetAwaiter().GetResult();
        });
        return command;
    }

    static async Task<int> Run(List<(string Name, string Path)> models, ServeOptions options)
    {
        void Log(string line) => AnsiConsole.MarkupLine(Markup.Escape(line));
        await using var server = await ModelServer.StartAsync(models, options, Log);
        foreach (var name in server.Models.Keys)
        {
            Log($"  curl -s {server.Address}/v1/models/{name}");
            Log($"  curl -s -H 'Content-Type: image/png' --data-binary @image.png {server.Address}/v1/models/{name}/images");
        }
        Log("Ctrl+C or SIGTERM stops the server after the requests in flight.");
        await server.WaitForShutdownAsync();
        Log(string.Create(CultureInfo.InvariantCulture, $"Stopped."));
        return Commands.Success;
    }
}
