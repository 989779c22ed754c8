using System.CommandLine;
using System.CommandLine.Help;
using Naani.Cli;

// naani: the command-line face of Naani. Each command lives in its own file; Commands.cs holds what they share.
// A plain Command rather than RootCommand, whose name would be the assembly's (Naani.Cli) in the help.
var root = new Command("naani", "Train, evaluate and benchmark convolutional networks in pure .NET.")
{
    new HelpOption(),
    new VersionOption(),
    TrainCommand.Create(),
    SummaryCommand.Create(),
    EvaluateCommand.Create(),
    BenchCommand.Create(),
    PredictCommand.Create(),
    KernelsCommand.Create(),
    FeatureMapsCommand.Create(),
    FilterCommand.Create(),
    ExplainCommand.Create(),
    DataCommand.Create(),
    ExportCommand.Create(),
    ServeCommand.Create(),
};
root.Options.Add(Commands.Verbose);
root.SetAction(_ =>
{
    root.Parse("--help").Invoke();
    return Commands.UsageError;
});
return Commands.Invoke(root, args);
