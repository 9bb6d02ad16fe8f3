using Microsoft.Extensions.Options;

namespace Forewarn.Server.Alerts;

/// <summary>Where alerts go besides the log, the admin API and the webhook: section <c>Forewarn:Alerts</c>.</summary>
public sealed class AlertOptions
{
    public const string Section = "Forewarn:Alerts";

    public SyslogOptions Syslog { get; set; } = new();

    public IEnumerable<string> Validate() => Syslog.Validate();
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

internal sealed class AlertOptionsValidator : IValidateOptions<AlertOptions>
{
    public ValidateOptionsResult Validate(string? name, AlertOptions options)
    {
        var errors = options.Validate().ToList();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
