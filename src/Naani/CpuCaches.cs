using System.Runtime.Intrinsics.X86;

namespace Naani;

/// The sizes of one core's data caches, read once from the machine, for kernels that size their blocks to them
/// (the GEMM's test of whether a panel of B fits the L1 sets its stride maps it to: Kernels/Gemm.AliasesInL1). Linux reports them under
/// /sys/devices/system/cpu/cpu0/cache; elsewhere the CPU's own CPUID leaves (4 on Intel, 0x8000001D on AMD) tell;
/// failing both, 32 KiB and 512 KiB, the smallest of the x86 cores Naani runs on (Zen 3).
public static class CpuCaches
{
    const long DefaultL1 = 32 << 10, DefaultL2 = 512 << 10;

    static readonly (long L1, long L2, string Source) sizes = Read();

    /// Bytes of level-1 data cache per core.
    public static long L1Data => sizes.L1;

    /// Bytes of level-2 cache per core.
    public static long L2 => sizes.L2;

    /// Where the sizes came from: "sysfs", "cpuid" or "default".
    public static string Source => sizes.Source;

    static (long, long, string) Read()
    {
        try
        {
            var (l1, l2) = FromSysfs("/sys/devices/system/cpu/cpu0/cache");
            if (l1 > 0 && l2 > 0) return (l1, l2, "sysfs");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        var (c1, c2) = FromCpuid();
        if (c1 > 0 && c2 > 0) return (c1, c2, "cpuid");
        return (DefaultL1, DefaultL2, "default");
    }

    /// The level-1 data and level-2 sizes listed under a sysfs cache directory (index0, index1, ... each with
    /// level, type and size such as "32K"); 0 for a level not found.
    internal static (long L1, long L2) FromSysfs(string directory)
    {
        long l1 = 0, l2 = 0;
        if (!Directory.Exists(directory)) return (0, 0);
        foreach (var index in Directory.EnumerateDirectories(directory, "index*"))
        {
            string level = ReadLine(Path.Combine(index, "level")), type = ReadLine(Path.Combine(index, "type"));
            long size = ParseSize(ReadLine(Path.Combine(index, "size")));
            if (level == "1" && type == "Data") l1 = size;
            else if (level == "2" && type is "Unified" or "Data") l2 = size;
        }
        return (l1, l2);
    }

    static string ReadLine(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : "";

    /// "32K", "1024K", "2M" or a plain number of bytes; 0 when empty or not a size.
    internal static long ParseSize(string text)
    {
        if (text.Length == 0) return 0;
        long unit = char.ToUpperInvariant(text[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1 };
        var digits = unit == 1 ? text : text[..^1];
        return long.TryParse(digits, out long value) && value > 0 ? value * unit : 0;
    }

    // Deterministic cache parameters: leaf 4 (Intel) or 0x8000001D (AMD), one sub-leaf per cache. EAX bits 0-4 are
    // the type (1 data, 3 unified, 0 no more), 5-7 the level; size = ways x partitions x line size x sets.
    internal static (long L1, long L2) FromCpuid()
    {
        if (!X86Base.IsSupported) return (0, 0);
        var (_, vendorB, vendorC, vendorD) = X86Base.CpuId(0, 0);
        bool amd = vendorB == 0x68747541 && vendorD == 0x69746E65 && vendorC == 0x444D4163;   // "AuthenticAMD"
        int leaf = amd ? unchecked((int)0x8000001D) : 4;
        if (amd && (uint)X86Base.CpuId(unchecked((int)0x80000000), 0).Eax < 0x8000001D) return (0, 0);
        if (!amd && X86Base.CpuId(0, 0).Eax < 4) return (0, 0);
        long l1 = 0, l2 = 0;
        for (int sub = 0; sub < 16; sub++)
        {
            var (eax, ebx, ecx, _) = X86Base.CpuId(leaf, sub);
            int type = eax & 0x1F, level = (eax >> 5) & 7;
            if (type == 0) break;
            long size = (long)(((ebx >> 22) & 0x3FF) + 1) * (((ebx >> 12) & 0x3FF) + 1) * ((ebx & 0xFFF) + 1) * ((long)(uint)ecx + 1);
            if (level == 1 && type == 1) l1 = size;
            else if (level == 2 && type is 1 or 3) l2 = size;
        }
        return (l1, l2);
    }
}
