using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Forewarn.Core.Logging;

/// <summary>Values from the network, made safe to write into a log line.</summary>
public static class LogText
{
    /// <summary>
    /// Control characters (C0, DEL, C1) and Unicode line and paragraph separators as \xNN or \uNNNN, and
    /// the backslash doubled, so that a User-Name cannot end a log line, forge the next one, or drive
    /// the terminal (ESC sequences). At most <paramref name="max"/> characters are kept.
    /// </summary>
    public static string Escape(string value, int max = 256)
    {
        bool clean = value.Length <= max;
        foreach (char c in value)
        {
            if (c < 0x20 || c is '\\' or (>= '\x7f' and <= '\x9f') or '\u2028' or '\u2029')
            {
                clean = false;
                break;
            }
        }
        if (clean)
            return value;
        var text = new StringBuilder(Math.Min(value.Length, max) + 16);
        foreach (char c in value.AsSpan(0, Math.Min(value.Length, max)))
        {
            if (c == '\\')
                text.Append(@"\\");
            else if (c < 0x20 || c is (>= '\x7f' and <= '\x9f'))
                text.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            else if (c is '\u2028' or '\u2029')
                text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            else
                text.Append(c);
        }
        if (value.Length > max)
            text.Append(CultureInfo.InvariantCulture, $"…({value.Length - max} more)");
        return text.ToString();
    }
}

/// <summary>
/// At most one log line per kind of event per interval: the first is written, the others counted and
/// reported with the next one written. A flood of rejects or forgeries becomes a few lines a minute,
/// however fast it comes. Kinds beyond <paramref name="maxKinds"/> share one.
/// </summary>
public sealed class LogLimiter(TimeProvider time, TimeSpan interval, int maxKinds = 256)
{
    private sealed class State
    {
        public long LastAt = long.MinValue;
        public long Suppressed;
    }

    private readonly ConcurrentDictionary<string, State> _kinds = new(StringComparer.Ordinal);

    /// <summary>True when a line for <paramref name="kind"/> is due; <paramref name="suppressed"/> says how many were not written since the last one.</summary>
    public bool ShouldLog(string kind, out long suppressed) => ShouldLog(kind, out suppressed, out _);

    /// <summary>As above; <paramref name="sinceLast"/> is the time since the kind's last line (zero for its first).</summary>
    public bool ShouldLog(string kind, out long suppressed, out TimeSpan sinceLast)
    {
        sinceLast = TimeSpan.Zero;
        if (_kinds.Count >= maxKinds && !_kinds.ContainsKey(kind))
            kind = "(other)";
        var state = _kinds.GetOrAdd(kind, static _ => new State());
        long now = time.GetTimestamp(), last = Volatile.Read(ref state.LastAt);
        bool due = last == long.MinValue || time.GetElapsedTime(last, now) >= interval;
        if (!due || Interlocked.CompareExchange(ref state.LastAt, now, last) != last)
        {
            Interlocked.Increment(ref state.Suppressed);
            suppressed = 0;
            return false;
        }
        suppressed = Interlocked.Exchange(ref state.Suppressed, 0);
        if (last != long.MinValue)
            sinceLast = time.GetElapsedTime(last, now);
        return true;
    }
}
