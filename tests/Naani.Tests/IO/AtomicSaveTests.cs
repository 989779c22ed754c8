using Naani.IO;
using Naani.Models;

namespace Naani.Tests.IO;

/// A save that fails (full disk, file-size limit, read-only folder, killed process, an error while
/// writing) leaves the previous file as it was, readable by Model.Load, and says which file and why.
public sealed class AtomicSaveTests : IDisposable
{
    readonly string folder = Path.Combine(Path.GetTempPath(), "naani-atomic-" + Guid.NewGuid().ToString("N"));

    public AtomicSaveTests() => Directory.CreateDirectory(folder);

    public void Dispose()
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException) { }
    }

    static void AssertHoldsModel(string path, Model expected)
    {
        var loaded = Model.Load(path);
        var want = expected.GetWeights();
        var got = loaded.GetWeights();
        Assert.Equal(want.Count, got.Count);
        for (int i = 0; i < want.Count; i++) Assert.Equal(want[i].Data, got[i].Data);
    }

    static string[] Leftovers(string path) => Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path) + ".tmp-*");

    [Fact]
    public void An_error_half_way_through_writing_leaves_the_previous_file_and_no_temporary_file()
    {
        string path = Path.Combine(folder, "model.naani");
        var old = ChildProgram.Model(16, seed: 1);
        old.Save(path);
        byte[] before = File.ReadAllBytes(path);

        var e = Assert.Throws<IOException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[100_000]);
            throw new IOException("No space left on device (injected)");
        }));

        Assert.Contains(path, e.Message);
        Assert.Contains("No space left on device", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Empty(Leftovers(path));
        AssertHoldsModel(path, old);
    }

    [Fact]
    public void An_error_that_is_not_about_the_file_passes_through_unchanged_and_still_cleans_up()
    {
        string path = Path.Combine(folder, "text.txt");
        AtomicFile.WriteAllText(path, "old");
        Assert.Throws<FormatException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[10]);
            throw new FormatException("a bug in the writer");
        }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Empty(Leftovers(path));
    }

    [Fact]
    public void A_stale_temporary_file_never_replaces_the_target_and_the_next_save_removes_it()
    {
        string path = Path.Combine(folder, "model.naani");
        var first = ChildProgram.Model(16, seed: 1);
        first.Save(path);
        // What a process killed mid-save leaves: a half-written temporary file beside the target.
        string stale = path + ".tmp-0123456789ab.naani", recent = path + ".tmp-ba9876543210.naani", unrelated = path + ".tmp-notours.naani";
        foreach (var f in (string[])[stale, recent, unrelated]) File.WriteAllBytes(f, [1, 2, 3]);
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-1));
        File.SetLastWriteTimeUtc(unrelated, DateTime.UtcNow.AddHours(-1));
        AssertHoldsModel(path, first);

        var second = ChildProgram.Model(16, seed: 2);
        second.Save(path);

        AssertHoldsModel(path, second);
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(recent));       // may be a save in progress in another process
        Assert.True(File.Exists(unrelated));    // not a name Naani makes
    }

    [Fact]
    public void A_temporary_file_held_open_by_a_writer_is_not_removed_however_old()
    {
        string path = Path.Combine(folder, "model.naani");
        string busy = path + ".tmp-00000000abcd.naani";
        using (var writer = new FileStream(busy, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            writer.Write(new byte[10]);
            writer.Flush();
            File.SetLastWriteTimeUtc(busy, DateTime.UtcNow.AddHours(-1));
            ChildProgram.Model(16, seed: 1).Save(path);
            Assert.True(File.Exists(busy));
        }
    }

    [TmpfsFact]
    public void A_full_disk_leaves_the_previous_model_intact_and_names_the_file_and_the_cause()
    {
        using var disk = new TmpfsMount(kilobytes: 256);
        string path = disk.File("model.naani");
        var old = ChildProgram.Model(100, seed: 1);   // ~4 KB
        old.Save(path);
        byte[] before = File.ReadAllBytes(path);

        var e = Assert.Throws<IOException>(() => ChildProgram.Model(20_000, seed: 2).Save(path));   // ~720 KB

        Assert.Contains(path, e.Message);
        Assert.Contains("No space left on device", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Empty(Leftovers(path));
        AssertHoldsModel(path, old);
        var fits = ChildProgram.Model(200, seed: 3);   // the space the failed save took is free again
        fits.Save(path);
        AssertHoldsModel(path, fits);
    }

    [TmpfsFact]
    public void A_read_only_folder_refuses_the_save_and_keeps_the_previous_model()
    {
        using var disk = new TmpfsMount(kilobytes: 256);
        string path = disk.File("model.naani");
        var old = ChildProgram.Model(100, seed: 1);
        old.Save(path);
        byte[] before = File.ReadAllBytes(path);
        disk.Remount(readOnly: true);

        var e = Assert.Throws<IOException>(() => ChildProgram.Model(100, seed: 2).Save(path));

        Assert.Contains(path, e.Message);
        Assert.Contains("Read-only file system", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        AssertHoldsModel(path, old);
    }

    // 64 KB. The runtime maps its executable memory twice through a memory file (W^X), which the limit
    // would stop: the child starts without that.
    const string FileSizeLimit = "export DOTNET_EnableWriteXorExecute=0; ulimit -f 64";

    [Fact]
    public void A_save_over_the_file_size_limit_fails_with_file_too_large_and_keeps_the_previous_model()
    {
        if (!OperatingSystem.IsLinux()) return;
        string path = Path.Combine(folder, "model.naani");
        var old = ChildProgram.Model(20_000, seed: 1);
        old.Save(path);
        byte[] before = File.ReadAllBytes(path);

        // SIGXFSZ ignored: write() returns EFBIG and the child's save fails with an IOException.
        var (code, output) = ChildProgram.Run($"trap '' XFSZ; {FileSizeLimit}", "", "save-model", path, "20000", "2");

        Assert.True(code == ChildProgram.SaveFailed, $"exit code {code}: {output}");
        Assert.Contains(path, output);
        Assert.Contains("File too large", output);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Empty(Leftovers(path));
        AssertHoldsModel(path, old);
    }

    [Fact]
    public void A_save_killed_by_the_file_size_limit_keeps_the_previous_model_and_its_leftover_is_cleaned_later()
    {
        if (!OperatingSystem.IsLinux()) return;
        string path = Path.Combine(folder, "model.naani");
        var old = ChildProgram.Model(20_000, seed: 1);
        old.Save(path);
        byte[] before = File.ReadAllBytes(path);

        // SIGXFSZ's default action kills the child mid-write, with no chance to clean up.
        var (code, output) = ChildProgram.Run(FileSizeLimit, "", "save-model", path, "20000", "2");

        Assert.True(code == 128 + 25, $"expected death by SIGXFSZ (153), got exit code {code}: {output}");
        Assert.Equal(before, File.ReadAllBytes(path));
        AssertHoldsModel(path, old);
        string leftover = Assert.Single(Leftovers(path));
        Assert.Equal(64 * 1024, new FileInfo(leftover).Length);

        File.SetLastWriteTimeUtc(leftover, DateTime.UtcNow.AddHours(-1));
        var next = ChildProgram.Model(20_000, seed: 3);
        next.Save(path);
        AssertHoldsModel(path, next);
        Assert.Empty(Leftovers(path));
    }

    [Fact]
    public void A_folder_an_unprivileged_user_cannot_write_to_refuses_the_save_with_permission_denied()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") return;
        string path = Path.Combine(folder, "model.naani");
        var old = ChildProgram.Model(100, seed: 1);
        old.Save(path);
        byte[] before = File.ReadAllBytes(path);
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

        var (code, output) = ChildProgram.Run("true", "setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp", "save-model", path, "100", "2");

        Assert.True(code == ChildProgram.SaveFailed, $"exit code {code}: {output}");
        Assert.Contains(path, output);
        Assert.Contains("permission denied", output, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(before, File.ReadAllBytes(path));
        AssertHoldsModel(path, old);
    }
}
