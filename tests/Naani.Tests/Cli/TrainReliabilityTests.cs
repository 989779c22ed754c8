using System.Text.Json.Nodes;
using Naani.Tests.Data;

namespace Naani.Tests.Cli;

/// What naani train says and leaves behind when a run diverges, and how --resume refuses what it cannot do.
public sealed class TrainReliabilityTests : IDisposable
{
    readonly Serialization.TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    [FashionMnistFact]
    public void A_diverging_run_exits_1_names_the_step_writes_metrics_json_with_the_reason_and_keeps_its_last_checkpoint()
    {
        string run = temp.File("diverged");
        var child = CliRunner.Start(["train", "-m", "mnist-baseline", "-d", "fashion-mnist", "-b", "32", "-t", "2", "--validation-split", "0.9",
            "--optimizer", "sgd", "--lr", "1e30", "--checkpoint-every", "1", "-o", run]);
        Assert.Equal(1, child.WaitForExit(out var log, expectSuccess: false));
        Assert.Matches(@"error: Training stopped at epoch 1, step \d+: ", log);

        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")))!;
        Assert.Equal("stopped: non-finite", metrics["status"]!.GetValue<string>());
        Assert.StartsWith("Training stopped at epoch 1, step", metrics["reason"]!.GetValue<string>());
        int step = metrics["step"]!.GetValue<int>();
        string last = metrics["last_checkpoint"]!.GetValue<string>();
        Assert.EndsWith($"checkpoint-{step - 1:D9}.naani", last);
        var weights = Naani.Models.Model.Load(last).GetWeights();
        Assert.All(weights, t => Assert.True(Naani.Kernels.Finite.All(t.Data), "the last checkpoint holds finite weights"));
        Assert.False(File.Exists(Path.Combine(run, "model.naani")));
    }

    [Fact]
    public void Resume_refuses_a_folder_without_checkpoints_and_other_options()
    {
        string empty = temp.File("empty");
        Directory.CreateDirectory(empty);
        Assert.Equal(2, CliRunner.Start(["train", "--resume", empty]).WaitForExit(out var log, expectSuccess: false));
        Assert.Contains("holds no readable checkpoint", log);

        Assert.Equal(2, CliRunner.Start(["train", "--resume", empty, "-b", "64"]).WaitForExit(out log, expectSuccess: false));
        Assert.Contains("give no others (got -b)", log);

        Assert.Equal(2, CliRunner.Start(["train"]).WaitForExit(out log, expectSuccess: false));
        Assert.Contains("needs --model and --data", log);
    }

    [FashionMnistFact]
    public void A_fresh_run_into_a_folder_holding_checkpoints_is_refused_so_nothing_is_overwritten()
    {
        string run = temp.File("taken");
        string[] args = ["train", "-m", "mnist-baseline", "-d", "fashion-mnist", "-b", "256", "-t", "2", "--validation-split", "0.9", "-o", run];
        Assert.Equal(0, CliRunner.Start(args).WaitForExit(out _));
        Assert.Equal(2, CliRunner.Start(args).WaitForExit(out var log, expectSuccess: false));
        Assert.Contains("already holds checkpoints", log);
        Assert.Contains("--resume", log);

        // Resuming a finished run trains no more and gives the same model.
        var before = File.ReadAllBytes(Path.Combine(run, "model.naani"));
        Assert.Equal(0, CliRunner.Start(["train", "--resume", run]).WaitForExit(out log));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(run, "model.naani")));
    }

    [FashionMnistFact]
    public void The_dashboard_is_chosen_anew_on_resume_and_its_options_are_not_saved_with_the_run()
    {
        string run = temp.File("watched");
        Assert.Equal(0, CliRunner.Start(["train", "-m", "mnist-baseline", "-d", "fashion-mnist", "-b", "256", "-t", "2", "--validation-split", "0.9",
            "--dashboard", "true", "--port", "0", "-o", run]).WaitForExit(out var log));
        Assert.Contains("Dashboard: http://127.0.0.1:", log);

        Assert.Equal(0, CliRunner.Start(["train", "--resume", run]).WaitForExit(out log));
        // The resume prints the saved options ("Resuming ...: naani train -m mnist-baseline ..."): no dashboard among them.
        Assert.Contains("naani train", log);
        Assert.DoesNotContain("--dashboard", log);
        Assert.DoesNotContain("--port", log);
        Assert.DoesNotContain("Dashboard:", log);

        Assert.Equal(0, CliRunner.Start(["train", "--resume", run, "--dashboard", "--port", "0"]).WaitForExit(out log));
        Assert.Contains("Dashboard: http://127.0.0.1:", log);
    }
}
