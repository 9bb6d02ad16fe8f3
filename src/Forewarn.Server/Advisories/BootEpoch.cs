using System.Globalization;

namespace Forewarn.Server.Advisories;

/// <summary>
/// The advisory sequence's boot epoch, kept in the data directory: each start takes one more than the
/// last start's, or the clock in Unix seconds when that is higher (a fresh data directory, or one
/// restored from an old backup), and makes it durable before the first advisory is signed. Receivers
/// remember the highest sequence they accepted from this server, so a restarted server whose clock is
/// behind must still sign above it, which a sequence taken from the clock alone would not.
/// </summary>
internal static class BootEpoch
{
    public const string FileName = "advisory-epoch";

    public static ulong Next(string dataDirectory, TimeProvider time)
    {
        var path = Path.Combine(dataDirectory, FileName);
        ulong last = 0;
        if (File.Exists(path) && !ulong.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out last))
            last = 0; // unreadable: the clock decides, as for a new data directory
        ulong next = Math.Max(last + 1, (ulong)Math.Max(0, time.GetUtcNow().ToUnixTimeSeconds()));
        var temporary = path + ".new";
        try
        {
            using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                file.Write(System.Text.Encoding.ASCII.GetBytes(next.ToString(CultureInfo.InvariantCulture) + "\n"));
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only or full file system, or wrong ownership: the operator's to fix, said in one line.
            throw new StartupException($"the data directory '{dataDirectory}' cannot be written ({e.Message.Split(" : ")[0]}): it must be writable to record the advisory boot epoch, accounting and keys");
        }
        return next;
    }
}
