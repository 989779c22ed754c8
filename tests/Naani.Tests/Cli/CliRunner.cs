using System.Diagnostics;

namespace Naani.Tests.Cli;

/// Runs the naani CLI built beside the tests as a child process (dotnet Naani.Cli.dll ...), its output captured.
public static class CliRunner
{
    public sealed class Child(Process process, System.Text.StringBuilder output)
    {
        public Process Process { get; } = process;

        public string Output()
        {
            lock (output) return output.ToString();
        }

        /// Waits (5 minutes at most) and returns the exit code; the output in log. expectSuccess: fail on a non-zero code.
        public int WaitForExit(out string log, bool expectSuccess = true)
        {
            if (!Process.WaitForExit(TimeSpan.FromMinutes(5)))
            {
                Process.Kill(entireProcessTree: true);
                Assert.Fail($"naani did not finish in 5 minutes:\n{Output()}");
            }
            Process.WaitForExit();
            log = Output();
            Assert.True(!expectSuccess || Process.ExitCode == 0, $"naani exited with {Process.ExitCode}:\n{log}");
            return Process.ExitCode;
        }
    }

    /// The CLI built beside the tests (the test project references it, so it is built first), run with dotnet.
    public static Child Start(string[] arguments, Dictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(CliPath());
        foreach (var a in arguments) start.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? []) start.Environment[key] = value;
        var output = new System.Text.StringBuilder();
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new Child(process, output);
    }

    public static string CliPath()
    {
        // tests/Naani.Tests/bin/<Configuration>/net10.0/ -> src/Naani.Cli/bin/<Configuration>/net10.0/Naani.Cli.dll
        var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string framework = bin.Name, configuration = bin.Parent!.Name;
        var root = bin.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        string path = Path.Combine(root, "src", "Naani.Cli", "bin", configuration, framework, "Naani.Cli.dll");
        Assert.True(File.Exists(path), $"The naani CLI is not built at {path}: build the solution (dotnet build Naani.slnx -c {configuration}).");
        return path;
    }
}
