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

    // The reasons' names once, so that a flood of drops allocates nothing.
    private static readonly string[] Names = [.. Enum.GetValues<DropReason>().Select(r => r.ToString())];
    private readonly Core.Logging.LogLimiter _limiter = new(time, Interval);

    public void Dropped(DropReason reason, string? client, IPEndPoint source)
    {
        if (!_limiter.ShouldLog(Names[(int)reason], out long earlier, out var sinceLast))
            return;
        bool security = reason is DropReason.BadMessageAuthenticator or DropReason.MissingMessageAuthenticator
            or DropReason.ProxyStateWithoutMessageAuthenticator or DropReason.BadRequestAuthenticator or DropReason.UnknownClient;
        int seconds = (int)Math.Round(sinceLast.TotalSeconds);
        LogMessages.DropSummary(logger, security ? LogLevel.Warning : LogLevel.Information, reason, client ?? "unknown client", source, earlier, seconds);
    }
}
