namespace Naani.Tests.Kernels;

/// The cache sizes the kernels block for: read from sysfs as Linux writes it (a directory per cache with its level,
/// type and size), with sizes in Linux's notation, and plausible on the machine running the tests.
public sealed class CpuCachesTests
{
    [Theory]
    [InlineData("32K", 32 << 10)]
    [InlineData("1024K", 1 << 20)]
    [InlineData("2M", 2 << 20)]
    [InlineData("65536", 65536)]
    [InlineData("", 0)]
    [InlineData("lots", 0)]
    [InlineData("-4K", 0)]
    public void Sizes_are_parsed_in_linux_notation(string text, long bytes) => Assert.Equal(bytes, CpuCaches.ParseSize(text));

    [Fact]
    public void The_level_1_data_and_level_2_caches_are_found_among_the_indexes()
    {
        var dir = Directory.CreateTempSubdirectory("naani-cache-");
        try
        {
            void Index(int i, string level, string type, string size)
            {
                var d = Directory.CreateDirectory(Path.Combine(dir.FullName, $"index{i}"));
                File.WriteAllText(Path.Combine(d.FullName, "level"), level + "\n");
                File.WriteAllText(Path.Combine(d.FullName, "type"), type + "\n");
                File.WriteAllText(Path.Combine(d.FullName, "size"), size + "\n");
            }
            Index(0, "1", "Data", "48K");
            Index(1, "1", "Instruction", "32K");
            Index(2, "2", "Unified", "2048K");
            Index(3, "3", "Unified", "32768K");
            Assert.Equal((48L << 10, 2L << 20), CpuCaches.FromSysfs(dir.FullName));
            Assert.Equal((0L, 0L), CpuCaches.FromSysfs(Path.Combine(dir.FullName, "missing")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void This_machine_reports_plausible_sizes()
    {
        Assert.InRange(CpuCaches.L1Data, 16L << 10, 1L << 20);
        Assert.InRange(CpuCaches.L2, 128L << 10, 64L << 20);
        Assert.True(CpuCaches.L2 > CpuCaches.L1Data);
        Assert.Contains(CpuCaches.Source, new[] { "sysfs", "cpuid", "default" });
    }

    /// CPUID's deterministic cache leaves (the fallback where sysfs is missing) agree with what Linux reports.
    [Fact]
    public void Cpuid_agrees_with_sysfs()
    {
        Assert.True(System.Runtime.Intrinsics.X86.X86Base.IsSupported, "the CI machines are x86-64");
        var (l1, l2) = CpuCaches.FromCpuid();
        Assert.InRange(l1, 16L << 10, 1L << 20);
        Assert.InRange(l2, 128L << 10, 64L << 20);
        var (s1, s2) = CpuCaches.FromSysfs("/sys/devices/system/cpu/cpu0/cache");
        if (s1 > 0) Assert.Equal(s1, l1);
        if (s2 > 0) Assert.Equal(s2, l2);
    }
}
