using System.Diagnostics;
using Naani.Fuzz;

namespace Naani.Tests.Fuzzing;

/// The short fuzzing run CI keeps: for every reader of untrusted bytes, a fixed set of mutations of its seed files
/// (fuzz/corpus, the corpus of the afl-fuzz campaigns of scripts/fuzz.sh). Each input must load or be refused with the
/// reader's documented exception (FuzzTargets says which), must not hang, and must not allocate more than a bound
/// linear in its size: a header claiming gigabytes is refused before the allocation.
public sealed class SeededMutationTests : IDisposable
{
    static readonly string Corpus = Path.Combine(AppContext.BaseDirectory, "FuzzCorpus");

    // Generous for a few-KB input (the readers' fixed buffers are 1-16 MiB); a gigabyte-sized allocation is far above it.
    const long AllocationAllowance = 64 << 20;
    const long AllocationPerInputByte = 64;

    readonly string directory = Directory.CreateTempSubdirectory("naani-fuzz-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Theory]
    [InlineData("model", 1000)]
    [InlineData("model-raw", 150)]
    [InlineData("idx", 1000)]
    [InlineData("idx-gz", 500)]
    [InlineData("cifar10", 300)]
    [InlineData("cifar100", 300)]
    [InlineData("keras-h5", 600)]
    [InlineData("image", 600)]
    [InlineData("keras-json", 400)]
    [InlineData("keras-archive", 300)]
    public async Task Mutated_seed_files_load_or_are_refused_with_the_documented_exception(string target, int inputs)
    {
        // On a thread of its own, so that a reader stuck in a loop fails the test instead of hanging the run.
        int current = -1;
        var run = Task.Factory.StartNew(() => Run(target, inputs, i => current = i), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        await Task.WhenAny(run, Task.Delay(TimeSpan.FromMinutes(1)));
        Assert.True(run.IsCompleted, $"{target}: input {current} has not finished after a minute (a hang?).");
        await run;
    }

    void Run(string target, int inputs, Action<int> starting)
    {
        var seeds = Directory.GetFiles(Path.Combine(Corpus, target)).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();
        Assert.NotEmpty(seeds);
        string scratch = Path.Combine(directory, target == "image" ? "input.png" : "input");
        var mutator = new Mutator(seed: target.Aggregate(17, (h, c) => h * 31 + c));
        int loaded = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < inputs; i++)
        {
            var input = mutator.Mutate(seeds[i % seeds.Count]);
            starting(i);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var started = clock.Elapsed;
            Exception? refused;
            try
            {
                refused = FuzzTargets.Run(target, input, scratch);
            }
            catch (Exception e)
            {
                File.WriteAllBytes(Path.Combine(Path.GetTempPath(), $"naani-fuzz-{target}-{i}.bin"), input);
                Assert.Fail($"{target} input {i} ({input.Length} bytes, saved as naani-fuzz-{target}-{i}.bin in {Path.GetTempPath()}) threw {e.GetType().Name}, not InvalidDataException: {e}");
                throw;
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated <= AllocationAllowance + AllocationPerInputByte * input.Length,
                $"{target} input {i} ({input.Length} bytes) allocated {allocated:N0} bytes ({refused?.Message ?? "loaded"}).");
            Assert.True(clock.Elapsed - started < TimeSpan.FromSeconds(5), $"{target} input {i} took {(clock.Elapsed - started).TotalSeconds:F1} s.");
            if (refused is null) loaded++;
        }
        // The run is worth something only if mutations reach past the first check and some inputs still load.
        Assert.True(loaded > 0 || target == "model-raw", $"none of the {inputs} mutated {target} inputs loaded");
    }
}
