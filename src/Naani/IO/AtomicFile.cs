using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Naani.IO;

/// Writes a file so that nothing a user saved is ever lost or half-written: the content goes to a
/// temporary file beside the target ("{target}.tmp-{12 hex digits}{extension}"), is flushed to disk,
/// and is then renamed over the target (a rename is atomic on one file system); on Linux and macOS the
/// folder is then flushed too, so the rename itself survives a power cut. If anything fails (disk
/// full, file too large, no permission, a read-only folder), the temporary file is deleted, a file
/// already at the target is left as it was, and the IOException names the target and the cause.
/// A process killed half-way leaves only its temporary file, never a damaged target; a later
/// successful save of the same target deletes such leftovers once nothing has written them for ten
/// minutes. Every file Naani saves goes through here.
public static partial class AtomicFile
{
    /// Test hook: runs with the temporary file's path just before the rename (e.g. to inject a failure).
    [ThreadStatic] internal static Action<string>? BeforeReplaceForTests;

    /// How long a temporary file of the same target must have gone unwritten before a successful save
    /// deletes it as left over by a process that died (a save in progress keeps writing its own).
    static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(10);

    /// write fills the temporary file through a stream.
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        Replace(path, temporary =>
        {
            using var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            write(stream);
            stream.Flush(flushToDisk: true);
        }, flushWritten: false);
    }

    /// For libraries that only write to a file name (a plotting library's SavePng): writeTo is given the
    /// temporary path. The file it writes is flushed to disk before the rename.
    public static void WriteVia(string path, Action<string> writeTo)
    {
        ArgumentNullException.ThrowIfNull(writeTo);
        Replace(path, writeTo, flushWritten: true);
    }

    static void Replace(string path, Action<string> writeTo, bool flushWritten)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string target = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(target)!;
        string temporary = $"{target}{TemporaryInfix}{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}{Path.GetExtension(target)}";
        try
        {
            Directory.CreateDirectory(folder);
            writeTo(temporary);
            if (flushWritten) FlushFile(temporary);
            BeforeReplaceForTests?.Invoke(temporary);
            File.Move(temporary, target, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException || IsFileTooLarge(e))
        {
            throw new IOException($"Could not save '{target}': {Cause(e, temporary)}. A file already there is unchanged.", e);
        }
        finally
        {
            if (File.Exists(temporary)) TryDelete(temporary);
        }
        FlushFolder(folder, target);
        DeleteStaleTemporaries(target);
    }

    /// The text as UTF-8.
    public static void WriteAllText(string path, string text) => Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(text)));

    const string TemporaryInfix = ".tmp-";

    /// The operating system's reason ("No space left on device", "File too large", "Permission denied",
    /// "Read-only file system"), with the temporary file's name left out: the user knows the target.
    static string Cause(Exception e, string temporary)
    {
        if (IsFileTooLarge(e)) return "File too large: the file system's or this process's file-size limit (ulimit -f) was reached";
        string message = e.Message.Replace($" : '{temporary}'", "").Replace($"'{temporary}'", "the temporary file beside it").TrimEnd('.');
        return e is UnauthorizedAccessException ? $"permission denied ({message})" : message;
    }

    /// .NET reports EFBIG from a write as an ArgumentOutOfRangeException thrown by System.IO ("Specified file
    /// length was too large for the file system"); the same exception type from the caller's own code is a bug, not the disk.
    static bool IsFileTooLarge(Exception e) => e is ArgumentOutOfRangeException { TargetSite.DeclaringType.Namespace: "System.IO" };

    /// A file written by someone else's code (WriteVia) reaches the disk before it replaces the target.
    static void FlushFile(string temporary)
    {
        using var stream = new FileStream(temporary, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1);
        stream.Flush(flushToDisk: true);
    }

    /// fsync on the folder makes the rename durable (POSIX says a rename is on disk only once its
    /// directory is). Windows has no such call (MoveFileEx is journaled by NTFS), so it is skipped there.
    /// A folder that cannot be opened for reading or a file system without directory fsync (EINVAL) is
    /// skipped too; an I/O error (EIO) means the rename may not be on disk, and is reported.
    static void FlushFolder(string folder, string target)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD())) return;
        int fd = Posix.open(folder, Posix.O_RDONLY);
        if (fd < 0) return;
        try
        {
            if (Posix.fsync(fd) != 0 && Marshal.GetLastPInvokeError() == Posix.EIO)
                throw new IOException($"Saved '{target}', but flushing its folder to disk failed ({Marshal.GetPInvokeErrorMessage(Posix.EIO)}): after a power cut the previous file may be back.");
        }
        finally
        {
            _ = Posix.close(fd);
        }
    }

    /// Temporary files of this target left by a process that died mid-save. One is deleted only when nothing
    /// has written it for StaleAfter and no process holds it open for writing (FileShare.None locks it).
    static void DeleteStaleTemporaries(string target)
    {
        try
        {
            string name = Path.GetFileName(target), extension = Path.GetExtension(target);
            var now = DateTime.UtcNow;
            foreach (var candidate in Directory.EnumerateFiles(Path.GetDirectoryName(target)!, name + TemporaryInfix + "*"))
            {
                string suffix = Path.GetFileName(candidate)[(name.Length + TemporaryInfix.Length)..];
                bool ours = suffix.Length == 12 + extension.Length && suffix.EndsWith(extension, StringComparison.Ordinal)
                    && suffix[..12].All(char.IsAsciiHexDigitLower);
                if (!ours || now - File.GetLastWriteTimeUtc(candidate) < StaleAfter) continue;
                try
                {
                    using (new FileStream(candidate, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1)) { }
                }
                catch (IOException)
                {
                    continue;   // still open by a writer
                }
                TryDelete(candidate);
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    static partial class Posix
    {
        public const int O_RDONLY = 0;
        public const int EIO = 5;

        [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        public static partial int open(string path, int flags);

        [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
        public static partial int fsync(int fd);

        [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
        public static partial int close(int fd);
    }
}
