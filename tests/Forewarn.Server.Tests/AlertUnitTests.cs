using System.Text;
using Forewarn.Core.Health;
using Forewarn.Server.Alerts;

namespace Forewarn.Server.Tests;

/// <summary>The syslog formatter (RFC 5424) and the alert settings' checks.</summary>
public sealed class AlertUnitTests
{
    private static readonly DateTimeOffset At = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    [Fact]
    public void RFC5424_6_HeaderStructuredDataAndMsg_ByteExact()
    {
        var formatter = new SyslogFormatter(16, "host", "forewarn", 4242);
        var alert = new Alert(At.AddTicks(1_234_567), AlertSeverity.Critical, "accounting-sink", "deferring every client");
        var bytes = formatter.Format(alert, 2048);
        Assert.Equal("<130>1 2025-06-01T12:00:00.123456Z host forewarn 4242 accounting-sink [forewarn@32473 source=\"accounting-sink\" severity=\"Critical\"] \uFEFFdeferring every client",
            Strict.GetString(bytes));
        // §6.4: MSG is the BOM, then UTF-8.
        int bom = bytes.AsSpan().IndexOf("\"] "u8) + 3;
        Assert.Equal(new byte[] { 0xEF, 0xBB, 0xBF }, bytes[bom..(bom + 3)]);
    }

    [Theory]
    [InlineData(AlertSeverity.Critical, "daemon", 26)]
    [InlineData(AlertSeverity.Warning, "daemon", 28)]
    [InlineData(AlertSeverity.Info, "daemon", 30)]
    [InlineData(AlertSeverity.Warning, "local7", 188)]
    [InlineData(AlertSeverity.Info, "kern", 6)]
    public void RFC5424_6_2_1_Pri_IsFacilityTimesEightPlusSeverity(AlertSeverity severity, string facility, int pri)
    {
        var options = new SyslogOptions { Collector = "127.0.0.1:514", Facility = facility };
        var text = Encoding.UTF8.GetString(new SyslogFormatter(options.FacilityCode, "h", "forewarn", 1).Format(new Alert(At, severity, "s", "m"), 2048));
        Assert.StartsWith($"<{pri}>1 ", text, StringComparison.Ordinal);
    }

    [Fact]
    public void RFC5424_6_3_3_ParamValue_EscapesQuoteBackslashAndBracket_MsgIdIsPrintableAsciiOf32()
    {
        var formatter = new SyslogFormatter(3, "a host", "forewarn", 1);
        var source = "odd \"source\" \\ with ] and more than thirty-two characters";
        var text = Encoding.UTF8.GetString(formatter.Format(new Alert(At, AlertSeverity.Warning, source, "m"), 2048));
        var fields = text.Split(' ');
        Assert.Equal("a_host", fields[2]);
        Assert.Equal("odd_\"source\"_\\_with_]_and_more_t", fields[5]);
        Assert.Equal(32, fields[5].Length);
        Assert.Contains("[forewarn@32473 source=\"odd \\\"source\\\" \\\\ with \\] and more than thirty-two characters\" severity=\"Warning\"]", text, StringComparison.Ordinal);
        Assert.Equal("-", SyslogFormatter.HeaderField("", 32));
    }

    [Fact]
    public void RFC5426_3_2_Datagram_IsCutTo2048Octets_AtACharacterBoundary()
    {
        var formatter = new SyslogFormatter(3, "host", "forewarn", 1);
        var message = string.Concat(Enumerable.Repeat("é€", 1000));
        var bytes = formatter.Format(new Alert(At, AlertSeverity.Info, "monitor", message), 2048);
        Assert.InRange(bytes.Length, 2045, 2048);
        var text = Strict.GetString(bytes); // throws on a cut character
        var msg = text[(text.IndexOf('\uFEFF', StringComparison.Ordinal) + 1)..];
        Assert.StartsWith(msg, message, StringComparison.Ordinal);
        Assert.True(msg.Length < message.Length);

        var small = formatter.Format(new Alert(At, AlertSeverity.Info, "monitor", "short"), 2048);
        Assert.EndsWith("\uFEFFshort", Strict.GetString(small), StringComparison.Ordinal);
    }

    private static List<string> Errors(AlertOptions options) =>
        new AlertOptionsValidator().Validate(null, options).Failures?.ToList() ?? [];

    [Fact]
    public void Settings_NothingConfigured_IsValid_AndBadOnesAreOneSentenceEach()
    {
        Assert.Empty(Errors(new AlertOptions()));
        Assert.Contains("'127.0.0.1:99999' is not host:port", Assert.Single(Errors(new AlertOptions { Syslog = { Collector = "127.0.0.1:99999" } })), StringComparison.Ordinal);
        Assert.Contains("Transport 'quic'", Assert.Single(Errors(new AlertOptions { Syslog = { Collector = "127.0.0.1", Transport = "quic" } })), StringComparison.Ordinal);
        Assert.Contains("Facility 'daemons'", Assert.Single(Errors(new AlertOptions { Syslog = { Collector = "127.0.0.1", Facility = "daemons" } })), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("192.0.2.10:6514", "192.0.2.10", 6514)]
    [InlineData("logs.example.org", "logs.example.org", 514)]
    [InlineData("[::1]:1514", "::1", 1514)]
    public void Settings_Collector_IsHostAndPort(string collector, string host, int port)
    {
        Assert.True(new SyslogOptions { Collector = collector }.TryGetCollector(out var h, out var p));
        Assert.Equal((host, port), (h, p));
    }
}
