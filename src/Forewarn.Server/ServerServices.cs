using System.ComponentModel.DataAnnotations;
using Forewarn.Core.Aaa;
using Forewarn.Core.Clients;
using Forewarn.Core.Store;
using Forewarn.Core.Health;
using Forewarn.Protocol.Radius.Dictionary;
using Forewarn.Server.Alerts;
using Forewarn.Server.Health;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Forewarn.Server;

public static class ServerServices
{
    /// <summary>Everything <c>forewarn serve</c> runs: store, dictionaries, handlers, the UDP server, client reloading.</summary>
    public static IServiceCollection AddForewarnServer(this IServiceCollection services, IConfiguration configuration)
    {
        ConfigurationShape.Check(configuration, (ForewarnOptions.Section, typeof(ForewarnOptions)), ("Forewarn:Health", typeof(HealthOptions)),
            ("Forewarn:Admin", typeof(AdminOptions)), ("Forewarn:Advisory", typeof(Advisories.AdvisoryOptions)), (Tacacs.TacacsOptions.Section, typeof(Tacacs.TacacsOptions)),
            (Eap.EapOptions.Section, typeof(Eap.EapOptions)), ("Forewarn:SlowWork", typeof(SlowWorkOptions)));
        services.AddOptions<ForewarnOptions>().Bind(configuration.GetSection(ForewarnOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ForewarnOptions>, ForewarnOptionsValidator>();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ForewarnOptions>>().Value;
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Forewarn.Store");
            return StoreFactory.Open(options.DataDirectory, options.Postgres, options.FreeRadiusSchema, reason => LogMessages.FreeRadiusUnsupported(logger, reason));
        });
        services.AddSingleton<IRequestSpool>(sp => sp.GetRequiredService<IForewarnStore>());
        // The request path sees the stores through the drill decorators, so that rehearsals degrade real work.
        // Users are cached in memory (the cache watches the store's version); a slow-store drill slows the cache's misses and hits alike.
        services.AddSingleton(sp => new CachedUserStore(sp.GetRequiredService<IForewarnStore>(), sp.GetRequiredService<IForewarnStore>().UsersVersionAsync));
        services.AddSingleton<IUserStore>(sp => new DrillingUserStore(sp.GetRequiredService<CachedUserStore>(), sp.GetRequiredService<DrillState>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IClientStore>(sp => sp.GetRequiredService<IForewarnStore>());
        // A shared database's accounting is backed by a local spill, so that its outage costs no acknowledgement.
        services.AddKeyedSingleton("durable", (sp, _) =>
        {
            var options = sp.GetRequiredService<IOptions<ForewarnOptions>>().Value;
            var store = sp.GetRequiredService<IForewarnStore>();
            return string.IsNullOrWhiteSpace(options.Postgres) ? (IAccountingStore)store
                : new SpillingAccountingStore(store, options.DataDirectory, TimeSpan.FromMilliseconds(options.AccountingSpillAfterMs), sp.GetRequiredService<ILogger<SpillingAccountingStore>>(),
                    message => sp.GetService<AlertHub>()?.Raise(AlertSeverity.Critical, "accounting-spill", message));
        });
        services.AddSingleton<IAccountingStore>(sp => new DrillingAccountingStore(sp.GetRequiredKeyedService<IAccountingStore>("durable"), sp.GetRequiredService<DrillState>()));
        services.AddSingleton(sp => RadiusDictionary.LoadBuiltIn(sp.GetRequiredService<IOptions<ForewarnOptions>>().Value.Dictionaries));
        services.AddSingleton<PasswordHasher>();
        services.AddSingleton(sp => configuration.GetSection("Forewarn:SlowWork").Get<SlowWorkOptions>() ?? new SlowWorkOptions());
        services.AddSingleton<SlowWork>();
        services.AddSingleton(sp => PasswordSealer.FromKeyFile(Path.Combine(
            DataDirectory.Ensure(sp.GetRequiredService<IOptions<ForewarnOptions>>().Value.DataDirectory), DataDirectory.KeyFile)));
        services.AddSingleton<ReplyCompiler>();
        services.AddSingleton<ClientDirectory>();
        services.AddSingleton<Core.Deferrals.ClientRegistry>();
        services.AddSingleton(sp => new DuplicateCache(sp.GetRequiredService<TimeProvider>(),
            TimeSpan.FromSeconds(sp.GetRequiredService<IOptions<ForewarnOptions>>().Value.DuplicateWindowSeconds)));
        services.AddSingleton<ServerCounters>();
        services.AddSingleton<CredentialVerifier>();
        services.AddSingleton(sp => new AuthLog(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<AccessHandler>();
        services.AddSingleton<AccountingWriter>();
        services.AddSingleton<AccountingHandler>();
        services.AddSingleton<IRadiusHandler, AaaHandler>();
        services.AddSingleton<DropLog>();
        services.AddSingleton<RequestPipeline>();
        // The client loader runs first so that the directory is filled before the sockets open.
        services.AddSingleton<ClientLoader>();
        services.AddHostedService(sp => sp.GetRequiredService<ClientLoader>());
        services.AddSingleton<WorkerPool>();
        services.AddSingleton<RadiusServer>();
        services.AddHostedService(sp => sp.GetRequiredService<RadiusServer>());
        services.AddForewarnTacacs(configuration);
        services.AddForewarnEap(configuration);
        services.AddForewarnHealth(configuration);
        return services;
    }

    /// <summary>EAP inside RADIUS: the conversation store and the methods, with the server's TLS identity (made on first start when none is configured).</summary>
    private static IServiceCollection AddForewarnEap(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(Eap.EapOptions.Section).Get<Eap.EapOptions>() ?? new Eap.EapOptions();
        services.AddOptions<Eap.EapOptions>().Bind(configuration.GetSection(Eap.EapOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        if (!options.Enabled)
            return services;
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<Eap.EapOptions>>().Value.Build(
            DataDirectory.Ensure(sp.GetRequiredService<IOptions<ForewarnOptions>>().Value.DataDirectory),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Forewarn.Server.Eap")));
        services.AddSingleton(sp =>
        {
            var eap = sp.GetRequiredService<IOptions<Eap.EapOptions>>().Value;
            return new Core.Aaa.Eap.EapConversations(sp.GetRequiredService<TimeProvider>(), eap.MaxConversations, eap.MaxConversationsPerClient, TimeSpan.FromSeconds(eap.IdleSeconds));
        });
        services.AddSingleton<Core.Aaa.Eap.EapService>();
        return services;
    }

    /// <summary>TACACS+ beside RADIUS: the same worker pool, client directory, registry, credential check and accounting writer.</summary>
    private static IServiceCollection AddForewarnTacacs(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<Tacacs.TacacsOptions>().Bind(configuration.GetSection(Tacacs.TacacsOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<Tacacs.TacacsOptions>>().Value);
        services.AddSingleton(sp => new Core.Aaa.Tacacs.CommandSets(sp.GetRequiredService<IForewarnStore>(), sp.GetRequiredService<SlowWork>()));
        services.AddSingleton<Core.Aaa.Tacacs.TacacsAuthenticator>();
        services.AddSingleton<Core.Aaa.Tacacs.TacacsAuthorizer>();
        services.AddSingleton<Core.Aaa.Tacacs.TacacsAccountant>();
        services.AddSingleton<Tacacs.ITacacsHandler, Tacacs.AaaTacacsHandler>();
        services.AddSingleton(sp => new Tacacs.TacacsConnection.Services(
            sp.GetRequiredService<WorkerPool>(), sp.GetRequiredService<ServerCounters>().Tacacs,
            sp.GetRequiredService<Tacacs.ITacacsHandler>(), sp.GetRequiredService<Core.Deferrals.ClientRegistry>(),
            sp.GetRequiredService<LatencyWindow>(), sp.GetRequiredService<Tacacs.TacacsOptions>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<Tacacs.TacacsConnection>>()));
        services.AddSingleton<Tacacs.TacacsServer>();
        services.AddHostedService(sp => sp.GetRequiredService<Tacacs.TacacsServer>());
        return services;
    }

    /// <summary>The health monitor: probes, score, forecast, zones, alerts, drills, and the admin API.</summary>
    private static IServiceCollection AddForewarnHealth(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<HealthOptions>().Bind(configuration.GetSection("Forewarn:Health")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<HealthOptions>, HealthOptionsValidator>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<HealthOptions>>().Value);
        services.AddOptions<AdminOptions>().Bind(configuration.GetSection("Forewarn:Admin"));
        services.AddSingleton<IValidateOptions<AdminOptions>, AdminOptionsValidator>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<AdminOptions>>().Value);
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<ForewarnOptions>>().Value);
        services.AddSingleton<DrillState>();
        services.AddSingleton<DrillController>();
        services.AddSingleton<SelfClient>();
        services.AddSingleton(sp => new LatencyWindow(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<HealthOptions>().LatencyWindowSeconds));
        services.AddSingleton(sp => new WarmUp(sp.GetRequiredService<HealthOptions>(), sp.GetRequiredService<TimeProvider>(),
            () => sp.GetRequiredService<LatencyWindow>().Percentiles().Count));
        services.AddSingleton<SharedHttpClient>();
        services.AddSingleton<IHttpClientFactoryLite>(sp => sp.GetRequiredService<SharedHttpClient>());
        services.AddOptions<AlertOptions>().Bind(configuration.GetSection(AlertOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AlertOptions>, AlertOptionsValidator>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<AlertOptions>>().Value);
        services.AddSingleton(sp => new SyslogAlertSink(sp.GetRequiredService<AlertOptions>().Syslog));
        services.AddSingleton(sp => new SmtpAlertSink(sp.GetRequiredService<AlertOptions>().Smtp, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<SmtpAlertSink>>()));
        services.AddSingleton<IEnumerable<IAlertSink>>(sp => [.. AlertSinks(sp)]);
        services.AddSingleton<AlertHub>();
        services.AddSingleton(sp => new HealthMonitor(
            ProbeSet.Create(sp, sp.GetRequiredService<HealthOptions>(), sp.GetRequiredService<ForewarnOptions>(), sp.GetRequiredService<TimeProvider>()).ToList(),
            sp.GetRequiredService<HealthOptions>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<AlertHub>(),
            sp.GetRequiredService<DrillState>(), sp.GetRequiredService<ILogger<HealthMonitor>>(), sp.GetRequiredService<WarmUp>()));
        services.AddSingleton(sp => new ServiceCheckLoop(sp.GetRequiredService<HealthMonitor>().Probes, sp.GetRequiredService<HealthOptions>(), sp.GetRequiredService<TimeProvider>()));
        services.AddHostedService(sp => sp.GetRequiredService<ServiceCheckLoop>());
        services.AddSingleton<HealthLoop>();
        services.AddHostedService(sp => sp.GetRequiredService<HealthLoop>());
        services.AddSingleton<AdminServer>();
        services.AddHostedService(sp => sp.GetRequiredService<AdminServer>());

        services.AddOptions<Advisories.AdvisoryOptions>().Bind(configuration.GetSection("Forewarn:Advisory")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<Advisories.AdvisoryOptions>, AdvisoryOptionsValidator>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<Advisories.AdvisoryOptions>>().Value);
        services.AddSingleton<Advisories.AdvisoryService>();
        services.AddHostedService(sp => sp.GetRequiredService<Advisories.AdvisoryService>());
        return services;
    }

    /// <summary>Every sink configured: the webhook, a syslog collector, mail.</summary>
    private static IEnumerable<IAlertSink> AlertSinks(IServiceProvider sp)
    {
        if (sp.GetRequiredService<HealthOptions>().AlertWebhook is not null)
            yield return new WebhookAlertSink(sp.GetRequiredService<HealthOptions>(), sp.GetRequiredService<IHttpClientFactoryLite>());
        var alerts = sp.GetRequiredService<AlertOptions>();
        if (alerts.Syslog.Enabled)
            yield return sp.GetRequiredService<SyslogAlertSink>();
        if (alerts.Smtp.Enabled)
            yield return sp.GetRequiredService<SmtpAlertSink>();
    }

    /// <summary>Default clients for a fresh data directory: localhost with FreeRADIUS's well-known secret, so radtest works at once.</summary>
    /// <summary>A data directory that never had a client gets the localhost ones (for radtest); true when it did now.</summary>
    public static async Task<bool> SeedDefaultsAsync(IClientStore store)
    {
        if (await store.ClientsVersionAsync().ConfigureAwait(false) != 0)
            return false;
        return await SeedLocalhostAsync(store).ConfigureAwait(false) > 0;
    }

    /// <summary>Adds the localhost clients whose name and address are still free; returns how many.</summary>
    public static async Task<int> SeedLocalhostAsync(IClientStore store)
    {
        int added = 0;
        foreach (var client in new[] { new ClientRecord("localhost", "127.0.0.1", "testing123"), new ClientRecord("localhost-ipv6", "::1", "testing123") })
        {
            if (await store.AddClientAsync(client).ConfigureAwait(false))
                added++;
        }
        return added;
    }
}

internal sealed class AdvisoryOptionsValidator : IValidateOptions<Advisories.AdvisoryOptions>
{
    public ValidateOptionsResult Validate(string? name, Advisories.AdvisoryOptions options)
    {
        var errors = options.Validate().ToList();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class ForewarnOptionsValidator : IValidateOptions<ForewarnOptions>
{
    public ValidateOptionsResult Validate(string? name, ForewarnOptions options)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        return results.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(results.Select(r => r.ErrorMessage ?? "invalid configuration"));
    }
}

/// <summary>
/// Loads the NAS directory at start, then reloads it when the store's client version changes (clients added
/// by the command line or another server while running); drops the user cache when users or groups changed;
/// sweeps the duplicate cache. It looks every second, and at once when the store announces a change.
/// </summary>
public sealed partial class ClientLoader(IForewarnStore store, ClientDirectory directory, DuplicateCache duplicates, CachedUserStore users, Core.Aaa.Tacacs.CommandSets commandSets, ILogger<ClientLoader> logger) : BackgroundService
{
    private long _version = -1;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await ReloadAsync(cancellationToken).ConfigureAwait(false);
        await users.RefreshAsync(cancellationToken).ConfigureAwait(false);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task ReloadAsync(CancellationToken cancellationToken)
    {
        long version = await store.ClientsVersionAsync(cancellationToken).ConfigureAwait(false);
        if (version == _version)
            return;
        var clients = await store.ListClientsAsync(cancellationToken).ConfigureAwait(false);
        directory.Replace(clients);
        _version = version;
        LogMessages.ClientsLoaded(logger, clients.Count);
        foreach (var client in clients)
        {
            if (client.Address.Contains('/', StringComparison.Ordinal) && !client.PerNasAdvisoryKeys)
                LogMessages.SharedAdvisoryKeys(logger, client.Name, client.Address);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await PollAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopping (or a start that failed): not a failure of this service
        }
    }

    private async Task PollAsync(CancellationToken stoppingToken)
    {
        bool failing = false;
        while (true)
        {
            try
            {
                await store.WaitForChangeAsync(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
                await ReloadAsync(stoppingToken).ConfigureAwait(false);
                if (await users.RefreshAsync(stoppingToken).ConfigureAwait(false))
                    commandSets.Invalidate();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Once per failure streak: a database that is down for minutes is one warning, not one a second.
                if (!failing)
                    LogReloadFailed(logger, e);
                failing = true;
                duplicates.Sweep();
                continue;
            }
            if (failing)
                LogReloadRecovered(logger);
            failing = false;
            duplicates.Sweep();
        }
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "Reloading clients failed; keeping the previous set (retried every second, logged again once it works)")]
    private static partial void LogReloadFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "Reloading clients works again")]
    private static partial void LogReloadRecovered(ILogger logger);
}
