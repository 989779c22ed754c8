using System.Diagnostics;
using System.Text.Json.Nodes;
using Naani.Callbacks;
using Naani.Serialization;
using Naani.Tests.Data;

namespace Naani.Tests.Cli;

/// `naani train` on real data (Fashion-MNIST), killed with SIGKILL at several points (once in the middle of
/// writing a checkpoint), resumed each time with `naani train --resume DIR`: the final model file is
/// byte-identical to that of an uninterrupted run, and every checkpoint on disk reads back whole after each kill.
public sealed class KillAndResumeTests : IDisposable
{
    readonly Serialization.TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    /// 6,000 training images (the other 54,000 validate), batches of 32: 188 steps an epoch, 376 in all.
    static string[] TrainArguments(string output) =>
        ["train", "-m", "mnist-baseline", "-d", "fashion-mnist", "-e", "2", "-b", "32", "-t", "2", "--validation-split", "0.9",
         "--checkpoint-every", "20", "--keep-checkpoints", "2", "-o", output];

    [FashionMnistFact]
    public void A_run_killed_three_times_and_resumed_ends_byte_identical_to_the_uninterrupted_run()
    {
        string reference = temp.File("reference"), run = temp.File("killed"), checkpoints = Path.Combine(run, "checkpoints");
        Assert.Equal(0, CliRunner.Start(TrainArguments(reference)).WaitForExit(out var log));
        Assert.Contains("Saved", log);

        // 1. Killed during training, after the checkpoint of step 60.
        KillWhen(TrainArguments(run), () => Position(checkpoints) >= 60);
        AssertEveryCheckpointReads(checkpoints);

        // 2. Resumed, and killed inside a checkpoint write: saves pause half-written, the kill lands in the pause.
        long before = Position(checkpoints);
        KillWhen(["train", "--resume", run], () => Directory.EnumerateFiles(checkpoints, "*.tmp-*").Any(),
            new() { ["NAANI_FAULT_SLOW_SAVE_MS"] = "30000" });
        Assert.NotEmpty(Directory.EnumerateFiles(checkpoints, "*.tmp-*"));   // the cut-short save's temporary file
        AssertEveryCheckpointReads(checkpoints);
        Assert.Equal(before, Position(checkpoints));   // the first save after resuming was the one cut short

        // 3. Resumed, and killed in the second epoch.
        KillWhen(["train", "--resume", run], () => Position(checkpoints) >= 240);
        AssertEveryCheckpointReads(checkpoints);

        // 4. Resumed to the end.
        Assert.Equal(0, CliRunner.Start(["train", "--resume", run]).WaitForExit(out log));
        Assert.Contains("Resuming", log);
        Assert.Empty(Directory.EnumerateFiles(checkpoints, "*.tmp-*"));

        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "model.naani")), File.ReadAllBytes(Path.Combine(run, "model.naani")));
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(reference, "metrics.json")))!;
        var actual = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")))!;
        foreach (var key in new[] { "history", "test" })
            Assert.Equal(expected[key]!.ToJsonString(), actual[key]!.ToJsonString());
    }

    /// The newest checkpoint's place in the run (steps from its start), or -1 when there is none.
    static long Position(string checkpoints)
    {
        var newest = BackupAndRestore.List(checkpoints).FirstOrDefault();
        return newest is null ? -1 : long.Parse(Path.GetFileNameWithoutExtension(newest)["checkpoint-".Length..]);
    }

    static void AssertEveryCheckpointReads(string checkpoints)
    {
        var files = BackupAndRestore.List(checkpoints);
        Assert.NotEmpty(files);
        foreach (var file in files) Checkpoint.Read(file);
    }

    /// Starts naani and kills it (SIGKILL) as soon as condition holds; fails if it ends by itself first.
    static void KillWhen(string[] arguments, Func<bool> condition, Dictionary<string, string>? environment = null)
    {
        var process = CliRunner.Start(arguments, environment);
        var clock = Stopwatch.StartNew();
        while (!SafeCondition(condition))
        {
            Assert.False(process.Process.HasExited, $"naani {string.Join(' ', arguments)} ended (exit code {(process.Process.HasExited ? process.Process.ExitCode : 0)}) before the moment to kill it:\n{process.Output()}");
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(3), $"naani {string.Join(' ', arguments)} never reached the moment to kill it:\n{process.Output()}");
            Thread.Sleep(5);
        }
        process.Process.Kill(entireProcessTree: true);   // SIGKILL on Linux
        process.Process.WaitForExit();
    }

    static bool SafeCondition(Func<bool> condition)
    {
        try
        {
            return condition();
        }
        catch (IOException)
        {
            return false;   // the folder is not there yet, or a file vanished between listing and reading: look again
        }
    }
}
