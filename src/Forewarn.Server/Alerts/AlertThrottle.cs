using Forewarn.Core.Health;

namespace Forewarn.Server.Alerts;

/// <summary>
/// One mail: the newest alert, and the <paramref name="EarlierCount"/> alerts of its source held back
/// since <paramref name="Since"/> (the last <see cref="AlertThrottle.Listed"/> of them in <paramref name="Earlier"/>).
/// </summary>
public sealed record AlertMail(Alert Alert, int EarlierCount = 0, DateTimeOffset Since = default, IReadOnlyList<Alert>? Earlier = null);

/// <summary>
/// At most one mail per alert source per interval, so that an alert storm cannot flood a mailbox. An
/// alert whose source was mailed less than the interval ago is held; when the interval ends, the held
/// alerts go out as one mail through <c>due</c>. A quiet source's next alert goes out at once.
/// </summary>
public sealed class AlertThrottle(TimeSpan interval, TimeProvider time, Action<AlertMail> due) : IDisposable
{
    /// <summary>Held alerts listed in a mail; beyond them they are only counted.</summary>
    public const int Listed = 20;

    private readonly Dictionary<string, Source> _sources = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    private sealed class Source
    {
        public DateTimeOffset LastMailed = DateTimeOffset.MinValue;
        public readonly List<Alert> Held = [];
        public int HeldCount;
        public DateTimeOffset Since;
        public ITimer? Timer;
    }

    /// <summary>The mail to send now, or null when the alert is held for the mail at the end of the interval.</summary>
    public AlertMail? Offer(Alert alert)
    {
        lock (_lock)
        {
            if (!_sources.TryGetValue(alert.Source, out var source))
                _sources[alert.Source] = source = new Source();
            var now = time.GetUtcNow();
            if (now - source.LastMailed >= interval)
                return Mail(source, alert, now);
            if (source.HeldCount++ == 0)
                source.Since = alert.At;
            source.Held.Add(alert);
            if (source.Held.Count > Listed + 1)
                source.Held.RemoveAt(0);
            source.Timer ??= time.CreateTimer(Flush, source, source.LastMailed + interval - now, Timeout.InfiniteTimeSpan);
            return null;
        }
    }

    private void Flush(object? state)
    {
        var source = (Source)state!;
        AlertMail? mail = null;
        lock (_lock)
        {
            if (source.Held.Count > 0)
            {
                var newest = source.Held[^1];
                source.Held.RemoveAt(source.Held.Count - 1);
                source.HeldCount--;
                mail = Mail(source, newest, time.GetUtcNow());
            }
        }
        if (mail is not null)
            due(mail);
    }

    /// <summary>A mail of <paramref name="alert"/> with what its source held; the source is clear afterwards.</summary>
    private static AlertMail Mail(Source source, Alert alert, DateTimeOffset now)
    {
        var mail = new AlertMail(alert, source.HeldCount, source.Since, [.. source.Held.TakeLast(Listed)]);
        source.Held.Clear();
        source.HeldCount = 0;
        source.Timer?.Dispose();
        source.Timer = null;
        source.LastMailed = now;
        return mail;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var source in _sources.Values)
                source.Timer?.Dispose();
        }
    }
}
