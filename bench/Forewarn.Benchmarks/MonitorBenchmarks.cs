using BenchmarkDotNet.Attributes;
using Forewarn.Core.Health;
using Forewarn.Server.Health;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forewarn.Benchmarks;

/// <summary>
/// The cost of one monitor tick with the real system probes (reading /proc) and the server-side probes
/// over a latency window holding ten seconds of traffic. At 10 Hz, one tick of T µs costs T/1000 % of a core.
/// </summary>
[MemoryDiagnoser]
public class MonitorBenchmarks : IDisposable
{
    private HealthMonitor _monitor = null!;
    private HealthMonitor _systemOnly = null!;

    [GlobalSetup]
    public void Setup()
    {
        var time = TimeProvider.System;
        var options = new HealthOptions();
        var latency = new LatencyWindow(time);
        var random = new Random(1);
        for (int i = 0; i < 100_000; i++)
            latency.Record(TimeSpan.FromMilliseconds(random.NextDouble() * 5));
        var counters = new Forewarn.Server.ServerCounters();
        var alerts = new AlertHub([], time, NullLogger<AlertHub>.Instance);
        var drill = new DrillState(time);
        IProbe[] system = [new CpuProbe(options, time), new MemoryProbe(options), new NetworkProbe(options, time), new InterfacesProbe(["lo"]), new ProcessesProbe(options)];
        IProbe[] all = [.. system, new LatencyProbe(latency, options, new WarmUp(options, time)), new DropsProbe(counters, () => [new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1812)], options, time), new DrillProbe(drill)];
        _monitor = new HealthMonitor(all, options, time, alerts, drill, NullLogger<HealthMonitor>.Instance);
        _systemOnly = new HealthMonitor(system, options, time, alerts, drill, NullLogger<HealthMonitor>.Instance);
    }

    public void Dispose()
    {
        _monitor.Dispose();
        _systemOnly.Dispose();
        GC.SuppressFinalize(this);
    }

    [Benchmark(Baseline = true)]
    public HealthSnapshot TickSystemProbes() => _systemOnly.Tick();

    [Benchmark]
    public HealthSnapshot TickAllProbes() => _monitor.Tick();
}
