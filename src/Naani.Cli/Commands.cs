using System.CommandLine;
using System.CommandLine.Invocation;
using Naani.Data;
using Naani.Models;
using Spectre.Console;

namespace Naani.Cli;

/// A mistake on the command line that the user can fix (an unknown model, a missing folder): exit code 2.
sealed class UsageException(string message) : Exception(message);

/// What the commands share: exit codes, the --verbose switch, error lines, option checks and data loading.
static class Commands
{
    public const int Success = 0;
    public const int RuntimeFailure = 1;
    public const int UsageError = 2;

    public static readonly Option<bool> Verbose = new("--verbose")
    {
        Description = "On failure, show the full exception with its stack trace.",
        Recursive = true,
    };

    /// Where errors go: standard error, so that they reach the user even when the output is piped to a file.
    static readonly IAnsiConsole Errors = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });

    /// Parses and runs; parse errors become red lines and exit code 2 instead of System.CommandLine's help dump.
    public static int Invoke(Command root, string[] args)
    {
        WidenRedirectedOutput();
        var parse = root.Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            foreach (var error in parse.Errors)
                Error(error.Message);
            var command = parse.CommandResult.Command;
            string name = command == root ? root.Name : $"{root.Name} {command.Name}";
            Errors.MarkupLine($"[grey]Run '{Markup.Escape(name)} --help' for usage.[/]");
            return UsageError;
        }
        return parse.Invoke();
    }

    /// Sets a command's action: exceptions become one red line (the stack too with --verbose) and an exit code.
    public static void SetAction(Command command, Func<ParseResult, int> run) => command.SetAction(parse =>
    {
        try
        {
            return run(parse);
        }
        catch (UsageException e)
        {
            Error(e.Message);
            return UsageError;
        }
        catch (Exception e)
        {
            Error(e.Message);
            if (parse.GetValue(Verbose))
                Errors.WriteException(e);
            else
                Errors.MarkupLine("[grey]Run again with --verbose for the stack trace.[/]");
            return RuntimeFailure;
        }
    });

    public static void Error(string message) => Errors.MarkupLine($"[red]error:[/] {Markup.Escape(message)}");

    /// Raw text (a model summary) written as is: Spectre would re-wrap it to the console width.
    public static void WriteRaw(string text)
    {
        Console.Out.Write(text);
        Console.Out.Flush();
    }

    /// Redirected output has no width; Spectre then assumes 80 columns, wraps long lines and squeezes wide tables.
    /// A log file has no reason to wrap, so give it room.
    static void WidenRedirectedOutput()
    {
        const int width = 200;
        if (Console.IsOutputRedirected && AnsiConsole.Profile.Width < width)
            AnsiConsole.Profile.Width = width;
        if (Console.IsErrorRedirected && Errors.Profile.Width < width)
            Errors.Profile.Width = width;
    }

    /// Adds a check of an option's value; it is skipped when the value did not even parse (that error is reported).
    public static Option<T> Check<T>(this Option<T> option, Func<T, string?> problem)
    {
        option.Validators.Add(result =>
        {
            T value;
            try
            {
                value = result.GetValueOrDefault<T>();
            }
            catch (InvalidOperationException)
            {
                return;
            }
            if (problem(value) is { } message)
                result.AddError(message);
        });
        return option;
    }

    public static Option<int> MustBePositive(this Option<int> option) =>
        option.Check(value => value > 0 ? null : $"{option.Name} must be a positive integer; got {value}.");

    public static Option<int> MustNotBeNegative(this Option<int> option) =>
        option.Check(value => value >= 0 ? null : $"{option.Name} must be 0 or more; got {value}.");

    /// --model NAME for the commands that build a built-in architecture.
    public static Option<string> ArchitectureOption() => new Option<string>("--model", "-m")
    {
        Description = $"Built-in architecture ({string.Join(", ", Architectures.Names)}), a file of Keras JSON (model.to_json()), or a Keras model (.keras, whole-model .h5) to fine-tune.",
        HelpName = "NAME|FILE.json|FILE.keras",
        Required = true,
    }.Check(name => IsArchitecture(name) || IsKerasJson(name) || IsKerasModel(name) ? null
        : $"Unknown model '{name}'; built-in models: {string.Join(", ", Architectures.Names)}, or an existing .json (Keras JSON), .keras or .h5 (Keras model) file.");

    /// An existing .json file: an architecture in Keras's JSON.
    public static bool IsKerasJson(string? path) => path is not null && path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && File.Exists(path);

    /// A model by name or file: Keras JSON (.json: the architecture, new weights from seed), a saved model file, or a
    /// built-in architecture. A file wins over a built-in name of the same spelling: the user pointed at it.
    public static Model OpenModel(string nameOrFile, int? seed = null)
    {
        if (IsKerasJson(nameOrFile)) return Model.FromKerasJsonFile(nameOrFile, seed);
        if (IsKerasModel(nameOrFile)) return Serialization.KerasModelFile.Load(nameOrFile, seed);
        return File.Exists(nameOrFile) ? Model.Load(nameOrFile) : Architectures.Create(nameOrFile, seed);
    }

    /// An existing Keras model file: .keras (Keras 3), or .h5 (tf.keras's whole model; a weights-only .h5 is refused when read).
    public static bool IsKerasModel(string? path) => path is not null && File.Exists(path)
        && (path.EndsWith(".keras", StringComparison.OrdinalIgnoreCase) || (path.EndsWith(".h5", StringComparison.OrdinalIgnoreCase) && !path.EndsWith(".weights.h5", StringComparison.OrdinalIgnoreCase)));

    public static bool IsArchitecture(string? name) => Architectures.Names.Contains(name ?? "", StringComparer.OrdinalIgnoreCase);

    /// --data NAME|DIR: a known dataset name or a folder holding the four MNIST-style IDX files.
    public static Option<string> DataOption() => new Option<string>("--data", "-d")
    {
        Description = $"Dataset: a name ({string.Join(", ", Datasets.KnownNames)}) looked up in {Datasets.CacheDirectory}, " +
            $"then {Datasets.DebianRoot}, then downloaded; or a folder holding the four MNIST-style IDX files (gzipped or not) or CIFAR's .bin files; " +
            "or an image folder with one subfolder per class (or train/, validation/, test/ holding them).",
        HelpName = "NAME|DIR",
        Required = true,
    }.Check(DatasetProblem);

    static string? DatasetProblem(string value)
    {
        var known = string.Join(", ", Datasets.KnownNames);
        if (Directory.Exists(value) || Datasets.KnownNames.Contains(value, StringComparer.OrdinalIgnoreCase))
            return null;
        return File.Exists(value)
            ? $"--data '{value}' is a file; pass the folder that holds the IDX files, or a dataset name ({known})."
            : $"--data '{value}' is neither a folder nor a known dataset ({known}).";
    }

    public static Option<int> BatchSizeOption(int defaultValue) => new Option<int>("--batch-size", "-b")
    {
        Description = "Samples per batch.",
        HelpName = "B",
        DefaultValueFactory = _ => defaultValue,
    }.MustBePositive();

    public static Option<int> ThreadsOption() => new Option<int>("--threads", "-t")
    {
        Description = "Threads for the kernels (Naani.Threading.MaxThreads); all cores by default.",
        HelpName = "T",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    }.MustBePositive();

    /// Loads a dataset, telling where it comes from. A folder without the dataset's files is the user's mistake (exit 2);
    /// a file that is there but unreadable or corrupt is a runtime failure (exit 1).
    public static (ImageDataset Train, ImageDataset Test, string Source) LoadData(string nameOrDirectory)
    {
        (ImageDataset Train, ImageDataset Test, string Source) data;
        try
        {
            data = Datasets.Load(nameOrDirectory, message => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(message)}[/]"));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new UsageException(e.Message);
        }
        AnsiConsole.MarkupLine(
            $"Data [bold]{Markup.Escape(nameOrDirectory)}[/] from {Markup.Escape(data.Source)}: " +
            $"{data.Train.Count:N0} training and {data.Test.Count:N0} test images of {data.Train.ImageShape}, {data.Train.NumClasses} classes");
        return data;
    }

    /// The targets a model's loss expects for a dataset: class indices (N) for a softmax output,
    /// 0/1 in a column (N, 1) for a single sigmoid unit.
    public static Tensor Targets(Model model, ImageDataset data)
    {
        var labels = data.SparseLabels();
        return model.OutputShape[^1] == 1 ? labels.Reshape(data.Count, 1) : labels;
    }

    /// The number of classes a model tells apart: its outputs, or 2 for a single sigmoid unit.
    public static int ClassCount(Model model) => Math.Max(2, model.OutputShape[^1]);
}
