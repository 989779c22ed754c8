using Naani.Fuzz;
using SharpFuzz;

// Naani.Fuzz TARGET              AFL mode (afl-fuzz runs it; SharpFuzz's fork server feeds one input per run on stdin)
// Naani.Fuzz TARGET FILE...      runs the target once per file and says what happened (to replay a crash)
// Naani.Fuzz --seeds DIR [H5]    writes the seed corpora, made by Naani itself, into DIR/<target>/ (H5: Keras seed files)
if (args.Length >= 2 && args[0] == "--seeds")
{
    Seeds.Write(args[1], args.Length > 2 ? args[2] : null);
    return 0;
}
if (args.Length == 0 || !FuzzTargets.Names.Contains(args[0]))
{
    Console.Error.WriteLine($"usage: Naani.Fuzz TARGET [FILE...] | --seeds DIR [KERAS_H5_DIR]; targets: {string.Join(", ", FuzzTargets.Names)}");
    return 2;
}
string target = args[0];
// The readers take paths: each input is written to one scratch file (in /dev/shm when there is one).
string folder = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
string scratch = Path.Combine(folder, $"naani-fuzz-{target}-{Environment.ProcessId}{(target == "image" ? ".png" : "")}");
try
{
    if (args.Length > 1)
    {
        foreach (var file in args[1..])
        {
            var bytes = File.ReadAllBytes(file);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var refused = FuzzTargets.Run(target, bytes, scratch);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Console.WriteLine($"{file}: {(refused is null ? "loaded" : $"refused: {refused.Message}")} ({allocated:N0} bytes allocated)");
        }
        return 0;
    }
    Fuzzer.OutOfProcess.Run(stream =>
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        FuzzTargets.Run(target, buffer.ToArray(), scratch);
    });
    return 0;
}
finally
{
    File.Delete(scratch);
}
