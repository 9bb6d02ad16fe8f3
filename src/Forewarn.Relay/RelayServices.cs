using System.Net;
using Forewarn.Client;
using Forewarn.Server;
using Forewarn.Server.Health;
using Forewarn.Core.Store;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Forewarn.Relay;

public static class RelayServices
{
    /// <summary>
    /// Turns the server host into a relay: the same listeners, client directory, duplicate detection and
    /// BlastRADIUS checks downstream, with the forwarding handler in place of the AAA handlers.
    /// </summary>
    public static IServiceCollection AddForewarnRelay(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<RelayOptions>().Bind(configuration.GetSection("Forewarn:Relay")).ValidateOnStart();
        // The relay answers TACACS+ only when some upstream server serves it.
        services.PostConfigure<Server.Tacacs.TacacsOptions>(o => o.Enabled = o.Enabled && configuration.GetSection("Forewarn:Relay").Get<RelayOptions>()?.Upstream.Any(u => u.TacacsPort > 0) == true);
        services.AddSingleton<IValidateOptions<RelayOptions>, RelayOptionsValidator>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<RelayOptions>>().Value);
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<RelayOptions>();
            var server = sp.GetRequiredService<IOptions<ForewarnOptions>>().Value;
            return new ForewarnClient(new ClientOptions
            {
                LocalAddress = LocalAddress(options, server),
                AdvisoryPort = options.AdvisoryPort,
                Carrier = options.Carrier,
                Timeout = TimeSpan.FromSeconds(options.TimeoutSeconds),
                Retries = options.Retries,
                MaxTimeout = TimeSpan.FromSeconds(Math.Max(options.MaxTimeoutSeconds, options.TimeoutSeconds)),
                DeadTime = TimeSpan.FromSeconds(options.DeadTimeSeconds),
                StatusServerInterval = TimeSpan.FromSeconds(options.StatusServerSeconds),
            }, options.Upstream.Select(u => new PoolServer(IPAddress.Parse(u.Address), u.AuthPort, u.AcctPort, u.Secret, u.Priority, u.Weight, u.AdvisoryPort, u.AdvisoryKey)),
            sp.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<RelayOptions>();
            var upstream = sp.GetRequiredService<ForewarnClient>();
            // The pool's servers are the upstream entries, in order.
            var servers = options.Upstream.Select((u, i) => (u, i)).Where(x => x.u.TacacsPort > 0).Select(x => new Client.Tacacs.TacacsServer(
                upstream.Pool.Servers[x.i], new IPEndPoint(IPAddress.Parse(x.u.Address), x.u.TacacsPort), x.u.TacacsKey ?? x.u.Secret));
            // Upstream servers know the relay by its own address, as for RADIUS.
            return new Client.Tacacs.TacacsPool(upstream.Pool, [.. servers], connectionsPerServer: 2, timeout: TimeSpan.FromSeconds(options.TimeoutSeconds * Math.Max(1, options.Retries)),
                localAddress: LocalAddress(options, sp.GetRequiredService<IOptions<ForewarnOptions>>().Value));
        });
        services.AddSingleton<Server.Tacacs.ITacacsHandler, RelayTacacsHandler>();
        services.AddSingleton<RelayHandler>();
        services.AddSingleton<IRadiusHandler>(sp => sp.GetRequiredService<RelayHandler>());
        services.AddSingleton<SpoolReplayer>();
        services.AddHostedService(sp => sp.GetRequiredService<SpoolReplayer>());
        services.AddSingleton<IRelayStatusSource>(sp => sp.GetRequiredService<SpoolReplayer>());
        return services;
    }

    /// <summary>
    /// Where the relay speaks to its upstreams from: on a wildcard listen address the system's choice could be
    /// any address, and an upstream would see requests and advisories from an address its client entry does not name.
    /// </summary>
    private static IPAddress LocalAddress(RelayOptions options, ForewarnOptions server) =>
        options.UpstreamAddress(server.ListenAddresses)
        ?? throw new StartupException($"the relay listens on {server.ListenAddresses[0]}, every address of this host: set Forewarn:Relay:LocalAddress to the one address its upstream servers know it by (their client entry for the relay).");
}

internal sealed class RelayOptionsValidator : IValidateOptions<RelayOptions>
{
    public ValidateOptionsResult Validate(string? name, RelayOptions options)
    {
        var errors = options.Validate().ToList();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Replays the accounting spool, oldest first, one at a time, stopping at the first failure; reports the relay's state.</summary>
public sealed partial class SpoolReplayer(ForewarnClient upstream, IRequestSpool store, RelayHandler handler, RelayOptions options, TimeProvider time,
    Core.Health.AlertHub alerts, ILogger<SpoolReplayer> logger)
    : BackgroundService, IRelayStatusSource
{
    private long _replayed;
    private long _moves;
    // A forged or replayed advisory is an attack or a misconfiguration: said, but at most once per reason per 10 s.
    private readonly Core.Logging.LogLimiter _rejections = new(time, TimeSpan.FromSeconds(10));

    public long Replayed => Interlocked.Read(ref _replayed);

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        upstream.MovedAway += (_, _) => Interlocked.Increment(ref _moves);
        upstream.AdvisoryRejected += (source, error) =>
        {
            if (_rejections.ShouldLog(error.ToString(), out long others))
                alerts.Raise(Core.Health.AlertSeverity.Warning, "advisory",
                    $"dropped an advisory from {source}: {error} ({others} more for this reason in the 10 s before; {upstream.Counters.Rejected} dropped in all)");
        };
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.SpoolRetrySeconds), time);
        while (await NextTickAsync(timer, stoppingToken).ConfigureAwait(false))
        {
            try
            {
                foreach (var spooled in store.PeekSpool(100))
                {
                    if (!await ReplayAsync(spooled, stoppingToken).ConfigureAwait(false))
                        break;
                }
            }
            catch (Microsoft.Data.Sqlite.SqliteException e)
            {
                // A locked or failing database: the spool stays as it is and the next tick tries again.
                // Stopping here would stop the host, and with it every device's authentication.
                LogSpoolFailed(logger, e.Message);
            }
        }
    }

    private static async Task<bool> NextTickAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false; // stopping
        }
    }

    /// <summary>Sends one spooled request with Acct-Delay-Time raised by the time it waited (RFC 2866 §5.2); true once acknowledged.</summary>
    private async Task<bool> ReplayAsync(SpooledRequest spooled, CancellationToken cancellationToken)
    {
        var request = new RadiusRequest(Protocol.Radius.RadiusCode.AccountingRequest);
        uint delay = (uint)Math.Max(0, (time.GetUtcNow() - spooled.SpooledAt).TotalSeconds);
        foreach (var attribute in new Protocol.Radius.AttributeEnumerator(spooled.Attributes))
        {
            if (attribute.Type == Protocol.Radius.AttributeTypes.AcctDelayTime && attribute.Value.Length == 4)
                delay += System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(attribute.Value);
            else if (attribute.Type != Protocol.Radius.AttributeTypes.MessageAuthenticator)
                request.Add(attribute.Type, attribute.Value.ToArray());
        }
        request.Add(Protocol.Radius.AttributeTypes.AcctDelayTime, delay);
        try
        {
            await upstream.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return false;
        }
        store.Unspool(spooled.Id);
        Interlocked.Increment(ref _replayed);
        LogReplayed(logger, spooled.Id, spooled.Client);
        return true;
    }

    public RelayStatus Status()
    {
        var now = time.GetUtcNow();
        return new RelayStatus(
            [.. upstream.Pool.Servers.Select(s => new UpstreamState(s.ToString(), s.Priority, s.Deferred, s.DeadUntil > now,
                [.. s.Alternates.Select(a => $"{a.Address}:{a.Port}")], s.Suspected, Math.Round(s.RoundTrip.Deadline.TotalMilliseconds, 1)))],
            store.SpoolDepth(), handler.Spooled, Replayed, Interlocked.Read(ref _moves), upstream.Counters.Rejected, upstream.Counters.Timeouts);
    }

    [LoggerMessage(EventId = 711, Level = LogLevel.Error, Message = "Spool replay failed, retrying at the next tick: {Error}")]
    private static partial void LogSpoolFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 710, Level = LogLevel.Information, Message = "Replayed spooled accounting #{Id} from {Client}")]
    private static partial void LogReplayed(ILogger logger, long id, string client);
}
