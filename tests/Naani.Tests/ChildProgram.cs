using System.Diagnostics;
using Naani.Layers;
using Naani.Models;

namespace Naani.Tests;

/// The test assembly doubles as a small program, so a test can run Naani in a child process under limits
/// it cannot put on itself (a file-size limit, which kills the process that exceeds it):
///   dotnet exec Naani.Tests.dll save-model PATH UNITS SEED
/// saves ChildProgram.Model(units, seed) to PATH and exits 0, or prints the IOException's message and exits 3.
/// The test runner loads this assembly as a library and never calls Main.
public static class ChildProgram
{
    public const int SaveFailed = 3;

    public static int Main(string[] args)
    {
        if (args is not ["save-model", var path, var units, var seed])
        {
            Console.Error.WriteLine("usage: save-model PATH UNITS SEED");
            return 2;
        }
        try
        {
            Model(int.Parse(units), int.Parse(seed)).Save(path);
            Console.WriteLine("saved");
            return 0;
        }
        catch (IOException e)
        {
            Console.WriteLine(e.Message);
            return SaveFailed;
        }
    }

    /// A one-layer model whose file is about 36 * units bytes: big enough to cross a small limit.
    public static Model Model(int units, int seed)
    {
        var model = new Sequential("child", seed).Add(new Input(8)).Add(new Dense(units));
        model.Build();
        return model;
    }

    /// Runs `bash -c "SETUP; exec RUNAS dotnet exec Naani.Tests.dll ARGS"` (SETUP: ulimit, trap...; RUNAS: setpriv...)
    /// and returns the exit code (128 + the signal's number when a signal killed it) and what it printed.
    public static (int ExitCode, string Output) Run(string setup, string runAs, params string[] args)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)
            ? host
            : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["-c", $"{setup}; exec {runAs} \"$@\"", "bash", dotnet, "exec", typeof(ChildProgram).Assembly.Location, .. args])
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"The child process ({string.Join(' ', args)}) ran over a minute.");
        }
        return (process.ExitCode, stdout + stderr.Result);
    }
}
