using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;

namespace Forewarn.Server.Tests;

/// <summary>
/// The admin API's /metrics, scraped from a real server process after radclient's logins: Prometheus's
/// own promtool accepts the exposition, and the counters match the requests sent.
/// </summary>
[Collection(nameof(Serial))]
public sealed partial class MetricsTests : IDisposable
{
    private static readonly string Forewarn = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-metrics-" + Guid.NewGuid().ToString("N")[..12]);

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

    [SkippableFact]
    public async Task Metrics_AfterRadclientLogins_PassPromtool_AndCountWhatWasSent()
    {
        Requires.Program("radclient");
        Requires.Program("promtool");
        var add = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "users", "add", "scraped", "--password", "pw", "--methods", "pap", "--data", _data]);
        Assert.True(add.ExitCode == 0, add.ToString());
        await using var server = await ServerProcess.StartAsync(_data);

        // Five good logins and three wrong passwords, each a radclient of its own.
        foreach (var password in new[] { "pw", "pw", "nope", "pw", "nope", "pw", "nope", "pw" })
        {
            var r = await Peer.RunAsync("radclient", ["-r", "1", "-t", "3", $"127.0.0.1:{server.AuthPort}", "auth", "testing123"], $"User-Name = \"scraped\", User-Password = \"{password}\"\n");
            Assert.Contains(password == "pw" ? "Received Access-Accept" : "Received Access-Reject", r.Output, StringComparison.Ordinal);
        }

        using var http = new HttpClient();
        var metricsUri = new Uri(server.Admin, "/metrics");
        // Like every admin path, /metrics wants the operator's token.
        using (var anonymous = await http.GetAsync(metricsUri))
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await File.ReadAllTextAsync(Path.Combine(_data, "admin.token"))).Trim());
        string text = await http.GetStringAsync(metricsUri);

        // And two accounting records, one of them sent twice (a retransmission): stored once, answered twice.
        var accounting = Path.Combine(_data, "acct.txt");
        await File.WriteAllTextAsync(accounting, """
            Acct-Status-Type = Start, Acct-Session-Id = "m-1", User-Name = "scraped", NAS-IP-Address = 127.0.0.1

            Acct-Status-Type = Start, Acct-Session-Id = "m-2", User-Name = "scraped", NAS-IP-Address = 127.0.0.1

            """);
        foreach (var _ in new[] { 1, 2 })
        {
            var r = await Peer.RunAsync("radclient", ["-x", "-r", "1", "-t", "3", "-f", accounting, $"127.0.0.1:{server.AcctPort}", "acct", "testing123"]);
            Assert.True(r.ExitCode == 0 && r.Output.Contains("Received Accounting-Response", StringComparison.Ordinal), r.ToString());
        }
        text = await http.GetStringAsync(metricsUri);

        var check = await Peer.RunAsync("promtool", ["check", "metrics"], text);
        Assert.True(check.ExitCode == 0, check + "\n" + text);

        Assert.Equal(5, Value(text, "forewarn_responses_total", "result=\"access-accept\""));
        Assert.Equal(3, Value(text, "forewarn_responses_total", "result=\"access-reject\""));
        Assert.True(Value(text, "forewarn_requests_received_total", "protocol=\"radius\"") >= 8, text);
        // Every answer is in the latency histogram, in seconds: the logins, and the server's own Status-Server checks.
        Assert.InRange(Value(text, "forewarn_request_duration_seconds_count", "protocol=\"radius\""), 8, 8 + Value(text, "forewarn_responses_total", "result=\"status-server\"") + 2);
        Assert.True(Value(text, "forewarn_request_duration_seconds_bucket", "protocol=\"radius\"", "le=\"5\"") >= 8, text);
        Assert.Equal(1, Value(text, "forewarn_health_zone", "zone=\"accept\""));
        Assert.Equal(0.25, Value(text, "forewarn_health_threshold", "threshold=\"failover\""));
        Assert.InRange(Value(text, "forewarn_health_score"), 0, 1);
        Assert.Equal(0, Value(text, "forewarn_requests_dropped_total", "reason=\"BadMessageAuthenticator\""));
        Assert.True(Value(text, "forewarn_accounting_committed_total") == 2, text);
        Assert.True(Value(text, "forewarn_accounting_duplicates_total") == 2, text);
        Assert.True(Value(text, "forewarn_responses_total", "result=\"accounting-response\"") == 4, text);
        Assert.True(Value(text, "forewarn_accounting_commit_duration_seconds_count") >= 1, text);
        Assert.Equal(0, Value(text, "forewarn_accounting_queue_depth"));
        // What the FreeRADIUS exporter cannot say: why logins failed, and who sent what (bounded labels).
        Assert.Equal(5, Value(text, "forewarn_authentications_total", "protocol=\"radius\"", "result=\"accept\""));
        Assert.Equal(3, Value(text, "forewarn_authentications_total", "result=\"reject\"", "reason=\"wrong credentials\""));
        Assert.True(Value(text, "forewarn_client_requests_total", "client=\"localhost\"") >= 12, text);
        Assert.Equal(1, Value(text, "forewarn_client_nases", "client=\"localhost\"", "state=\"active\""));
        // The first login missed the user cache: the store's own latency was measured.
        Assert.True(Value(text, "forewarn_store_lookup_duration_seconds_count") >= 1, text);
    }

    /// <summary>The value of the one sample of <paramref name="name"/> whose labels include every one of <paramref name="labels"/>.</summary>
    private static double Value(string text, string name, params string[] labels)
    {
        var samples = Sample().Matches(text)
            .Where(m => m.Groups["name"].Value == name && labels.All(l => m.Groups["labels"].Value.Split(',').Contains(l, StringComparer.Ordinal))).ToList();
        Assert.True(samples.Count == 1, $"{samples.Count} samples of {name} {string.Join(',', labels)}:\n{text}");
        return double.Parse(samples[0].Groups["value"].Value, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>\S+)", RegexOptions.Multiline)]
    private static partial Regex Sample();
}
