using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.AdminConsole;

/// <summary>One line of the audit log: who did what, when, from where, and how it ended.</summary>
public sealed record AuditEntry(DateTimeOffset At, string Who, string? Role, string? From, string Action, string? Target, int Status, string? Detail = null);

/// <summary>
/// Every change made through the console or the API, and every login, failed login and logout, as
/// one JSON object per line in <c>audit.log</c> in the data directory (0600), appended and flushed to
/// disk before the change is answered. Secrets never reach it: an entry names the account or the user
/// a change was about, never a password or a token. <c>GET /api/v1/audit</c> shows the last entries.
/// </summary>
public sealed partial class AuditLog : IDisposable
{
    public const string FileName = "audit.log";
    private const int Remembered = 1000;

    private readonly Lock _gate = new();
    private readonly FileStream _stream;
    private readonly Queue<AuditEntry> _recent = new();
    private readonly ILogger _logger;

    public AuditLog(string dataDirectory, ILogger logger)
    {
        _logger = logger;
        Path = System.IO.Path.Combine(dataDirectory, FileName);
        var options = new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        _stream = new FileStream(Path, options);
    }

    public string Path { get; }

    public void Write(string who, AdminRole? role, IPAddress? from, string action, string? target, int status, string? detail = null)
    {
        var entry = new AuditEntry(DateTimeOffset.UtcNow, who, role?.ToString().ToLowerInvariant(), from?.ToString(), action, target, status, detail);
        var line = JsonSerializer.SerializeToUtf8Bytes(entry, Health.AdminJson.Compact);
        lock (_gate)
        {
            try
            {
                _stream.Write(line);
                _stream.WriteByte((byte)'\n');
                _stream.Flush(flushToDisk: true);
            }
            catch (IOException e)
            {
                LogWriteFailed(_logger, Path, e.Message);
            }
            _recent.Enqueue(entry);
            while (_recent.Count > Remembered)
                _recent.Dequeue();
        }
        if (_logger.IsEnabled(LogLevel.Information))
        {
            // Names from a request may hold anything: escaped, they cannot forge a line of the log.
            string escapedWho = Core.Logging.LogText.Escape(who), escapedTarget = Core.Logging.LogText.Escape(target ?? "");
            LogEntry(_logger, escapedWho, action, escapedTarget, status);
        }
    }

    /// <summary>The newest entries first.</summary>
    public IReadOnlyList<AuditEntry> Recent(int count)
    {
        lock (_gate)
            return [.. _recent.Reverse().Take(count)];
    }

    public void Dispose() => _stream.Dispose();

    [LoggerMessage(EventId = 520, Level = LogLevel.Information, Message = "Audit: {Who} {Action} {Target} -> {Status}")]
    private static partial void LogEntry(ILogger logger, string who, string action, string target, int status);

    [LoggerMessage(EventId = 521, Level = LogLevel.Error, Message = "Cannot write the audit log {Path}: {Reason}")]
    private static partial void LogWriteFailed(ILogger logger, string path, string reason);
}
