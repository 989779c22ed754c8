using System.Security.Cryptography;
using System.Text;

namespace Naani.IO;

/// Writes a file so that nothing a user saved is ever lost or half-written: the content goes to a
/// temporary file beside the target, is flushed to disk, and is then renamed over the target (a
/// rename is atomic on one file system). If anything fails, the temporary file is deleted and a
/// file already at the target is left as it was. Every file Naani saves goes through here.
public static class AtomicFile
{
    /// Test hook: runs with the temporary file's path just before the rename (e.g. to inject a failure).
    [ThreadStatic] internal static Action<string>? BeforeReplaceForTests;

    /// write fills the temporary file through a stream.
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        WriteVia(path, temporary =>
        {
            using var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            write(stream);
            stream.Flush(flushToDisk: true);
        });
    }

    /// For libraries that only write to a file name (a plotting library's SavePng): writeTo is given the temporary path.
    public static void WriteVia(string path, Action<string> writeTo)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(writeTo);
        string target = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        string temporary = $"{target}.tmp-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}{Path.GetExtension(target)}";
        try
        {
            writeTo(temporary);
            BeforeReplaceForTests?.Invoke(temporary);
            File.Move(temporary, target, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                try
                {
                    File.Delete(temporary);
                }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
        }
    }

    /// The text as UTF-8.
    public static void WriteAllText(string path, string text) => Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(text)));
}
