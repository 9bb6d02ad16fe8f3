using System.CommandLine;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Forewarn.Core.Health;
using Forewarn.Server;
using Forewarn.Server.Health;

namespace Forewarn.Cli;

/// <summary>status, drain, resume, drill: the operator's controls, through the running server's admin API.</summary>
internal static class HealthCommands
{
    private static readonly Option<string?> Admin = new("--admin") { Description = "Admin API URL (default: read from admin.url in the data directory)" };
    private static readonly Option<string?> Token = new("--token") { Description = "Admin API token (default: $FOREWARN_ADMIN_TOKEN, else admin.token in the data directory)" };
    private static readonly Option<bool> Json = new("--json") { Description = "Print the raw JSON" };

    public static IEnumerable<Command> Create()
    {
        var status = new Command("status", "Show the running server's score, probes, zones, forecast and lead times") { Admin, Token, Json };
        status.SetAction((result, ct) => CallAsync(result, HttpMethod.Get, "/api/v1/status", ct));
        yield return status;

        var drain = new Command("drain", "Planned maintenance: defer every client gracefully") { Admin, Token, Json };
        drain.SetAction((result, ct) => CallAsync(result, HttpMethod.Post, "/api/v1/drain", ct));
        yield return drain;

        var resume = new Command("resume", "End a drain: zones follow the score again") { Admin, Token, Json };
        resume.SetAction((result, ct) => CallAsync(result, HttpMethod.Post, "/api/v1/resume", ct));
        yield return resume;

        var kind = new Option<string>("--kind") { Description = "score (synthetic), level (synthetic: the score held at the intensity, 0–1), slow-store, cpu-hog, fail-accounting, gc (full collections, noise) or loss (the intensity is the share of received RADIUS datagrams dropped)", DefaultValueFactory = _ => "score" };
        var seconds = new Option<double>("--seconds") { Description = "How long the drill lasts", DefaultValueFactory = _ => 60 };
        var intensity = new Option<double>("--intensity") { Description = "Strength (slow-store: ×200 ms per lookup)", DefaultValueFactory = _ => 1 };
        var stop = new Option<bool>("--stop") { Description = "End the running drill" };
        var drill = new Command("drill", "Rehearse: inject a degradation the monitor must see") { kind, seconds, intensity, stop, Admin, Token, Json };
        drill.SetAction((result, ct) => result.GetValue(stop)
            ? CallAsync(result, HttpMethod.Delete, "/api/v1/drill", ct)
            : CallAsync(result, HttpMethod.Post, string.Create(CultureInfo.InvariantCulture,
                $"/api/v1/drill?kind={Uri.EscapeDataString(result.GetValue(kind)!)}&seconds={result.GetValue(seconds)}&intensity={result.GetValue(intensity)}"), ct));
        yield return drill;
    }

    /// <summary>The options every admin-API command takes.</summary>
    public static IEnumerable<Option> ClientOptions() => [Admin, Token, Json];

    internal static async Task<int> CallAsync(ParseResult result, HttpMethod method, string path, CancellationToken cancellationToken)
    {
        var baseUrl = result.GetValue(Admin);
        if (baseUrl is null)
        {
            var file = Path.Combine(CommonOptions.DataDirectoryOf(result), "admin.url");
            if (!File.Exists(file))
                return CommonOptions.Fail($"no running server found: {file} does not exist (is 'forewarn serve --data {CommonOptions.DataDirectoryOf(result)}' running?)");
            baseUrl = (await File.ReadAllTextAsync(file, cancellationToken).ConfigureAwait(false)).Trim();
        }
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(10) };
        var token = result.GetValue(Token) ?? Environment.GetEnvironmentVariable("FOREWARN_ADMIN_TOKEN") ?? AdminAccess.ReadToken(CommonOptions.DataDirectoryOf(result));
        if (!string.IsNullOrEmpty(token))
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(new HttpRequestMessage(method, path), cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            return CommonOptions.Fail($"cannot reach the admin API at {baseUrl}: {e.Message}");
        }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                return CommonOptions.Fail($"{(int)response.StatusCode} {response.ReasonPhrase}: {body}");
            if (result.GetValue(Json))
            {
                Console.WriteLine(body);
                return 0;
            }
            var status = JsonSerializer.Deserialize<ServerStatus>(body, AdminJson.Options)!;
            Console.Write(Render(status));
            return 0;
        }
    }

    internal static string Render(ServerStatus status)
    {
        var h = status.Health;
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Score {h.Score:0.000}   predicted in {h.ForecastHorizonSeconds:0.#} s: {h.Predicted:0.000}   trend {h.TrendPerSecond:+0.000;-0.000;0.000}/s");
        text.Append(h.Draining ? "   DRAINING" : "");
        text.Append(h.Drill is { } d ? $"   DRILL {d.Kind} {d.ElapsedSeconds:0}/{d.Seconds:0} s" : "");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Sustained {h.Sustained:0.000} (what the zones follow: a breach counts once it persists)   service {h.ServiceScore:0.000}   machine {h.SystemScore:0.000}, counted at {h.Strain * 100:0} % (the service's strain)");
        foreach (var z in h.Zones)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"Zone [{z.Class}] {z.Zone}   new clients {(z.AdmitsNew ? "admitted" : "refused")}, returning {(z.AdmitsReturning ? "admitted" : "refused")}   (failover {z.Thresholds.Failover:0.00}, connect new {z.Thresholds.ConnectNew:0.00}, returning {z.Thresholds.ConnectReturning:0.00})");
        }
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"{"probe",-18} {"kind",-10} {"headroom",8} {"value",12}  detail");
        foreach (var p in h.Probes)
        {
            var state = p.Kind is ProbeKind.Mandatory or ProbeKind.Dependent ? (p.Healthy ? "up " : "DOWN ") : "";
            text.AppendLine(CultureInfo.InvariantCulture, $"{p.Name,-18} {p.Kind,-10} {p.Headroom,8:0.000} {p.Raw,12:0.###}  {state}{p.Unit}{(p.Detail is null ? "" : " - " + p.Detail)}");
        }
        if (h.RecentChanges.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("Zone changes (newest last):");
            foreach (var c in h.RecentChanges.TakeLast(10))
            {
                var lead = c.LeadTime is { } l ? string.Create(CultureInfo.InvariantCulture, $", lead time {l.TotalSeconds:0.0} s")
                    : c.Cause == ZoneCause.Forecast ? ", lead time pending" : "";
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"  {c.At:HH:mm:ss.f} [{c.Class}] {c.From} -> {c.To} by {c.Cause} (score {c.Score:0.000}, predicted {c.Predicted:0.000}){lead}");
            }
        }
        if (h.RecentAlerts.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("Alerts (newest last):");
            foreach (var a in h.RecentAlerts.TakeLast(10))
                text.AppendLine(CultureInfo.InvariantCulture, $"  {a.At:HH:mm:ss} {a.Severity} {a.Source}: {a.Message}");
        }
        var c2 = status.Counters;
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Requests {c2.Received}: accepts {c2.AccessAccepts}, rejects {c2.AccessRejects}, accounting {c2.AccountingResponses} (committed {c2.AccountingCommitted}, failed batches {c2.AccountingFailures}), duplicates {c2.DuplicatesAnswered}, dropped {c2.Dropped}");
        if (c2.DropsByReason is { Count: > 0 } reasons)
            text.AppendLine("Dropped by reason: " + string.Join(", ", reasons.Select(r => $"{r.Key} {r.Value}")));
        if (status.Tacacs is { } t)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"TACACS+ {t.Received} packets on {t.Connections} connections ({t.OpenConnections} open): authentication {t.AuthenticationPasses} passed, {t.AuthenticationFailures} failed; authorization {t.AuthorizationPasses} passed, {t.AuthorizationFailures} failed; accounting {t.AccountingSuccesses}; errors {t.Errors}");
            if (t.DropsByReason.Count > 0)
                text.AppendLine("TACACS+ dropped by reason: " + string.Join(", ", t.DropsByReason.Select(r => $"{r.Key} {r.Value}")));
        }
        text.AppendLine("Listening: " + string.Join(", ", status.Listeners));
        if (status.Relay is { } relay)
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"Relay: spool {relay.SpoolDepth} waiting, {relay.Replayed} replayed; moves {relay.Moves}; timeouts {relay.Timeouts}; advisories rejected {relay.AdvisoriesRejected}");
            foreach (var u in relay.Upstreams)
            {
                var state = u.Deferred ? "DEFERRED" : u.Dead ? "DEAD" : "up";
                text.AppendLine(CultureInfo.InvariantCulture, $"  upstream {u.Server} priority {u.Priority}: {state}{(u.Alternates.Count > 0 ? " (alternates " + string.Join(", ", u.Alternates) + ")" : "")}");
            }
        }
        if (status.Advisory is { } adv)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"Clients {adv.ActiveClients} seen, {adv.DeferredClients} deferred; advisories: failover {adv.Failovers}, invite {adv.Invites}, refuse {adv.Refusals}, reminder {adv.Reminders}, acked {adv.Acks}, resent {adv.Retransmissions}, given up {adv.GivenUp}, rejected {adv.Rejected}");
            text.AppendLine("Alternates: " + (adv.Alternates.Count == 0 ? "none healthy" : string.Join(", ", adv.Alternates)));
        }
        return text.ToString();
    }
}
