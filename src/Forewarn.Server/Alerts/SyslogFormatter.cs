using System.Globalization;
using System.Text;
using Forewarn.Core.Health;

namespace Forewarn.Server.Alerts;

/// <summary>
/// An alert as an RFC 5424 syslog message (https://www.rfc-editor.org/rfc/rfc5424#section-6):
/// <code>
/// SYSLOG-MSG = HEADER SP STRUCTURED-DATA [SP MSG]
/// HEADER     = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
///
/// &lt;30&gt;1 2025-06-01T12:00:00.123456Z host forewarn 4242 operator [forewarn@32473 source="operator" severity="Info"] BOM drain requested…
/// </code>
/// </summary>
public sealed class SyslogFormatter
{
    /// <summary>The SD-ID: 32473 is the enterprise number RFC 5612 reserves for documentation and examples.</summary>
    public const string SdId = "forewarn@32473";

    /// <summary>The source in the structured data is bounded, so that the header always leaves room within <see cref="MinimumOctets"/>.</summary>
    private const int SourceParamChars = 64;

    /// <summary>The least bound a message may be formatted to (the longest header with its structured data fits well within it).</summary>
    public const int MinimumOctets = 1024;

    private static readonly byte[] Bom = [0xEF, 0xBB, 0xBF];

    private readonly int _facility;
    private readonly string _hostName;
    private readonly string _appName;
    private readonly string _procId;

    public SyslogFormatter(int facility, string hostName, string appName, int processId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(facility);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(facility, 23);
        _facility = facility;
        _hostName = HeaderField(hostName, 255);
        _appName = HeaderField(appName, 48);
        _procId = processId.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The message in at most <paramref name="maxOctets"/> octets: MSG is cut (at a character's boundary) to fit.</summary>
    public byte[] Format(Alert alert, int maxOctets)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxOctets, MinimumOctets);
        var head = new StringBuilder()
            .Append('<').Append(_facility * 8 + Severity(alert.Severity)).Append(">1 ")                     // PRI VERSION (§6.2.1, §6.2.2)
            .Append(alert.At.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture)).Append(' ') // TIMESTAMP (§6.2.3)
            .Append(_hostName).Append(' ')                                                                   // HOSTNAME, 1*255 PRINTUSASCII
            .Append(_appName).Append(' ')                                                                    // APP-NAME, 1*48
            .Append(_procId).Append(' ')                                                                     // PROCID, 1*128
            .Append(HeaderField(alert.Source, 32)).Append(' ')                                               // MSGID, 1*32
            .Append('[').Append(SdId)                                                                        // STRUCTURED-DATA (§6.3)
            .Append(" source=\"").Append(ParamValue(alert.Source.Length > SourceParamChars ? alert.Source[..SourceParamChars] : alert.Source))
            .Append("\" severity=\"").Append(alert.Severity).Append("\"] ");
        byte[] header = Encoding.UTF8.GetBytes(head.ToString());
        byte[] message = Encoding.UTF8.GetBytes(alert.Message);
        int length = Math.Min(message.Length, maxOctets - header.Length - Bom.Length);
        // Cut before a continuation byte's lead, never inside a character.
        while (length < message.Length && length > 0 && (message[length] & 0xC0) == 0x80)
            length--;
        return [.. header, .. Bom, .. message.AsSpan(0, length)];                                           // MSG = BOM UTF-8-STRING (§6.4)
    }

    /// <summary>RFC 5424 §6.2.1 severities: 2 critical, 4 warning, 6 informational.</summary>
    public static int Severity(AlertSeverity severity) => severity switch
    {
        AlertSeverity.Critical => 2,
        AlertSeverity.Warning => 4,
        _ => 6,
    };

    /// <summary>A header field: PRINTUSASCII (33–126) only, others as '_', at most <paramref name="max"/> characters; empty is the NILVALUE "-".</summary>
    public static string HeaderField(string value, int max)
    {
        if (value.Length == 0)
            return "-";
        var field = new StringBuilder(Math.Min(value.Length, max));
        foreach (char c in value.AsSpan(0, Math.Min(value.Length, max)))
            field.Append(c is >= '!' and <= '~' ? c : '_');
        return field.ToString();
    }

    /// <summary>A PARAM-VALUE (§6.3.3): '"', '\' and ']' are escaped with a backslash.</summary>
    public static string ParamValue(string value)
    {
        var escaped = new StringBuilder(value.Length);
        foreach (char c in value)
        {
            if (c is '"' or '\\' or ']')
                escaped.Append('\\');
            escaped.Append(c);
        }
        return escaped.ToString();
    }
}
