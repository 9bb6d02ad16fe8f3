using System.Net;
using Forewarn.Protocol.Radius;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server;

/// <summary>
/// Logs dropped datagrams at a bounded rate: the first of each reason at once, then at most one line
/// per reason every <see cref="Interval"/>, with the count since the last line and the latest source.
/// A flood of invalid datagrams (200,000 bad authenticators from a spoofed NAS address) costs a few log
/// lines, not 200,000, and so cannot slow the receiving threads down. Every drop is still counted by
/// reason in <see cref="ServerCounters"/>.
/// </summary>
public sealed class DropLog(ILogger<DropLog> logger, TimeProvider time)
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private readonly long[] _lineAt = InitialTimes();
    private readonly long[] _suppressed = new long[Enum.GetValues<DropReason>().Length];

    private static long[] InitialTimes()
    {
        var times = new long[Enum.GetValues<DropReason>().Length];
        Array.Fill(times, long.MinValue);
        return times;
    }

    public void Dropped(DropReason reason, string? client, IPEndPoint source)
    {
        int i = (int)reason;
        long now = time.GetTimestamp(), last = Volatile.Read(ref _lineAt[i]);
        bool due = last == long.MinValue || time.GetElapsedTime(last, now) >= Interval;
        if (!due || Interlocked.CompareExchange(ref _lineAt[i], now, last) != last)
        {
            Interlocked.Increment(ref _suppressed[i]);
            return;
        }
        long earlier = Interlocked.Exchange(ref _suppressed[i], 0);
        bool security = reason is DropReason.BadMessageAuthenticator or DropReason.MissingMessageAuthenticator
            or DropReason.ProxyStateWithoutMessageAuthenticator or DropReason.BadRequestAuthenticator or DropReason.UnknownClient;
        LogMessages.DropSummary(logger, security ? LogLevel.Warning : LogLevel.Information, reason, client ?? "unknown client", source, earlier,
            last == long.MinValue ? 0 : (int)Math.Round(time.GetElapsedTime(last, now).TotalSeconds));
    }
}
