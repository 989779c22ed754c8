using System.Diagnostics;

namespace Naani.Tests.IO;

/// A small tmpfs mounted on a fresh folder, to give a save a full disk or a read-only folder for real
/// (as root, permissions are no obstacle, a full or read-only file system is). Unmounted on Dispose.
public sealed class TmpfsMount : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "naani-tmpfs-" + Guid.NewGuid().ToString("N"));

    public TmpfsMount(int kilobytes)
    {
        Directory.CreateDirectory(Path);
        var (code, output) = Command("mount", "-t", "tmpfs", "-o", $"size={kilobytes}k", "tmpfs", Path);
        if (code != 0)
        {
            Directory.Delete(Path);
            throw new InvalidOperationException($"mount -t tmpfs failed ({code}): {output}");
        }
    }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// Makes the whole file system read-only (or writable again).
    public void Remount(bool readOnly)
    {
        var (code, output) = Command("mount", "-o", readOnly ? "remount,ro" : "remount,rw", Path);
        if (code != 0) throw new InvalidOperationException($"remount failed ({code}): {output}");
    }

    public void Dispose()
    {
        Command("umount", "-l", Path);
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException) { }
    }

    /// Why mounting a tmpfs is impossible here (not root, no CAP_SYS_ADMIN, no mount command), or null when it works.
    public static string? Unavailable => unavailable.Value;
    static readonly Lazy<string?> unavailable = new(() =>
    {
        if (!OperatingSystem.IsLinux()) return "tmpfs mounts are a Linux feature.";
        try
        {
            using var probe = new TmpfsMount(64);
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return $"this process cannot mount a tmpfs ({e.Message.Trim()}); run the tests as root (CI does) to cover full and read-only file systems.";
        }
    });

    static (int Code, string Output) Command(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }
}

/// A fact that needs a tmpfs mount; reported as skipped, with the reason, where mounting is not permitted.
public sealed class TmpfsFactAttribute : FactAttribute
{
    public TmpfsFactAttribute()
    {
        if (TmpfsMount.Unavailable is { } reason) Skip = reason;
    }
}
