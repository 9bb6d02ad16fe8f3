using System.Net.Http.Json;
using Forewarn.Core.Aaa;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Forewarn.Server.Health;

/// <summary>Ticks the monitor at the sampling rate (10 Hz by default).</summary>
public sealed class HealthLoop(HealthMonitor monitor, HealthOptions options, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1 / options.SampleHz), time);
        monitor.Tick();
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
                monitor.Tick();
        }
        catch (OperationCanceledException)
        {
            // stopping, or a start that failed elsewhere: not a failure of this loop
        }
    }
}

/// <summary>Runs the service checks (listeners, store, sinks) on their own cadence, each with a time limit.</summary>
public sealed class ServiceCheckLoop(IEnumerable<Core.Health.IProbe> probes, HealthOptions options, TimeProvider time) : BackgroundService
{
    private readonly ServiceProbe[] _services = [.. probes.OfType<ServiceProbe>()];

    /// <summary>One check after another (each bounded by its time limit), as their cost is then one thread's at a time.</summary>
    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var timeout = TimeSpan.FromSeconds(options.ServiceCheckTimeoutSeconds);
        foreach (var service in _services)
            await service.RunAsync(timeout, time, cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.ServiceCheckSeconds), time);
        try
        {
            do
            {
                await RunOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
            // stopping, or a start that failed elsewhere
        }
    }
}

/// <summary>POSTs each alert as JSON to <see cref="HealthOptions.AlertWebhook"/>.</summary>
public sealed class WebhookAlertSink(HealthOptions options, IHttpClientFactoryLite http) : IAlertSink
{
    public async Task SendAsync(Alert alert, CancellationToken cancellationToken)
    {
        using var response = await http.Client.PostAsJsonAsync(options.AlertWebhook, alert, AdminJson.Options, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
    }
}

/// <summary>One shared HttpClient for outbound calls (alert webhooks).</summary>
public interface IHttpClientFactoryLite
{
    HttpClient Client { get; }
}

internal sealed class SharedHttpClient : IHttpClientFactoryLite, IDisposable
{
    public HttpClient Client { get; } = new() { Timeout = TimeSpan.FromSeconds(5) };
    public void Dispose() => Client.Dispose();
}

internal sealed class HealthOptionsValidator : IValidateOptions<HealthOptions>
{
    public ValidateOptionsResult Validate(string? name, HealthOptions options)
    {
        var errors = options.Validate().ToList();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Builds the probe set from the server's parts.</summary>
internal static class ProbeSet
{
    public static IEnumerable<Core.Health.IProbe> Create(IServiceProvider sp, HealthOptions options, ForewarnOptions server, TimeProvider time)
    {
        T Get<T>() where T : notnull => (T)sp.GetService(typeof(T))!;
        yield return new WorkersProbe(Get<WorkerPool>());
        yield return new QueueProbe(Get<WorkerPool>(), options);
        yield return new LatencyProbe(Get<LatencyWindow>(), options, Get<Core.Health.WarmUp>());
        yield return new SlowWorkProbe(Get<Core.Aaa.SlowWork>(), Get<Core.Aaa.SlowWorkOptions>());
        yield return new DropsProbe(Get<ServerCounters>(), () => Get<RadiusServer>().Endpoints.Select(e => e.Endpoint), options, time);
        yield return new CpuProbe(options, time);
        yield return new MemoryProbe(options);
        yield return new NetworkProbe(options, time);
        yield return new ProcessesProbe(options);
        yield return new DrillProbe(Get<DrillState>());
        if (options.Interfaces.Count > 0)
            yield return new InterfacesProbe(options.Interfaces);
        int trip = options.ServiceFailuresToTrip;
        yield return new ServiceProbe("radius-listeners", ProbeKind.Mandatory, new RadiusListenerCheck(Get<RadiusServer>(), Get<SelfClient>()), trip);
        yield return new ServiceProbe("tacacs-listeners", ProbeKind.Mandatory, new TacacsListenerCheck(() => Get<Tacacs.TacacsServer>(), Get<SelfClient>()), trip);
        yield return new ServiceProbe("user-store", ProbeKind.Mandatory, new UserStoreCheck(Get<IUserStore>()), trip);
        yield return new ServiceProbe("accounting-sink", ProbeKind.Dependent,
            new AccountingSinkCheck(Get<IAccountingStore>(), Get<AccountingWriter>(), new DiskNeed(server.DataDirectory, options, Get<AlertHub>(), time)), trip);
        yield return new ServiceProbe("log-sink", ProbeKind.Dependent, new LogSinkCheck(), trip);
    }
}
