using System.Diagnostics.Metrics;
using Forewarn.Core.Health;

namespace Forewarn.Server.Health;

/// <summary>
/// What the server counts, as OpenTelemetry instruments that the admin API's <c>/metrics</c> serves in
/// Prometheus's text format (counters end in <c>_total</c>, durations are in seconds); requests, answers
/// and drops by protocol and reason are <see cref="ServerCounters"/>' own instruments. The request
/// latency histogram is recorded where each answer is sent (<see cref="RequestLatency"/>); everything
/// else is observed at scrape time from the counters the server keeps anyway, so a scrape costs nothing
/// between scrapes and the hot path pays one histogram update per answer. Labels are bounded: reasons,
/// codes, zones, probes and classes are enumerations or configuration, never a client address.
/// </summary>
public static class ServerMetrics
{
    /// <summary>The meters' names: every instrument of the server is in one of them.</summary>
    public const string Prefix = "Forewarn";

    private static readonly Meter Requests = new(Prefix + ".Requests");

    // Loopback answers take tens of microseconds; a store or PBKDF2 behind them, milliseconds; T is seconds.
    private static readonly Histogram<double> Latency = Requests.CreateHistogram("forewarn.request.duration", "s",
        "Time from a request's arrival to its answer, deliberate delays (PBKDF2) apart",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });

    private static readonly KeyValuePair<string, object?> Radius = new("protocol", "radius");
    private static readonly KeyValuePair<string, object?> Tacacs = new("protocol", "tacacs");

    /// <summary>One answer sent, <paramref name="elapsed"/> after its request arrived.</summary>
    public static void RequestLatency(TimeSpan elapsed, bool tacacs = false)
    {
        if (Latency.Enabled)
            Latency.Record(Math.Max(0, elapsed.TotalSeconds), tacacs ? Tacacs : Radius);
    }

    private static readonly System.Text.Json.JsonNamingPolicy SnakeCase = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    /// <summary>
    /// The observed instruments, on a meter of their own that lives as long as the admin API (disposed with
    /// it). <paramref name="status"/> is read once per scrape and shared by every instrument of it.
    /// </summary>
    public static Meter Observe(Func<ServerStatus> status, Core.Aaa.AuthLog? authentications = null, Core.Deferrals.ClientRegistry? registry = null,
        Core.Clients.ClientDirectory? clients = null)
    {
        var meter = new Meter(Prefix + ".Admin");
        ServerStatus? last = null;
        long readAt = 0;
        ServerStatus Now()
        {
            // Every instrument's callback runs in one collection (a few milliseconds): read the status once
            // for all of them. Not longer: a scrape right after another must see what happened between (a
            // CI run read the accounting records committed since the last scrape as 0 at 100 ms).
            long now = Environment.TickCount64;
            if (last is null || now - readAt > 20)
            {
                last = status();
                readAt = now;
            }
            return last;
        }

        meter.CreateObservableCounter("forewarn.accounting.committed", () => Now().Counters.AccountingCommitted, null, "Accounting records durably stored");
        meter.CreateObservableCounter("forewarn.accounting.failures", () => Now().Counters.AccountingFailures, null, "Accounting commits that failed (the request went unanswered)");

        meter.CreateObservableGauge("forewarn.health.score", () => Now().Health.Score, null, "The health score, 0 (exhausted) to 1 (idle)");
        meter.CreateObservableGauge("forewarn.health.predicted_score", () => Now().Health.Predicted, null, "The forecast score at the forecast horizon");
        meter.CreateObservableGauge("forewarn.health.probe_headroom", () =>
            Now().Health.Probes.Select(p => new Measurement<double>(p.Headroom, Tag("probe", p.Name), Tag("kind", SnakeCase.ConvertName(p.Kind.ToString())))),
            null, "Each probe's headroom, 0 to 1");
        meter.CreateObservableGauge("forewarn.health.zone", () =>
            Now().Health.Zones.SelectMany(z => Enum.GetValues<Zone>().Select(zone =>
                new Measurement<int>(z.Zone == zone ? 1 : 0, Tag("class", z.Class), Tag("zone", SnakeCase.ConvertName(zone.ToString()))))),
            null, "1 for each class's current zone, 0 for the others");
        meter.CreateObservableGauge("forewarn.health.threshold", () =>
            Now().Health.Zones.SelectMany(z => new[]
            {
                new Measurement<double>(z.Thresholds.Failover, Tag("class", z.Class), Tag("threshold", "failover")),
                new Measurement<double>(z.Thresholds.ConnectNew, Tag("class", z.Class), Tag("threshold", "connect_new")),
                new Measurement<double>(z.Thresholds.ConnectReturning, Tag("class", z.Class), Tag("threshold", "connect_returning")),
            }), null, "Each class's thresholds on the score");
        meter.CreateObservableGauge("forewarn.health.draining", () => Now().Health.Draining ? 1 : 0, null, "1 while the server is drained");

        meter.CreateObservableCounter("forewarn.advisory.sent", () => Now().Advisory is { } a
            ? new[]
            {
                new Measurement<long>(a.Failovers, Tag("type", "failover")),
                new Measurement<long>(a.Invites, Tag("type", "invite")),
                new Measurement<long>(a.Refusals, Tag("type", "refuse")),
                new Measurement<long>(a.Reminders, Tag("type", "reminder")),
                new Measurement<long>(a.Retransmissions, Tag("type", "retransmission")),
            }
            : [], null, "Advisories sent, by type");
        meter.CreateObservableCounter("forewarn.advisory.acknowledged", () => Now().Advisory is { } a ? [new Measurement<long>(a.Acks)] : Array.Empty<Measurement<long>>(),
            null, "Advisories the clients acknowledged");
        meter.CreateObservableCounter("forewarn.advisory.given_up", () => Now().Advisory is { } a ? [new Measurement<long>(a.GivenUp)] : Array.Empty<Measurement<long>>(),
            null, "Advisories given up after every retransmission went unacknowledged");
        meter.CreateObservableCounter("forewarn.advisory.rejected", () => Now().Advisory is { } a ? [new Measurement<long>(a.Rejected)] : Array.Empty<Measurement<long>>(),
            null, "Advisories received and rejected (forged, replayed or malformed)");
        meter.CreateObservableGauge("forewarn.advisory.clients", () => Now().Advisory is { } a
            ? new[] { new Measurement<int>(a.ActiveClients - a.DeferredClients, Tag("state", "served")), new Measurement<int>(a.DeferredClients, Tag("state", "deferred")) }
            : [], null, "Clients this server knows, served or deferred");

        if (authentications is not null)
        {
            meter.CreateObservableCounter("forewarn.authentications", () => authentications.Totals().Select(t => new Measurement<long>(t.Value,
                    Tag("protocol", t.Key.Protocol), Tag("result", t.Key.Result == Core.Aaa.AuthResult.Accept ? "accept" : "reject"), Tag("reason", t.Key.Reason))),
                null, "Authentications decided, by protocol, result and reason (a reject's reason, without its particulars)");
        }
        if (clients is not null)
        {
            // Per configured client (a block of NASes is one), counted on the client itself so that the
            // series only grows; the first MaxClientLabels by name are named, the rest summed as "(other)":
            // bounded whatever the fleet's size, and the same label for a client from scrape to scrape.
            meter.CreateObservableCounter("forewarn.client.requests", () => PerClient(clients),
                null, $"Requests received per configured client (the first {MaxClientLabels} by name; the rest as client=\"(other)\")");
        }
        if (registry is not null)
        {
            meter.CreateObservableGauge("forewarn.client.nases", () => NasesPerClient(registry, clients),
                null, "NAS addresses seen per configured client, by state (active, deferred, invited)");
        }
        meter.CreateObservableGauge("forewarn.tacacs.connections", () => Now().Tacacs is { } t ? [new Measurement<long>(t.OpenConnections)] : Array.Empty<Measurement<long>>(),
            null, "TACACS+ connections open");
        return meter;
    }

    /// <summary>The most client label values a per-client instrument shows.</summary>
    public const int MaxClientLabels = 100;

    private static HashSet<string> NamedClients(Core.Clients.ClientDirectory clients) =>
        clients.All.Select(c => c.Name).Order(StringComparer.Ordinal).Take(MaxClientLabels).ToHashSet(StringComparer.Ordinal);

    private static IEnumerable<Measurement<long>> PerClient(Core.Clients.ClientDirectory clients)
    {
        var named = clients.Count <= MaxClientLabels ? null : NamedClients(clients);
        return clients.All.GroupBy(c => named is null || named.Contains(c.Name) ? c.Name : "(other)", StringComparer.Ordinal)
            .Select(g => new Measurement<long>(g.Sum(c => c.Requests), Tag("client", g.Key)));
    }

    private static IEnumerable<Measurement<long>> NasesPerClient(Core.Deferrals.ClientRegistry registry, Core.Clients.ClientDirectory? clients)
    {
        var named = clients is null || clients.Count <= MaxClientLabels ? null : NamedClients(clients);
        return registry.All.GroupBy(n => (Client: named is null || named.Contains(n.Client.Name) ? n.Client.Name : "(other)", State: SnakeCase.ConvertName(n.State.ToString())))
            .Select(g => new Measurement<long>(g.Count(), Tag("client", g.Key.Client), Tag("state", g.Key.State)));
    }
}
