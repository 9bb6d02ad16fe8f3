using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Forewarn.Core.Health;
using Forewarn.Server.Alerts;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forewarn.Server.Tests;

/// <summary>
/// Alerts of a real `forewarn serve` (raised by the operator's drain and resume) reaching real peers: a
/// syslog collector's UDP and TCP sockets, and an SMTP server (Python's smtpd).
/// </summary>
public sealed partial class AlertSinkTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-alerts-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>RFC 5424 §6: HEADER SP STRUCTURED-DATA SP MSG, MSG starting with the BOM.</summary>
    [GeneratedRegex(@"^<(?<pri>\d{1,3})>1 (?<time>\S+) (?<host>\S+) (?<app>\S+) (?<proc>\S+) (?<msgid>\S+) (?<sd>\[(?:[^\]\\]|\\.)*\]) \uFEFF(?<msg>.*)$", RegexOptions.Singleline)]
    private static partial Regex SyslogMessage();

    private static Match Parse(byte[] message)
    {
        var match = SyslogMessage().Match(new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(message));
        Assert.True(match.Success, Encoding.UTF8.GetString(message));
        return match;
    }

    private static void AssertOperatorAlert(Match syslog, int pri, ServerProcess server, string message)
    {
        Assert.Equal(pri, int.Parse(syslog.Groups["pri"].Value, CultureInfo.InvariantCulture));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", syslog.Groups["time"].Value);
        var at = DateTimeOffset.Parse(syslog.Groups["time"].Value, CultureInfo.InvariantCulture);
        Assert.InRange(at, DateTimeOffset.UtcNow.AddMinutes(-10), DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Equal(Environment.MachineName, syslog.Groups["host"].Value);
        Assert.Equal("forewarn", syslog.Groups["app"].Value);
        Assert.Equal(server.Id.ToString(CultureInfo.InvariantCulture), syslog.Groups["proc"].Value);
        Assert.Equal("operator", syslog.Groups["msgid"].Value);
        Assert.Equal("[forewarn@32473 source=\"operator\" severity=\"Info\"]", syslog.Groups["sd"].Value);
        Assert.Equal(message, syslog.Groups["msg"].Value);
    }

    [SkippableFact]
    public async Task Syslog_Udp_EachAlertIsOneRfc5424Datagram()
    {
        using var collector = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        collector.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)collector.LocalEndPoint!).Port;
        await using var server = await ServerProcess.StartAsync(_data, "--set", $"Forewarn:Alerts:Syslog:Collector=127.0.0.1:{port}");

        async Task<byte[]> NextFromOperatorAsync()
        {
            var buffer = new byte[65536];
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (true)
            {
                int n = await collector.ReceiveAsync(buffer, SocketFlags.None, limit.Token);
                Assert.InRange(n, 1, SyslogAlertSink.UdpMaxOctets);
                if (Parse(buffer[..n]).Groups["msgid"].Value == "operator")
                    return buffer[..n];
            }
        }

        await server.PostAsync("/api/drain");
        AssertOperatorAlert(Parse(await NextFromOperatorAsync()), 3 * 8 + 6, server, "drain requested: every client is deferred");
        await server.PostAsync("/api/resume");
        AssertOperatorAlert(Parse(await NextFromOperatorAsync()), 3 * 8 + 6, server, "resume requested: zones follow the score again");
    }

    [SkippableFact]
    public async Task Syslog_Tcp_OctetCountedFrames_WithTheFacilityConfigured()
    {
        var collector = new TcpListener(IPAddress.Loopback, 0);
        collector.Start();
        try
        {
            int port = ((IPEndPoint)collector.LocalEndpoint).Port;
            await using var server = await ServerProcess.StartAsync(_data, "--set", $"Forewarn:Alerts:Syslog:Collector=127.0.0.1:{port}",
                "--set", "Forewarn:Alerts:Syslog:Transport=tcp", "--set", "Forewarn:Alerts:Syslog:Facility=local4");
            await server.PostAsync("/api/drain");
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (true)
            {
                using var connection = await collector.AcceptTcpClientAsync(limit.Token);
                using var received = new MemoryStream();
                await connection.GetStream().CopyToAsync(received, limit.Token);
                // RFC 6587 §3.4.1: SYSLOG-FRAME = MSG-LEN SP SYSLOG-MSG, MSG-LEN the octets of SYSLOG-MSG.
                var frame = received.ToArray();
                int space = Array.IndexOf(frame, (byte)' ');
                Assert.True(space > 0, Encoding.UTF8.GetString(frame));
                int length = int.Parse(Encoding.ASCII.GetString(frame, 0, space), NumberStyles.None, CultureInfo.InvariantCulture);
                Assert.Equal(frame.Length - space - 1, length);
                var syslog = Parse(frame[(space + 1)..]);
                if (syslog.Groups["msgid"].Value != "operator")
                    continue;
                AssertOperatorAlert(syslog, 20 * 8 + 6, server, "drain requested: every client is deferred");
                break;
            }
        }
        finally
        {
            collector.Stop();
        }
    }

    /// <summary>
    /// Four alerts of one source in quick succession (drain, resume, drain, resume) under a 15 s bound: one
    /// mail at once, and one more when the interval ends that carries the last and counts the two before it.
    /// </summary>
    [SkippableFact]
    public async Task Smtp_ABurstOfOneSource_IsOneMail_ThenOneSummary()
    {
        await using var smtp = await SmtpPeer.StartAsync();
        await using var server = await ServerProcess.StartAsync(_data,
            "--set", "Forewarn:Alerts:Smtp:Host=127.0.0.1", "--set", $"Forewarn:Alerts:Smtp:Port={smtp.Port}",
            "--set", "Forewarn:Alerts:Smtp:From=Forewarn <forewarn@example.org>", "--set", "Forewarn:Alerts:Smtp:To:0=admin@example.org",
            "--set", "Forewarn:Alerts:Smtp:MinimumSeverity=Info", "--set", "Forewarn:Alerts:Smtp:MinimumIntervalSeconds=15");
        static List<MimeKit.MimeMessage> FromOperator(IReadOnlyList<MimeKit.MimeMessage> messages) =>
            [.. messages.Where(m => m.Subject?.Contains(" operator: ", StringComparison.Ordinal) == true)];

        await server.PostAsync("/api/drain");
        var first = Assert.Single(FromOperator(await smtp.WaitForAsync(m => FromOperator(m).Count >= 1, TimeSpan.FromSeconds(30))));
        Assert.Equal($"[Forewarn {Environment.MachineName}] Info operator: drain requested: every client is deferred", first.Subject);
        Assert.Equal("forewarn@example.org", first.From.Mailboxes.Single().Address);
        Assert.Equal("admin@example.org", first.To.Mailboxes.Single().Address);
        Assert.Equal("admin@example.org", first.Headers["X-Envelope-To"]);

        await server.PostAsync("/api/resume");
        await server.PostAsync("/api/drain");
        await server.PostAsync("/api/resume");
        Assert.Equal(4, (await server.StatusAsync()).Health.RecentAlerts.Count(a => a.Source == "operator"));
        var mails = FromOperator(await smtp.WaitForAsync(m => FromOperator(m).Count >= 2, TimeSpan.FromSeconds(60)));
        Assert.Equal(2, mails.Count);
        var summary = mails[1];
        Assert.Equal($"[Forewarn {Environment.MachineName}] Info operator: resume requested: zones follow the score again", summary.Subject);
        Assert.Contains("and 2 more since", summary.TextBody, StringComparison.Ordinal);
        Assert.Contains("drain requested", summary.TextBody, StringComparison.Ordinal);
        // Nothing else follows: the burst was two mails.
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(2, FromOperator(smtp.Messages()).Count);
    }

    /// <summary>The sink itself against the real SMTP server: below the minimum severity nothing is sent; a second alert of the source within the interval waits.</summary>
    [SkippableFact]
    public async Task Smtp_MailsFromTheMinimumSeverity_OneMailPerSourceAtOnce()
    {
        await using var smtp = await SmtpPeer.StartAsync();
        using var sink = new SmtpAlertSink(new SmtpOptions { Host = "127.0.0.1", Port = smtp.Port, From = "forewarn@example.org", To = ["admin@example.org", "ops@example.org"] },
            TimeProvider.System, NullLogger<SmtpAlertSink>.Instance);
        await sink.SendAsync(new Alert(DateTimeOffset.UtcNow, AlertSeverity.Info, "operator", "drain requested"), CancellationToken.None);
        await sink.SendAsync(new Alert(DateTimeOffset.UtcNow, AlertSeverity.Warning, "disk-space", "12 h of accounting left\n(at 3 MiB/h)"), CancellationToken.None);
        await sink.SendAsync(new Alert(DateTimeOffset.UtcNow, AlertSeverity.Critical, "disk-space", "held for the summary"), CancellationToken.None);
        // The sink returns once the server accepted the mail; smtpd wrote it before answering.
        var mail = Assert.Single(smtp.Messages());
        Assert.Equal($"[Forewarn {Environment.MachineName}] Warning disk-space: 12 h of accounting left", mail.Subject);
        Assert.Contains("(at 3 MiB/h)", mail.TextBody, StringComparison.Ordinal);
        Assert.Equal("admin@example.org,ops@example.org", mail.Headers["X-Envelope-To"]);
    }

    [SkippableFact]
    public async Task BadAlertSettings_RefuseToStart_WithOneSentence()
    {
        var program = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
        Task<Peer.Result> Serve(params string[] settings) => Peer.RunAsync("/usr/bin/env",
            ["dotnet", program, "serve", "--data", _data, "--auth-port", "0", "--acct-port", "0", "--advisory-port", "0", "--tacacs-port", "0", .. settings.SelectMany(s => new[] { "--set", s })]);

        var syslog = await Serve("Forewarn:Alerts:Syslog:Collector=127.0.0.1:99999");
        Assert.True(syslog.ExitCode == 2, syslog.ToString());
        Assert.Contains("Forewarn:Alerts:Syslog:Collector '127.0.0.1:99999' is not host:port", syslog.Error, StringComparison.Ordinal);

        var smtp = await Serve("Forewarn:Alerts:Smtp:Host=127.0.0.1");
        Assert.True(smtp.ExitCode == 2, smtp.ToString());
        Assert.Contains("mail needs a sender", smtp.Error, StringComparison.Ordinal);
        Assert.Contains("mail needs at least one recipient", smtp.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", smtp.Error + smtp.Output, StringComparison.Ordinal);
    }
}
