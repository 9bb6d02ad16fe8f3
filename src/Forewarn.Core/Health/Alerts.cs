using Microsoft.Extensions.Logging;

namespace Forewarn.Core.Health;

public enum AlertSeverity { Info, Warning, Critical }

public sealed record Alert(DateTimeOffset At, AlertSeverity Severity, string Source, string Message);

/// <summary>Somewhere an alert goes besides the log and the admin surface (a webhook, mail).</summary>
public interface IAlertSink
{
    Task SendAsync(Alert alert, CancellationToken cancellationToken);
}

/// <summary>Raises alerts: to the log at once, into a ring the admin surface reads, and to every sink in the background.</summary>
public sealed partial class AlertHub(IEnumerable<IAlertSink> sinks, TimeProvider time, ILogger<AlertHub> logger)
{
    private readonly Queue<Alert> _recent = new();
    private readonly Lock _lock = new();
    private readonly IAlertSink[] _sinks = [.. sinks];

    public IReadOnlyList<Alert> Recent
    {
        get
        {
            lock (_lock)
                return [.. _recent];
        }
    }

    public void Raise(AlertSeverity severity, string source, string message)
    {
        var alert = new Alert(time.GetUtcNow(), severity, source, message);
        LogAlert(logger, severity, source, message);
        lock (_lock)
        {
            _recent.Enqueue(alert);
            while (_recent.Count > 100)
                _recent.Dequeue();
        }
        foreach (var sink in _sinks)
            _ = SendAsync(sink, alert);
    }

    private async Task SendAsync(IAlertSink sink, Alert alert)
    {
        try
        {
            await sink.SendAsync(alert, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogSinkFailed(logger, sink.GetType().Name, e);
        }
    }

    [LoggerMessage(EventId = 300, Message = "ALERT {Severity} {Source}: {Message}")]
    private static partial void LogAlert(ILogger logger, LogLevel level, AlertSeverity severity, string source, string message);

    private static void LogAlert(ILogger logger, AlertSeverity severity, string source, string message) =>
        LogAlert(logger, severity == AlertSeverity.Info ? LogLevel.Information : severity == AlertSeverity.Warning ? LogLevel.Warning : LogLevel.Error, severity, source, message);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Alert sink {Sink} failed")]
    private static partial void LogSinkFailed(ILogger logger, string sink, Exception exception);
}
