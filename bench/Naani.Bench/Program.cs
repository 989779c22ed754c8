using System.Diagnostics;
using System.Runtime.Intrinsics;
using Naani;
using Naani.Kernels;

// Kernel benchmarks: the machine's FMA peak (measured, not assumed) and GEMM GFLOP/s against it.
// Usage: dotnet run -c Release --project bench/Naani.Bench -- [peak|gemm|all] [--threads T] [--json FILE]
//        ... -- ort --model NAME --batch-size B [...]: ONNX Runtime inference on the exported model (OrtBench.cs)
//        ... -- serve-load --url URL --name NAME --model FILE [...]: HTTP load on naani serve (ServeLoad.cs)
if (args is ["ort", .. var ortArgs]) { Environment.ExitCode = OrtBench.Run(ortArgs); return; }
if (args is ["serve-load", .. var loadArgs]) { Environment.ExitCode = ServeLoad.Run(loadArgs); return; }
var argv = args.ToList();
int threads = Environment.ProcessorCount;
int ti = argv.IndexOf("--threads");
if (ti >= 0) { threads = int.Parse(argv[ti + 1]); argv.RemoveRange(ti, 2); }
string? json = null;
int ji = argv.IndexOf("--json");
if (ji >= 0) { json = argv[ji + 1]; argv.RemoveRange(ji, 2); }
string mode = argv.Count > 0 ? argv[0] : "all";
Threading.MaxThreads = threads;

var results = new List<string>();
if (mode is "peak" or "all" or "gemm")
{
    double peak = FmaPeak.Measure(threads);
    // Each GEMM's timed rounds alternate with rounds of the peak, and the peak reported (and divided by) is the best
    // of all: the VM's quiet and busy phases last seconds, and a peak taken only once, before the GEMMs, could meet a
    // phase they do not (or miss one they meet).
    var gemms = new List<(int M, int N, int K, double Gflops)>();
    if (mode is "gemm" or "all")
        foreach (var (m, n, k) in new[] { (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (576, 32, 25), (16384, 64, 288), (128, 128, 4608) })
        {
            var (g, beside) = GemmBench.Run(m, n, k, threads);
            gemms.Add((m, n, k, g));
            peak = Math.Max(peak, beside);
        }
    Console.WriteLine($"FMA peak ({threads} threads, {(Vector512.IsHardwareAccelerated ? "Vector512" : "Vector256")}): {peak:0.0} GFLOP/s");
    results.Add($"\"fma_peak_gflops\": {peak:0.0}");
    foreach (var (m, n, k, g) in gemms)
        Console.WriteLine($"GEMM {m}x{n}x{k}: {g:0.0} GFLOP/s = {g / peak:P1} of peak");
    if (mode is "gemm" or "all")
        results.Add($"\"gemm\": [{string.Join(", ", gemms.Select(r => $"{{\"m\": {r.M}, \"n\": {r.N}, \"k\": {r.K}, \"gflops\": {r.Gflops:0.0}, \"fraction_of_peak\": {r.Gflops / peak:0.000}}}"))}]");
}
if (json is not null) File.WriteAllText(json, "{" + string.Join(", ", results) + $", \"threads\": {threads}}}\n");

static class FmaPeak
{
    /// Independent FMA chains in registers on every thread: the most the cores can do.
    /// Timed rounds of the peak alone (twice as many for each GEMM, each beside a round of the peak), of which the best counts.
    public const int Rounds = 8;

    /// Floating-point operations of one step of the chains on every thread: 12 FMAs (2 each) of a vector.
    public static double FlopsPerStep(int threads) => threads * 12.0 * (Vector512.IsHardwareAccelerated ? 16 : 8) * 2;

    public static double Measure(int threads)
    {
        Run(1_000_000); // warm up the JIT
        double best = 0;
        for (int round = 0; round < Rounds; round++)   // the best of several, as for the GEMMs
            best = Math.Max(best, Round(threads, 100_000_000));   // ~0.4 s: starting the threads does not count
        return best;
    }

    /// One timed round of `iterations` steps of the chains on every thread, in GFLOP/s.
    public static double Round(int threads, long iterations)
    {
        double flops = FlopsPerStep(threads) * iterations;
        // On the threads the GEMMs run on (Naani's pool, which spins between jobs): a round as short as a GEMM's then
        // measures no thread start-up (the .NET thread pool's cost 1-5% of a 20 ms round).
        var sw = Stopwatch.StartNew();
        Threading.For(threads, (_, _, _) => Run(iterations));
        return flops / sw.Elapsed.TotalSeconds / 1e9;
    }

    static float Run(long iterations)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            var a = Vector512.Create(0.999f); var b = Vector512.Create(0.001f);
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
                c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
            for (long i = 0; i < iterations; i++)
            {
                c0 = Vector512.FusedMultiplyAdd(c0, a, b); c1 = Vector512.FusedMultiplyAdd(c1, a, b);
                c2 = Vector512.FusedMultiplyAdd(c2, a, b); c3 = Vector512.FusedMultiplyAdd(c3, a, b);
                c4 = Vector512.FusedMultiplyAdd(c4, a, b); c5 = Vector512.FusedMultiplyAdd(c5, a, b);
                c6 = Vector512.FusedMultiplyAdd(c6, a, b); c7 = Vector512.FusedMultiplyAdd(c7, a, b);
                c8 = Vector512.FusedMultiplyAdd(c8, a, b); c9 = Vector512.FusedMultiplyAdd(c9, a, b);
                c10 = Vector512.FusedMultiplyAdd(c10, a, b); c11 = Vector512.FusedMultiplyAdd(c11, a, b);
            }
            return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
        }
        else
        {
            var a = Vector256.Create(0.999f); var b = Vector256.Create(0.001f);
            Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
                c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
            for (long i = 0; i < iterations; i++)
            {
                c0 = Vector256.FusedMultiplyAdd(c0, a, b); c1 = Vector256.FusedMultiplyAdd(c1, a, b);
                c2 = Vector256.FusedMultiplyAdd(c2, a, b); c3 = Vector256.FusedMultiplyAdd(c3, a, b);
                c4 = Vector256.FusedMultiplyAdd(c4, a, b); c5 = Vector256.FusedMultiplyAdd(c5, a, b);
                c6 = Vector256.FusedMultiplyAdd(c6, a, b); c7 = Vector256.FusedMultiplyAdd(c7, a, b);
                c8 = Vector256.FusedMultiplyAdd(c8, a, b); c9 = Vector256.FusedMultiplyAdd(c9, a, b);
                c10 = Vector256.FusedMultiplyAdd(c10, a, b); c11 = Vector256.FusedMultiplyAdd(c11, a, b);
            }
            return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
        }
    }
}

static class GemmBench
{
    /// The GEMM's best round, and the best of the peak's rounds run between its rounds.
    public static (double Gflops, double PeakBeside) Run(int m, int n, int k, int threads)
    {
        var rng = new Rng(1);
        var a = new float[m * k]; var b = new float[k * n]; var c = new float[m * n];
        for (int i = 0; i < a.Length; i++) a[i] = rng.NextFloat();
        for (int i = 0; i < b.Length; i++) b[i] = rng.NextFloat();
        Gemm.Multiply(false, false, m, n, k, a, k, b, n, c, n);
        double flop = 2.0 * m * n * k;
        int reps = (int)Math.Clamp(1e10 / flop, 3, 1000);
        // The best of several timed rounds, as for the peak: this shared VM is noisy (rounds of about 20 ms, and three of
        // them put 1024^3 anywhere from 77% to 86% of the peak on one Zen 5 VM within an hour). Each round follows a
        // round of the peak of about the same length, so that the peak samples the same phases of the VM.
        double best = 0, peakBeside = 0;
        long peakIterations = (long)Math.Clamp(flop * reps / FmaPeak.FlopsPerStep(threads), 1e6, 1e8);   // as many FLOPs as a round
        for (int round = 0; round < 2 * FmaPeak.Rounds; round++)
        {
            peakBeside = Math.Max(peakBeside, FmaPeak.Round(threads, peakIterations));
            var sw = Stopwatch.StartNew();
            for (int r = 0; r < reps; r++) Gemm.Multiply(false, false, m, n, k, a, k, b, n, c, n);
            best = Math.Max(best, flop * reps / sw.Elapsed.TotalSeconds / 1e9);
        }
        return (best, peakBeside);
    }
}
