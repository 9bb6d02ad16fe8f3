using System.Globalization;
using System.Text;
using Forewarn.Core.Health;
using MailKit.Net.Smtp;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Forewarn.Server.Alerts;

/// <summary>
/// Mails alerts of <see cref="SmtpOptions.MinimumSeverity"/> and above to the administrator, at most one
/// per source per <see cref="SmtpOptions.MinimumIntervalSeconds"/> (<see cref="AlertThrottle"/>). One
/// connection per mail, one mail at a time.
/// </summary>
public sealed class SmtpAlertSink : IAlertSink, IDisposable
{
    private readonly SmtpOptions _options;
    private readonly ILogger _logger;
    private readonly AlertThrottle _throttle;
    private readonly SemaphoreSlim _one = new(1);
    private readonly string _hostName = Environment.MachineName;
    private readonly string _host;
    private readonly string _from;

    public SmtpAlertSink(SmtpOptions options, TimeProvider time, ILogger<SmtpAlertSink> logger)
    {
        _options = options;
        _host = options.Host ?? throw new ArgumentException("no SMTP host", nameof(options));
        _from = options.From ?? throw new ArgumentException("no sender", nameof(options));
        _logger = logger;
        _throttle = new AlertThrottle(TimeSpan.FromSeconds(options.MinimumIntervalSeconds), time, mail => _ = SendHeldAsync(mail));
    }

    public Task SendAsync(Alert alert, CancellationToken cancellationToken)
    {
        if (alert.Severity < _options.MinimumSeverity)
            return Task.CompletedTask;
        return _throttle.Offer(alert) is { } mail ? SendMailAsync(mail, cancellationToken) : Task.CompletedTask;
    }

    /// <summary>Held alerts go out from the throttle's timer: nobody awaits them, so a failure is logged here.</summary>
    private async Task SendHeldAsync(AlertMail mail)
    {
        try
        {
            await SendMailAsync(mail, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogMessages.AlertMailFailed(_logger, mail.Alert.Source, mail.EarlierCount + 1, e);
        }
    }

    private async Task SendMailAsync(AlertMail mail, CancellationToken cancellationToken)
    {
        using var message = Compose(mail);
        await _one.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var client = new SmtpClient { Timeout = 30_000 };
            await client.ConnectAsync(_host, _options.PortOrDefault, _options.SocketOptions, cancellationToken).ConfigureAwait(false);
            if (_options.UserName is { Length: > 0 } user)
                await client.AuthenticateAsync(user, _options.ReadPassword() ?? "", cancellationToken).ConfigureAwait(false);
            await client.SendAsync(message, cancellationToken).ConfigureAwait(false);
            await client.DisconnectAsync(quit: true, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _one.Release();
        }
    }

    /// <summary>Subject <c>[Forewarn HOST] SEVERITY SOURCE: the message's first line</c>; the body has the whole alert and what was held back.</summary>
    public MimeMessage Compose(AlertMail mail)
    {
        var alert = mail.Alert;
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(_from));
        foreach (var to in _options.To)
            message.To.Add(MailboxAddress.Parse(to));
        message.Date = alert.At;
        message.Subject = $"[Forewarn {_hostName}] {alert.Severity} {alert.Source}: {alert.Message.Split('\n')[0].TrimEnd('\r')}";
        var body = new StringBuilder()
            .AppendLine(alert.Message)
            .AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"{alert.Severity} alert from {alert.Source} on {_hostName} at {Time(alert.At)}.");
        if (mail.EarlierCount > 0)
        {
            body.AppendLine()
                .AppendLine(CultureInfo.InvariantCulture, $"and {mail.EarlierCount} more since {Time(mail.Since)} (at most one mail per source every {_options.MinimumIntervalSeconds:0.#} s):");
            if (mail.Earlier is { Count: > 0 } earlier && earlier.Count < mail.EarlierCount)
                body.AppendLine(CultureInfo.InvariantCulture, $"(the last {earlier.Count} of them)");
            foreach (var held in mail.Earlier ?? [])
                body.AppendLine(CultureInfo.InvariantCulture, $"  {Time(held.At)}  {held.Severity}  {held.Message}");
        }
        message.Body = new TextPart("plain") { Text = body.ToString() };
        return message;
    }

    private static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        _throttle.Dispose();
        _one.Dispose();
    }
}
