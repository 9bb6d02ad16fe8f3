using System.Net;
using Forewarn.Core.Health;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Health;

/// <summary>The admin API's settings: section <c>Forewarn:Admin</c>.</summary>
public sealed class AdminOptions
{
    /// <summary>address:port for the admin API; loopback by default, port 0 picks a free one (written to admin.url in the data directory).</summary>
    public string Listen { get; set; } = "127.0.0.1:0";

    /// <summary>When set, every request must carry "Authorization: Bearer TOKEN".</summary>
    public string? Token { get; set; }
}

/// <summary>What GET /api/status returns.</summary>
public sealed record ServerStatus(HealthSnapshot Health, CounterSnapshot Counters, IReadOnlyList<string> Listeners, AdvisorySnapshot? Advisory = null, RelayStatus? Relay = null);

/// <summary>What `forewarn relay status` shows: each upstream server's state, moves, and the accounting spool.</summary>
public sealed record RelayStatus(IReadOnlyList<UpstreamState> Upstreams, long SpoolDepth, long Spooled, long Replayed, long Moves, long AdvisoriesRejected, long Timeouts);

public sealed record UpstreamState(string Server, int Priority, bool Deferred, bool Dead, IReadOnlyList<string> Alternates);

/// <summary>Implemented by the relay, so that the admin API can report it.</summary>
public interface IRelayStatusSource
{
    RelayStatus Status();
}

public sealed record AdvisorySnapshot(long Failovers, long Invites, long Refusals, long Reminders, long Acks, long Retransmissions, long GivenUp, long Rejected,
    int ActiveClients, int DeferredClients, IReadOnlyList<string> Alternates);

public sealed record CounterSnapshot(long Received, long AccessAccepts, long AccessRejects, long AccountingResponses, long DuplicatesAnswered, long Dropped, long AccountingCommitted, long AccountingFailures,
    IReadOnlyDictionary<string, long>? DropsByReason = null);

/// <summary>
/// A small local HTTP API on Kestrel for the command line (status, drain, resume, drill) and, later,
/// the admin page. It runs beside the RADIUS host, on loopback unless configured otherwise.
/// </summary>
public sealed partial class AdminServer(
    AdminOptions options,
    ForewarnOptions server,
    HealthMonitor monitor,
    DrillController drills,
    RadiusServer radius,
    ServerCounters counters,
    Core.Aaa.AccountingWriter accounting,
    IServiceProvider services,
    ILogger<AdminServer> logger) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    public string? Url { get; private set; }

    public string UrlFile => Path.Combine(server.DataDirectory, "admin.url");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var endpoint = IPEndPoint.Parse(options.Listen);
        builder.WebHost.ConfigureKestrel(k => k.Listen(endpoint));
        var app = builder.Build();
        if (options.Token is { Length: > 0 } token)
        {
            app.Use(async (context, next) =>
            {
                if (context.Request.Headers.Authorization != $"Bearer {token}")
                {
                    context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    return;
                }
                await next(context).ConfigureAwait(false);
            });
        }
        app.MapGet("/api/status", () => Results.Json(Status(), AdminJson.Options));
        app.MapPost("/api/drain", () =>
        {
            monitor.Drain();
            return Results.Json(Status(), AdminJson.Options);
        });
        app.MapPost("/api/resume", () =>
        {
            monitor.Resume();
            return Results.Json(Status(), AdminJson.Options);
        });
        app.MapPost("/api/drill", (string kind, double seconds, double? intensity) =>
        {
            if (!Enum.TryParse<DrillKind>(kind.Replace("-", "", StringComparison.Ordinal), ignoreCase: true, out var drillKind))
                return Results.BadRequest(new { error = $"unknown drill '{kind}': score, slow-store, cpu-hog, fail-accounting or gc" });
            if (seconds is <= 0 or > 3600)
                return Results.BadRequest(new { error = "seconds must be between 0 and 3600" });
            drills.Start(drillKind, seconds, intensity ?? 1);
            LogDrill(logger, drillKind, seconds);
            return Results.Json(Status(), AdminJson.Options);
        });
        app.MapDelete("/api/drill", () =>
        {
            drills.Stop();
            return Results.Json(Status(), AdminJson.Options);
        });
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;
        Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        await File.WriteAllTextAsync(UrlFile, Url + "\n", cancellationToken).ConfigureAwait(false);
        LogListening(logger, Url);
    }

    public ServerStatus Status() => new(
        monitor.Current,
        new CounterSnapshot(counters.Received, counters.AccessAccepts, counters.AccessRejects, counters.AccountingResponses,
            counters.DuplicatesAnswered, counters.TotalDropped, accounting.Committed, accounting.Failures, counters.DropsByReason()),
        [.. radius.Endpoints.Select(e => $"{(e.Port == PortKind.Authentication ? "auth" : "acct")} {e.Endpoint}")],
        Advisory(),
        (services.GetService(typeof(IRelayStatusSource)) as IRelayStatusSource)?.Status());

    private AdvisorySnapshot? Advisory()
    {
        // Resolved late: the advisory service depends on the RADIUS server having started.
        if (services.GetService(typeof(Advisories.AdvisoryService)) is not Advisories.AdvisoryService { Endpoint: not null } advisory
            || services.GetService(typeof(Core.Deferrals.ClientRegistry)) is not Core.Deferrals.ClientRegistry registry)
            return null;
        var c = advisory.Counters;
        var clients = registry.All.ToList();
        return new AdvisorySnapshot(c.Failovers, c.Invites, c.Refusals, c.Reminders, c.Acks, c.Retransmissions, c.GivenUp, c.Rejected,
            clients.Count, clients.Count(x => x.State == Core.Deferrals.ClientState.Deferred),
            [.. advisory.Alternates().Select(a => $"{a.Address}:{a.Port} (weight {a.Weight})")]);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
            await _app.StopAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            File.Delete(UrlFile);
        }
        catch (IOException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
            await _app.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Admin API listening on {Url}")]
    private static partial void LogListening(ILogger logger, string url);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "Drill started: {Kind} for {Seconds} s")]
    private static partial void LogDrill(ILogger logger, DrillKind kind, double seconds);
}
