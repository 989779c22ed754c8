using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Naani.Models;
using Naani.Tests.Cli;
using Naani.Tests.Data;

namespace Naani.Tests.Distributed;

/// A fact that runs where Open MPI's mpirun and Debian's Fashion-MNIST are installed (.ci/run installs both), and is
/// reported as skipped, with the reason, elsewhere.
public sealed class MpiFactAttribute : FactAttribute
{
    public static readonly string? Mpirun = new[] { "/usr/bin/mpirun", "/usr/local/bin/mpirun" }.FirstOrDefault(File.Exists);

    public MpiFactAttribute()
    {
        if (Mpirun is null) Skip = "mpirun is absent; install Open MPI (Debian: openmpi-bin) to run this test.";
        else if (!Directory.Exists(FashionMnistFactAttribute.Folder))
            Skip = $"{FashionMnistFactAttribute.Folder} is absent; install the Debian package dataset-fashion-mnist to run this test.";
    }
}

/// `mpirun -np 2 naani train` on loopback, 2 ranks x 1 thread, mnist-baseline on Fashion-MNIST, against one process
/// training on the global batch of 64:
/// - over the first 10 steps the weights agree to float summation order (measured: about 1e-7);
/// - over 282 steps (3 epochs of 6,000 images) they drift apart as any change of summation order makes them drift: a
///   ReLU or a max pooling that flips on a 1e-7 difference routes a gradient elsewhere, and the runs part. One process
///   on 1 thread and on 2 threads part by as much (measured: 0.038 largest weight difference, against 0.060 for 2 ranks),
///   so the long run is held to what that drift leaves equal: test accuracy and loss;
/// - the ranks end identical, and rank 0's checkpoint resumes in one process with the global batch kept.
[Trait("Category", "RealData")]
public sealed class MpiTrainTests : IDisposable
{
    readonly Serialization.TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    static string[] Train(string output, int batch, int epochs, string validationSplit) =>
        ["train", "-m", "mnist-baseline", "-d", "fashion-mnist", "-e", epochs.ToString(CultureInfo.InvariantCulture),
         "-b", batch.ToString(CultureInfo.InvariantCulture), "-t", "1", "--validation-split", validationSplit, "-o", output];

    static string RunMpi(int ranks, string[] arguments)
    {
        var start = new ProcessStartInfo(MpiFactAttribute.Mpirun!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(CultureInfo.InvariantCulture), "dotnet", CliRunner.CliPath(), .. arguments])
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"mpirun did not finish in 5 minutes:\n{output}");
        }
        string log = output + error.Result;
        Assert.True(process.ExitCode == 0, $"mpirun exited with {process.ExitCode}:\n{log}");
        return log;
    }

    static float[] Weights(string runFolder)
    {
        var model = Model.Load(Path.Combine(runFolder, "model.naani"));
        return [.. model.Parameters.SelectMany(p => p.Value.Data.Take(p.Size))];
    }

    static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max();

    static (double Accuracy, double Loss) Test(string runFolder)
    {
        var test = JsonNode.Parse(File.ReadAllText(Path.Combine(runFolder, "metrics.json")))!["test"]!;
        return (test["accuracy"]!.GetValue<double>(), test["loss"]!.GetValue<double>());
    }

    [MpiFact]
    public void Two_ranks_train_what_one_process_trains_on_the_global_batch_and_their_checkpoint_resumes_alone()
    {
        // 10 steps (600 images): equal to summation order.
        string shortParallel = temp.File("short-parallel"), shortSingle = temp.File("short-single");
        string log = RunMpi(2, Train(shortParallel, 32, 1, "0.99"));
        Assert.Contains("Data-parallel on MPI: 2 ranks x 1 threads, global batch 64", log);
        Assert.Contains("10 batches of 64", log);
        Assert.Equal(0, CliRunner.Start(Train(shortSingle, 64, 1, "0.99")).WaitForExit(out _));
        double early = MaxDifference(Weights(shortParallel), Weights(shortSingle));
        Assert.True(early < 1e-5, $"max |weight difference| {early:G3} after 10 steps of 2 ranks x 32 against 1 process x 64");

        // 282 steps: the same model by every measure the summation-order drift leaves equal.
        string parallel = temp.File("parallel"), single = temp.File("single");
        log = RunMpi(2, Train(parallel, 32, 3, "0.9"));
        Assert.Contains("All 2 ranks hold the same weights", log);
        Assert.Single(Directory.EnumerateFiles(parallel, "model.naani"));
        Assert.Equal(0, CliRunner.Start(Train(single, 64, 3, "0.9")).WaitForExit(out _));
        var (parallelTest, singleTest) = (Test(parallel), Test(single));
        Assert.True(Math.Abs(parallelTest.Accuracy - singleTest.Accuracy) < 0.015, $"test accuracy {parallelTest.Accuracy} (2 ranks) against {singleTest.Accuracy}");
        Assert.True(Math.Abs(parallelTest.Loss - singleTest.Loss) < 0.03, $"test loss {parallelTest.Loss} (2 ranks) against {singleTest.Loss}");
        Assert.True(parallelTest.Accuracy > 0.8, $"test accuracy {parallelTest.Accuracy}");

        // Rank 0's checkpoint resumes in one process, which trains a 4th epoch on the same global batch.
        Assert.Equal(0, CliRunner.Start(["train", "--resume", parallel, "-e", "4"]).WaitForExit(out var resumeLog));
        Assert.Contains("resuming on 1 x 64, the same global batch of 64", resumeLog);
        Assert.Contains("94 batches of 64", resumeLog);
        var resumed = JsonNode.Parse(File.ReadAllText(Path.Combine(parallel, "metrics.json")))!;
        Assert.Equal(4, resumed["history"]!["loss"]!.AsArray().Count);
        Assert.NotNull(resumed["training"]!["resumed_from"]);
    }
}
