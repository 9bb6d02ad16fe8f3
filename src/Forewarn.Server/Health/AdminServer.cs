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
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Forewarn.Server.Health;

/// <summary>The admin API's settings: section <c>Forewarn:Admin</c>.</summary>
public sealed class AdminOptions
{
    /// <summary>address:port for the admin API; loopback by default, port 0 picks a free one (written to admin.url in the data directory).</summary>
    public string Listen { get; set; } = "127.0.0.1:0";

    /// <summary>The bearer token every request must carry; when unset, one is generated into admin.token (0600) in the data directory.</summary>
    public string? Token { get; set; }

    /// <summary>Drills degrade real work (a real accounting outage, a CPU hog): refused unless enabled here.</summary>
    public bool Drills { get; set; }

    /// <summary>A certificate (PEM or PFX) for HTTPS: required, with a configured token, for an address beyond loopback.</summary>
    public string? CertificateFile { get; set; }

    /// <summary>The private key of a PEM <see cref="CertificateFile"/>, when it is a separate file.</summary>
    public string? CertificateKeyFile { get; set; }
}

/// <summary>Checks the admin settings before anything starts, so that a mistake is one clear line.</summary>
internal sealed class AdminOptionsValidator : Microsoft.Extensions.Options.IValidateOptions<AdminOptions>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, AdminOptions options)
    {
        if (!IPEndPoint.TryParse(options.Listen, out var endpoint))
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Forewarn:Admin:Listen '{options.Listen}' is not address:port.");
        if (options.CertificateFile is { Length: > 0 } file && !File.Exists(file))
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Forewarn:Admin:CertificateFile '{file}' does not exist.");
        if (!IPAddress.IsLoopback(endpoint.Address) && (options.CertificateFile is not { Length: > 0 } || options.Token is not { Length: > 0 }))
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail(
                $"the admin API may listen on {endpoint}, beyond loopback, only with TLS (Forewarn:Admin:CertificateFile) and a configured token (Forewarn:Admin:Token).");
        return Microsoft.Extensions.Options.ValidateOptionsResult.Success;
    }
}

/// <summary>What GET /api/status returns.</summary>
public sealed record ServerStatus(HealthSnapshot Health, CounterSnapshot Counters, IReadOnlyList<string> Listeners, AdvisorySnapshot? Advisory = null, RelayStatus? Relay = null,
    TacacsSnapshot? Tacacs = null);

/// <summary>The TACACS+ listener's counters, for `forewarn status`.</summary>
public sealed record TacacsSnapshot(long Connections, long OpenConnections, long Received, long AuthenticationPasses, long AuthenticationFailures,
    long AuthorizationPasses, long AuthorizationFailures, long AccountingSuccesses, long Errors, IReadOnlyDictionary<string, long> DropsByReason);

/// <summary>What `forewarn relay status` shows: each upstream server's state, moves, and the accounting spool.</summary>
public sealed record RelayStatus(IReadOnlyList<UpstreamState> Upstreams, long SpoolDepth, long Spooled, long Replayed, long Moves, long AdvisoriesRejected, long Timeouts);

public sealed record UpstreamState(string Server, int Priority, bool Deferred, bool Dead, IReadOnlyList<string> Alternates, bool Suspected = false, double? DeadlineMs = null);

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
    private System.Diagnostics.Metrics.Meter? _meter;

    public string? Url { get; private set; }

    public string UrlFile => Path.Combine(server.DataDirectory, "admin.url");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (!IPEndPoint.TryParse(options.Listen, out var endpoint))
            throw new StartupException($"Forewarn:Admin:Listen '{options.Listen}' is not address:port.");
        var certificate = Certificate();
        if (!IPAddress.IsLoopback(endpoint.Address) && (certificate is null || options.Token is not { Length: > 0 }))
            throw new StartupException($"the admin API may listen on {endpoint}, beyond loopback, only with TLS (Forewarn:Admin:CertificateFile) and a configured token (Forewarn:Admin:Token).");
        builder.WebHost.ConfigureKestrel(k => k.Listen(endpoint, listen =>
        {
            if (certificate is not null)
                listen.UseHttps(certificate);
        }));
        // /metrics: the server's instruments (ServerMetrics) in Prometheus's text format, behind the same token.
        builder.Services.AddOpenTelemetry().ConfigureResource(r => r.AddService("forewarn")).WithMetrics(metrics => metrics.AddMeter(ServerMetrics.Prefix + ".*").AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        var app = builder.Build();
        var access = AdminAccess.Load(options, server.DataDirectory);
        IReadOnlyCollection<string>? hosts = null;
        app.Use(async (context, next) =>
        {
            hosts ??= AdminAccess.HostsFor(new IPEndPoint(endpoint.Address, context.Connection.LocalPort));
            if (access.Check(context, hosts) is { } refused)
            {
                context.Response.StatusCode = refused.Status;
                await context.Response.WriteAsJsonAsync(new { error = refused.Message }, context.RequestAborted).ConfigureAwait(false);
                return;
            }
            await next(context).ConfigureAwait(false);
        });
        app.MapGet("/api/status", () => Results.Json(Status(), AdminJson.Options));
        _meter = ServerMetrics.Observe(Status);
        app.MapPrometheusScrapingEndpoint();
        // An action answers with the state after it: the monitor's next tick, which has taken it into account.
        async Task<IResult> AfterNextTickAsync(Action action, CancellationToken cancellationToken)
        {
            var before = monitor.Current.At;
            action();
            var deadline = DateTime.UtcNow.AddSeconds(2);
            while (monitor.Current.At <= before && DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested)
                await Task.Delay(20, CancellationToken.None).ConfigureAwait(false);
            return Results.Json(Status(), AdminJson.Options);
        }
        app.MapPost("/api/drain", (Delegate)((HttpContext context) => AfterNextTickAsync(monitor.Drain, context.RequestAborted)));
        app.MapPost("/api/resume", (Delegate)((HttpContext context) => AfterNextTickAsync(monitor.Resume, context.RequestAborted)));
        app.MapPost("/api/drill", async (string kind, double seconds, double? intensity, HttpContext context) =>
        {
            if (!options.Drills)
                return Results.Json(new { error = "drills are disabled: they degrade real work; set Forewarn:Admin:Drills=true to rehearse" }, statusCode: StatusCodes.Status403Forbidden);
            if (!Enum.TryParse<DrillKind>(kind.Replace("-", "", StringComparison.Ordinal), ignoreCase: true, out var drillKind))
                return Results.BadRequest(new { error = $"unknown drill '{kind}': score, slow-store, cpu-hog, fail-accounting, gc or loss" });
            if (seconds is <= 0 or > 3600)
                return Results.BadRequest(new { error = "seconds must be between 0 and 3600" });
            LogDrill(logger, drillKind, seconds);
            return await AfterNextTickAsync(() => drills.Start(drillKind, seconds, intensity ?? 1), context.RequestAborted).ConfigureAwait(false);
        });
        app.MapDelete("/api/drill", (Delegate)((HttpContext context) => AfterNextTickAsync(drills.Stop, context.RequestAborted)));
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new StartupException($"cannot open the admin API on tcp {endpoint}: {e.InnerException?.Message ?? e.Message} (Forewarn:Admin:Listen; port 0 picks a free one).");
        }
        _app = app;
        Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        await File.WriteAllTextAsync(UrlFile, Url + "\n", cancellationToken).ConfigureAwait(false);
        LogListening(logger, Url);
    }

    private System.Security.Cryptography.X509Certificates.X509Certificate2? Certificate()
    {
        if (options.CertificateFile is not { Length: > 0 } file)
            return null;
        if (!File.Exists(file))
            throw new StartupException($"Forewarn:Admin:CertificateFile '{file}' does not exist.");
        if (file.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".p12", StringComparison.OrdinalIgnoreCase))
            return System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(file, null);
        return System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(file, options.CertificateKeyFile);
    }

    public ServerStatus Status() => new(
        monitor.Current,
        new CounterSnapshot(counters.Received, counters.AccessAccepts, counters.AccessRejects, counters.AccountingResponses,
            counters.DuplicatesAnswered, counters.TotalDropped, accounting.Committed, accounting.Failures, counters.DropsByReason()),
        [.. radius.Endpoints.Select(e => $"{(e.Port == PortKind.Authentication ? "auth" : "acct")} {e.Endpoint}"),
            .. Tacacs()?.Endpoints.Select(e => $"{(e.Tls ? "tacacs-tls" : "tacacs")} {e.Endpoint}") ?? []],
        Advisory(),
        (services.GetService(typeof(IRelayStatusSource)) as IRelayStatusSource)?.Status(),
        Tacacs() is { Endpoints.Count: > 0 } ? TacacsCounters(counters.Tacacs) : null);

    // Resolved late, as the advisory service is: it starts after the admin API is built.
    private Tacacs.TacacsServer? Tacacs() => services.GetService(typeof(Tacacs.TacacsServer)) as Tacacs.TacacsServer;

    private static TacacsSnapshot TacacsCounters(Tacacs.TacacsCounters t) => new(t.Connections, t.OpenConnections, t.Received, t.AuthenticationPasses, t.AuthenticationFailures,
        t.AuthorizationPasses, t.AuthorizationFailures, t.AccountingSuccesses, t.Errors, t.DropsByReason());

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
        _meter?.Dispose();
        if (_app is not null)
            await _app.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Admin API listening on {Url}")]
    private static partial void LogListening(ILogger logger, string url);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "Drill started: {Kind} for {Seconds} s")]
    private static partial void LogDrill(ILogger logger, DrillKind kind, double seconds);
}
