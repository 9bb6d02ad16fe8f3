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

    /// <summary>
    /// HTTPS without a certificate of your own: the server makes a self-signed one for the listen address
    /// into tls/admin.pem (its own, not from the EAP CA); browsers trust it once it is imported or pinned.
    /// </summary>
    public bool Https { get; set; }

    /// <summary>Whether the console is served over TLS.</summary>
    public bool UsesTls => CertificateFile is { Length: > 0 } || Https;
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
        if (!IPAddress.IsLoopback(endpoint.Address) && !options.UsesTls)
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail(
                $"the admin API and console may listen on {endpoint}, beyond loopback, only with TLS (Forewarn:Admin:Https=true for a certificate from the server's own CA, or Forewarn:Admin:CertificateFile).");
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
        var certificate = Certificate(endpoint.Address);
        if (!IPAddress.IsLoopback(endpoint.Address) && certificate is null)
            throw new StartupException($"the admin API and console may listen on {endpoint}, beyond loopback, only with TLS (Forewarn:Admin:Https=true, or Forewarn:Admin:CertificateFile).");
        builder.WebHost.ConfigureKestrel(k => k.Listen(endpoint, listen =>
        {
            // Nothing the console sends is larger than a user with its items: a request body of 1 MiB at most.
            k.Limits.MaxRequestBodySize = 1 << 20;
            if (certificate is not null)
                listen.UseHttps(certificate);
        }));
        // /metrics: the server's instruments (ServerMetrics) in Prometheus's text format, behind the same token.
        ForwardServices(builder.Services);
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals;
            json.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter());
        });
        builder.Services.AddOpenApi("v1", o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "Forewarn admin API";
            document.Info.Description = "The console's API: health, the authentication log, users, groups, clients, accounting, audit, drain, resume and drills. " +
                "Authenticate with the admin token (Authorization: Bearer; admin.token in the data directory) or a console session (cookie, plus X-CSRF-Token on changes).";
            return Task.CompletedTask;
        }));
        builder.Services.AddOpenTelemetry().ConfigureResource(r => r.AddService("forewarn")).WithMetrics(metrics => metrics.AddMeter(ServerMetrics.Prefix + ".*").AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        var app = builder.Build();
        var gate = new AdminConsole.ConsoleAccess(AdminAccess.Load(options, server.DataDirectory), app.Services.GetRequiredService<AdminConsole.ConsoleSessions>(),
            app.Services.GetRequiredService<AdminConsole.AdminAccounts>(), app.Services.GetRequiredService<AdminConsole.AuditLog>());
        IReadOnlyCollection<string>? hosts = null;
        app.Use((context, next) =>
        {
            hosts ??= AdminAccess.HostsFor(new IPEndPoint(endpoint.Address, context.Connection.LocalPort));
            return gate.InvokeAsync(context, next, hosts);
        });
        AdminConsole.ConsoleAssets.Map(app);
        app.MapOpenApi(AdminConsole.ConsoleApi.OpenApiPath);
        AdminConsole.ConsoleApi.Map(app, Status);
        // The first version's paths, which scripts may use: the same as /api/v1/status, drain, resume and drill.
        app.MapGet("/api/status", () => Results.Json(Status(), AdminJson.Options)).ExcludeFromDescription();
        _meter = ServerMetrics.Observe(Status, services.GetService<Core.Aaa.AuthLog>(), services.GetService<Core.Deferrals.ClientRegistry>(),
            services.GetService<Core.Clients.ClientDirectory>());
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
        foreach (var prefix in new[] { "/api", "/api/v1" })
            MapControls(app, prefix, AfterNextTickAsync, prefix == "/api");
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

    /// <summary>The main host's services the console's endpoints use, made resolvable in the admin app's own container.</summary>
    private void ForwardServices(IServiceCollection admin)
    {
        admin.AddSingleton(_ => services.GetRequiredService<Core.Store.IForewarnStore>());
        admin.AddSingleton(_ => monitor);
        admin.AddSingleton(_ => services.GetRequiredService<Core.Aaa.AuthLog>());
        admin.AddSingleton(_ => services.GetRequiredService<Core.Deferrals.ClientRegistry>());
        admin.AddSingleton(_ => services.GetRequiredService<TimeProvider>());
        admin.AddSingleton(_ => services.GetRequiredService<Protocol.Radius.Dictionary.RadiusDictionary>());
        admin.AddSingleton(_ => services.GetRequiredService<Core.Aaa.PasswordSealer>());
        admin.AddSingleton(_ => server);
        admin.AddSingleton(_ => new AdminConsole.AdminAccounts(server.DataDirectory));
        admin.AddSingleton(sp => new AdminConsole.ConsoleSessions(sp.GetRequiredService<TimeProvider>()));
        admin.AddSingleton(sp => new AdminConsole.LoginGuard(sp.GetRequiredService<TimeProvider>()));
        admin.AddSingleton(_ => new AdminConsole.AuditLog(server.DataDirectory, logger));
    }

    /// <summary>Drain, resume and drills; each answers with the state after the monitor has taken it into account.</summary>
    private void MapControls(WebApplication app, string prefix, Func<Action, CancellationToken, Task<IResult>> afterNextTick, bool legacy)
    {
        var drain = app.MapPost(prefix + "/drain", (Delegate)((HttpContext context) => afterNextTick(monitor.Drain, context.RequestAborted)));
        var resume = app.MapPost(prefix + "/resume", (Delegate)((HttpContext context) => afterNextTick(monitor.Resume, context.RequestAborted)));
        var start = app.MapPost(prefix + "/drill", async (string kind, double seconds, double? intensity, HttpContext context) =>
        {
            if (!options.Drills)
                return Results.Json(new { error = "drills are disabled: they degrade real work; set Forewarn:Admin:Drills=true to rehearse" }, statusCode: StatusCodes.Status403Forbidden);
            if (!Enum.TryParse<DrillKind>(kind.Replace("-", "", StringComparison.Ordinal), ignoreCase: true, out var drillKind))
                return Results.BadRequest(new { error = $"unknown drill '{kind}': score, level, slow-store, cpu-hog, fail-accounting, gc or loss" });
            if (seconds is <= 0 or > DrillState.MaxSeconds)
                return Results.BadRequest(new { error = $"seconds must be between 0 and {DrillState.MaxSeconds}" });
            LogDrill(logger, drillKind, seconds);
            context.Items[AdminConsole.ConsoleAccess.AuditTarget] = kind;
            return await afterNextTick(() => drills.Start(drillKind, seconds, intensity ?? 1), context.RequestAborted).ConfigureAwait(false);
        });
        var stop = app.MapDelete(prefix + "/drill", (Delegate)((HttpContext context) => afterNextTick(drills.Stop, context.RequestAborted)));
        if (legacy)
        {
            drain.ExcludeFromDescription();
            resume.ExcludeFromDescription();
            start.ExcludeFromDescription();
            stop.ExcludeFromDescription();
        }
        else
        {
            drain.WithSummary("Planned maintenance: defer every client gracefully");
            resume.WithSummary("End a drain: the zones follow the score again");
            start.WithSummary("Rehearse a degradation (kind: score, level, slow-store, cpu-hog, fail-accounting, gc, loss), refused unless Forewarn:Admin:Drills is true");
            stop.WithSummary("End the running drill");
        }
    }

    private System.Security.Cryptography.X509Certificates.X509Certificate2? Certificate(IPAddress listen)
    {
        if (options.CertificateFile is not { Length: > 0 } file)
        {
            if (!options.Https)
                return null;
            var (made, key) = AdminConsole.ConsoleCertificate.Ensure(server.DataDirectory, listen);
            return System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(made, key);
        }
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
