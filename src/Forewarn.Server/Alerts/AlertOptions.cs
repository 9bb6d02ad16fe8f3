using Forewarn.Core.Health;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Forewarn.Server.Alerts;

/// <summary>Where alerts go besides the log, the admin API and the webhook: section <c>Forewarn:Alerts</c>.</summary>
public sealed class AlertOptions
{
    public const string Section = "Forewarn:Alerts";

    public SyslogOptions Syslog { get; set; } = new();
    public SmtpOptions Smtp { get; set; } = new();

    public IEnumerable<string> Validate() => Syslog.Validate().Concat(Smtp.Validate());
}

/// <summary>A syslog collector (RFC 5424 messages over UDP, RFC 5426, or TCP with octet counting, RFC 6587): <c>Forewarn:Alerts:Syslog</c>.</summary>
public sealed class SyslogOptions
{
    /// <summary>The facility names of RFC 5424 §6.2.1, in the order of their codes (kern = 0 … local7 = 23).</summary>
    private static readonly string[] Facilities =
    [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
        "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ];

    /// <summary>host:port of the collector (an address or a name; the port defaults to 514). Unset: no syslog.</summary>
    public string? Collector { get; set; }

    /// <summary><c>udp</c> (the default) or <c>tcp</c>.</summary>
    public string Transport { get; set; } = "udp";

    public string Facility { get; set; } = "daemon";

    public bool Enabled => !string.IsNullOrWhiteSpace(Collector);
    public bool Tcp => Transport == "tcp";
    public int FacilityCode => Array.IndexOf(Facilities, Facility);

    /// <summary>The collector's host and port; false when <see cref="Collector"/> is not host[:port].</summary>
    public bool TryGetCollector(out string host, out int port)
    {
        host = "";
        port = 0;
        if (!Uri.TryCreate("syslog://" + Collector, UriKind.Absolute, out var uri) || uri.PathAndQuery != "/" || uri.UserInfo.Length > 0 || uri.Fragment.Length > 0)
            return false;
        host = uri.IdnHost;
        port = uri.IsDefaultPort ? 514 : uri.Port;
        return host.Length > 0 && port > 0;
    }

    public IEnumerable<string> Validate()
    {
        if (!Enabled)
            yield break;
        if (!TryGetCollector(out _, out _))
            yield return $"Forewarn:Alerts:Syslog:Collector '{Collector}' is not host:port (e.g. 192.0.2.10:514 or logs.example.org:514).";
        if (Transport is not ("udp" or "tcp"))
            yield return $"Forewarn:Alerts:Syslog:Transport '{Transport}' is neither 'udp' nor 'tcp'.";
        if (FacilityCode < 0)
            yield return $"Forewarn:Alerts:Syslog:Facility '{Facility}' is not a syslog facility ({string.Join(", ", Facilities)}).";
    }
}

/// <summary>Mail to the administrator: <c>Forewarn:Alerts:Smtp</c>.</summary>
public sealed class SmtpOptions
{
    public const string PasswordVariable = "FOREWARN_SMTP_PASSWORD";

    /// <summary>The mail server. Unset: no mail.</summary>
    public string? Host { get; set; }

    /// <summary>Default 25, or 465 with <see cref="Security"/> <c>tls</c>.</summary>
    public int? Port { get; set; }

    /// <summary><c>auto</c> (STARTTLS when the server offers it; the default), <c>none</c>, <c>starttls</c> (required) or <c>tls</c> (TLS from the first byte).</summary>
    public string Security { get; set; } = "auto";

    public string? From { get; set; }
    public List<string> To { get; set; } = [];

    /// <summary>Log in as this user; the password comes from <see cref="PasswordFile"/> (its first line) or $FOREWARN_SMTP_PASSWORD, never from forewarn.json.</summary>
    public string? UserName { get; set; }
    public string? PasswordFile { get; set; }

    /// <summary>Alerts below this severity are not mailed.</summary>
    public AlertSeverity MinimumSeverity { get; set; } = AlertSeverity.Warning;

    /// <summary>At most one mail per alert source this often; what comes between is summarised in the next one. 0: every alert is mailed.</summary>
    public double MinimumIntervalSeconds { get; set; } = 300;

    public bool Enabled => !string.IsNullOrWhiteSpace(Host);
    public int PortOrDefault => Port ?? (Security == "tls" ? 465 : 25);

    public SecureSocketOptions SocketOptions => Security switch
    {
        "none" => SecureSocketOptions.None,
        "starttls" => SecureSocketOptions.StartTls,
        "tls" => SecureSocketOptions.SslOnConnect,
        _ => SecureSocketOptions.StartTlsWhenAvailable,
    };

    /// <summary>The password, read when it is needed (so a rotated file needs no restart); null without one.</summary>
    public string? ReadPassword() => PasswordFile is { Length: > 0 } file
        ? File.ReadLines(file).FirstOrDefault()?.TrimEnd('\r')
        : Environment.GetEnvironmentVariable(PasswordVariable);

    public IEnumerable<string> Validate()
    {
        if (!Enabled)
            yield break;
        if (Port is < 1 or > 65535)
            yield return $"Forewarn:Alerts:Smtp:Port {Port} is not a port (1 to 65535).";
        if (Security is not ("auto" or "none" or "starttls" or "tls"))
            yield return $"Forewarn:Alerts:Smtp:Security '{Security}' is none of 'auto', 'none', 'starttls', 'tls'.";
        if (From is null || !MailboxAddress.TryParse(From, out _))
            yield return $"Forewarn:Alerts:Smtp:From '{From}' is not a mail address: mail needs a sender.";
        if (To.Count == 0)
            yield return "Forewarn:Alerts:Smtp:To is empty: mail needs at least one recipient (Forewarn:Alerts:Smtp:To:0=admin@example.org).";
        foreach (var to in To.Where(t => !MailboxAddress.TryParse(t, out _)))
            yield return $"Forewarn:Alerts:Smtp:To '{to}' is not a mail address.";
        if (MinimumIntervalSeconds is < 0 or > 86400 || double.IsNaN(MinimumIntervalSeconds))
            yield return "Forewarn:Alerts:Smtp:MinimumIntervalSeconds must be between 0 and 86400.";
        if (UserName is { Length: > 0 })
        {
            string? error = null;
            try
            {
                if (ReadPassword() is null)
                    error = $"Forewarn:Alerts:Smtp:UserName is set but no password is: give Forewarn:Alerts:Smtp:PasswordFile or ${PasswordVariable}.";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error = $"Forewarn:Alerts:Smtp:PasswordFile '{PasswordFile}' cannot be read: {e.Message}";
            }
            if (error is not null)
                yield return error;
        }
    }
}

internal sealed class AlertOptionsValidator : IValidateOptions<AlertOptions>
{
    public ValidateOptionsResult Validate(string? name, AlertOptions options)
    {
        var errors = options.Validate().ToList();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
