using System.Text;
using Forewarn.Core.Health;
using Forewarn.Server.Alerts;
using Microsoft.Extensions.Time.Testing;

namespace Forewarn.Server.Tests;

/// <summary>The syslog formatter (RFC 5424), the mail rate bound under a fake clock, and the alert settings' checks.</summary>
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

    [Fact]
    public void Throttle_ABurstOfOneSource_IsOneMailNow_AndOneSummaryWhenTheIntervalEnds()
    {
        var time = new FakeTimeProvider(At);
        var due = new List<AlertMail>();
        using var throttle = new AlertThrottle(TimeSpan.FromSeconds(300), time, due.Add);
        Alert Raise(string source, string message) => new(time.GetUtcNow(), AlertSeverity.Warning, source, message);

        var first = throttle.Offer(Raise("peer", "a1"));
        Assert.Equal("a1", first?.Alert.Message);
        Assert.Equal(0, first?.EarlierCount);
        var held = new List<Alert>();
        for (int i = 2; i <= 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(10));
            held.Add(Raise("peer", $"a{i}"));
            Assert.Null(throttle.Offer(held[^1]));
        }
        // Another source is not held back by this one.
        Assert.NotNull(throttle.Offer(Raise("disk-space", "b1")));

        time.Advance(TimeSpan.FromSeconds(259));
        Assert.Empty(due);
        time.Advance(TimeSpan.FromSeconds(1));
        var summary = Assert.Single(due);
        Assert.Equal("a5", summary.Alert.Message);
        Assert.Equal(3, summary.EarlierCount);
        Assert.Equal(held[0].At, summary.Since);
        Assert.Equal(["a2", "a3", "a4"], summary.Earlier!.Select(a => a.Message));

        // The summary was a mail: the next alert within the interval is held again, and goes out alone.
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(throttle.Offer(Raise("peer", "a6")));
        time.Advance(TimeSpan.FromSeconds(300));
        Assert.Equal(2, due.Count);
        Assert.Equal(("a6", 0), (due[1].Alert.Message, due[1].EarlierCount));

        // A quiet source's next alert goes out at once.
        time.Advance(TimeSpan.FromSeconds(301));
        Assert.NotNull(throttle.Offer(Raise("peer", "a7")));
        Assert.Equal(2, due.Count);
    }

    [Fact]
    public void Throttle_AStorm_IsCountedInFull_AndTheLastFewListed()
    {
        var time = new FakeTimeProvider(At);
        var due = new List<AlertMail>();
        using var throttle = new AlertThrottle(TimeSpan.FromSeconds(60), time, due.Add);
        for (int i = 0; i <= 1000; i++)
            throttle.Offer(new Alert(time.GetUtcNow(), AlertSeverity.Critical, "advisory", $"n{i}"));
        time.Advance(TimeSpan.FromSeconds(60));
        var summary = Assert.Single(due);
        Assert.Equal("n1000", summary.Alert.Message);
        Assert.Equal(999, summary.EarlierCount);
        Assert.Equal(AlertThrottle.Listed, summary.Earlier!.Count);
        Assert.Equal("n999", summary.Earlier[^1].Message);
    }

    [Fact]
    public void Throttle_ZeroInterval_MailsEveryAlert()
    {
        var time = new FakeTimeProvider(At);
        using var throttle = new AlertThrottle(TimeSpan.Zero, time, _ => Assert.Fail("nothing is held"));
        for (int i = 0; i < 5; i++)
            Assert.NotNull(throttle.Offer(new Alert(time.GetUtcNow(), AlertSeverity.Warning, "peer", "m")));
    }

    [Fact]
    public void SummaryMail_SaysHowManyMoreSinceWhen()
    {
        using var sink = new SmtpAlertSink(new SmtpOptions { Host = "mail.invalid", From = "forewarn@example.org", To = ["admin@example.org", "Ops <ops@example.org>"] },
            TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<SmtpAlertSink>.Instance);
        var earlier = new Alert(At.AddSeconds(5), AlertSeverity.Critical, "accounting-sink", "accounting sink failed: deferring every client");
        using var mail = sink.Compose(new AlertMail(new Alert(At.AddSeconds(9), AlertSeverity.Info, "accounting-sink", "service accounting-sink restored\nsecond line"), 1, earlier.At, [earlier]));
        Assert.Equal($"[Forewarn {Environment.MachineName}] Info accounting-sink: service accounting-sink restored", mail.Subject);
        Assert.Equal(["admin@example.org", "ops@example.org"], mail.To.Mailboxes.Select(m => m.Address));
        Assert.Equal("forewarn@example.org", mail.From.Mailboxes.Single().Address);
        Assert.Contains("second line", mail.TextBody, StringComparison.Ordinal);
        Assert.Contains("and 1 more since 2025-06-01 12:00:05 UTC", mail.TextBody, StringComparison.Ordinal);
        Assert.Contains("Critical  accounting sink failed: deferring every client", mail.TextBody, StringComparison.Ordinal);
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

        var smtp = Errors(new AlertOptions { Smtp = { Host = "mail.example.org" } });
        Assert.Equal(2, smtp.Count);
        Assert.Contains(smtp, e => e.Contains("Smtp:From", StringComparison.Ordinal));
        Assert.Contains(smtp, e => e.Contains("Smtp:To is empty", StringComparison.Ordinal));
        Assert.Contains("'not an address' is not a mail address",
            Assert.Single(Errors(new AlertOptions { Smtp = { Host = "m", From = "f@example.org", To = ["not an address"] } })), StringComparison.Ordinal);
        var missing = Path.Combine(Path.GetTempPath(), "forewarn-missing-" + Guid.NewGuid().ToString("N"));
        Assert.Contains("PasswordFile", Assert.Single(Errors(new AlertOptions { Smtp = { Host = "m", From = "f@example.org", To = ["t@example.org"], UserName = "u", PasswordFile = missing } })), StringComparison.Ordinal);
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

    [Fact]
    public void Settings_SmtpPassword_IsTheFirstLineOfItsFile()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "s3cret\r\nignored\n");
            Assert.Equal("s3cret", new SmtpOptions { PasswordFile = file }.ReadPassword());
        }
        finally
        {
            File.Delete(file);
        }
    }
}
