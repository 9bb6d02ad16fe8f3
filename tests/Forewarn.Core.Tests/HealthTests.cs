using Forewarn.Core.Health;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Forewarn.Core.Tests;

/// <summary>A probe whose reading the test sets.</summary>
internal sealed class ScriptedProbe(string name, ProbeKind kind) : IProbe
{
    public string Name { get; } = name;
    public ProbeKind Kind { get; } = kind;
    public double Headroom { get; set; } = 1;
    public bool Healthy { get; set; } = true;
    public ProbeSample Sample() => new(Name, Kind, Headroom, Headroom, "", Healthy, Healthy ? null : "scripted failure");
}

/// <summary>The monitor under a fake clock with scripted probes: no sleeps, every step explicit.</summary>
public class HealthTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 0, 0, 0, TimeSpan.Zero));
    private readonly ScriptedProbe _load = new("load", ProbeKind.Server);
    private readonly ScriptedProbe _store = new("user-store", ProbeKind.Mandatory);
    private readonly ScriptedProbe _log = new("log-sink", ProbeKind.Dependent);
    private readonly AlertHub _alerts;

    public HealthTests() => _alerts = new AlertHub([], _time, NullLogger<AlertHub>.Instance);

    private HealthMonitor Monitor(Thresholds thresholds, double forecastHorizon = 0, double dwell = 1, double hysteresis = 0.05) =>
        new([_load, _store, _log], new HealthOptions
        {
            WarmupSeconds = 0,
            Thresholds = thresholds,
            ForecastHorizonSeconds = forecastHorizon,
            MinimumDwellSeconds = dwell,
            Hysteresis = hysteresis,
        }, _time, _alerts, new DrillState(_time), NullLogger<HealthMonitor>.Instance);

    /// <summary>Holds the load at <paramref name="headroom"/> for <paramref name="seconds"/> at 10 Hz; returns the zone at the end.</summary>
    private static Zone Hold(HealthMonitor monitor, FakeTimeProvider time, ScriptedProbe probe, double headroom, double seconds)
    {
        probe.Headroom = headroom;
        HealthSnapshot snapshot = monitor.Tick();
        for (int i = 0; i < seconds * 10; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            snapshot = monitor.Tick();
        }
        return snapshot.Zone;
    }

    private Zone Hold(HealthMonitor monitor, double headroom, double seconds = 2) => Hold(monitor, _time, _load, headroom, seconds);

    [Fact]
    public void ConnectionAboveFailover_AcceptHoldDefer()
    {
        var m = Monitor(new Thresholds { Failover = 0.3, ConnectNew = 0.6, ConnectReturning = 0.6 });
        Assert.Equal(Zone.Accept, Hold(m, 0.9));
        Assert.Equal(Zone.Hold, Hold(m, 0.45));
        var hold = m.Current.Zones[0];
        Assert.False(hold.AdmitsNew); // in Hold no client may connect ...
        Assert.Equal(Zone.Defer, Hold(m, 0.1)); // ... and below failover they are deferred
        Assert.Equal(Zone.Hold, Hold(m, 0.4));
        Assert.Equal(Zone.Accept, Hold(m, 0.9));
    }

    [Fact]
    public void EqualThresholds_TwoZones()
    {
        var m = Monitor(new Thresholds { Failover = 0.4, ConnectNew = 0.4, ConnectReturning = 0.4 });
        Assert.Equal(Zone.Accept, Hold(m, 0.41));
        Assert.Equal(Zone.Defer, Hold(m, 0.39));
        Assert.Equal(Zone.Defer, Hold(m, 0.42)); // hysteresis: 0.4 + 0.05 must be cleared
        Assert.Equal(Zone.Accept, Hold(m, 0.46));
        Assert.DoesNotContain(m.Current.RecentChanges, c => c.To == Zone.Hold || c.To == Zone.AdmitThenDefer);
    }

    [Fact]
    public void ConnectionBelowFailover_CentreZoneAdmitsThenDefers()
    {
        var m = Monitor(new Thresholds { Failover = 0.5, ConnectNew = 0.3, ConnectReturning = 0.35 });
        Assert.Equal(Zone.AdmitThenDefer, Hold(m, 0.4));
        var centre = m.Current.Zones[0];
        Assert.True(centre.AdmitsNew);
        Assert.True(centre.AdmitsReturning);
        Assert.Equal(Zone.Defer, Hold(m, 0.2));
        Assert.False(m.Current.Zones[0].AdmitsNew);
    }

    [Fact]
    public void Hysteresis_AndDwell_KeepTheZoneFromFlapping()
    {
        var m = Monitor(new Thresholds { Failover = 0.3, ConnectNew = 0.3, ConnectReturning = 0.3 }, dwell: 5);
        Assert.Equal(Zone.Defer, Hold(m, 0.2, seconds: 0.1));
        // Back above the boundary at once: the dwell time holds the zone.
        Assert.Equal(Zone.Defer, Hold(m, 0.9, seconds: 3));
        Assert.Equal(Zone.Accept, Hold(m, 0.9, seconds: 3));
        // Noise across the boundary within the margin moves nothing back.
        Assert.Equal(Zone.Defer, Hold(m, 0.29, seconds: 6));
        for (int i = 0; i < 100; i++)
        {
            _load.Headroom = i % 2 == 0 ? 0.29 : 0.33;
            m.Tick();
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }
        Assert.Equal(Zone.Defer, m.Current.Zone);
        Assert.Equal(3, m.Current.RecentChanges.Count);
    }

    [Fact]
    public void Dwell_HoldsRecoveries_NotABreachRightAfterOne()
    {
        var m = Monitor(new Thresholds { Failover = 0.3, ConnectNew = 0.3, ConnectReturning = 0.3 }, dwell: 3);
        Assert.Equal(Zone.Defer, Hold(m, 0.1, seconds: 4));
        Assert.Equal(Zone.Accept, Hold(m, 1.0, seconds: 1)); // a lull in the load: recovered after the dwell
        // Swamped again 0.5 s later: the breach persists (3 of 5 samples) and the zone moves at once,
        // without waiting for the dwell time of the Accept it had just entered.
        Assert.Equal(Zone.Defer, Hold(m, 0.05, seconds: 0.5));
        Assert.Equal(3, m.Current.RecentChanges.Count);
    }

    [Fact]
    public void Dwell_ABreachMovesOnlyAsFarAsTheScore_NotTheForecast()
    {
        var options = new HealthOptions { MinimumDwellSeconds = 3, ImprovementSamples = 5 };
        var zone = new ZoneMachine("default", new Thresholds { Failover = 0.25, ConnectNew = 0.45, ConnectReturning = 0.5 }, options, _time);
        Assert.Equal(Zone.Defer, zone.Update(0.1, 0.1, null)!.To);
        _time.Advance(TimeSpan.FromSeconds(4));
        ZoneChange? back = null;
        for (int i = 0; i < 5; i++)
            back ??= zone.Update(0.9, 0.9, null);
        Assert.Equal(Zone.Accept, back!.To);
        _time.Advance(TimeSpan.FromSeconds(0.5));
        // Within the dwell: the score breaches into Hold and the forecast says Defer; only the breach moves it.
        var change = zone.Update(0.35, 0, null);
        Assert.Equal((Zone.Hold, ZoneCause.Score), (change!.To, change.Cause));
        Assert.Null(zone.Update(0.35, 0, null));
    }

    [Fact]
    public void OneQuietSample_IsNotARecovery()
    {
        var m = Monitor(new Thresholds { Failover = 0.3, ConnectNew = 0.3, ConnectReturning = 0.3 }, dwell: 1);
        Assert.Equal(Zone.Defer, Hold(m, 0.1, seconds: 2));
        Assert.Equal(Zone.Defer, Hold(m, 1.0, seconds: 0.1)); // a lull: one or two samples at full headroom
        Assert.Equal(Zone.Defer, Hold(m, 0.1, seconds: 1));
        Assert.Equal(Zone.Accept, Hold(m, 1.0, seconds: 1)); // sustained: recovered
    }

    [Fact]
    public void SeparateThresholds_ForNewAndReturningClients()
    {
        var m = Monitor(new Thresholds { Failover = 0.2, ConnectNew = 0.4, ConnectReturning = 0.6 });
        Hold(m, 0.5);
        var zone = m.Current.Zones[0];
        Assert.True(zone.AdmitsNew);
        Assert.False(zone.AdmitsReturning);
        Hold(m, 0.7);
        Assert.True(m.Current.Zones[0].AdmitsReturning);
    }

    [Fact]
    public void ClassThresholds_GiveEachClassItsOwnZone()
    {
        var options = new HealthOptions
        {
            Thresholds = new Thresholds { Failover = 0.2, ConnectNew = 0.3, ConnectReturning = 0.3 },
            ClassThresholds = { ["gold"] = new Thresholds { Failover = 0.6, ConnectNew = 0.7, ConnectReturning = 0.7 } },
            WarmupSeconds = 0,
            ForecastHorizonSeconds = 0,
        };
        var m = new HealthMonitor([_load], options, _time, _alerts, new DrillState(_time), NullLogger<HealthMonitor>.Instance);
        Hold(m, _time, _load, 0.5, 2);
        Assert.Equal(Zone.Accept, m.ZoneOf("default").Current);
        Assert.Equal(Zone.Defer, m.ZoneOf("gold").Current);
        Assert.Equal(Zone.Accept, m.ZoneOf("no-such-class").Current);
    }

    [Fact]
    public void Forecast_MovesBeforeTheCrossing_OnARamp_AndRecordsTheLeadTime()
    {
        var m = Monitor(new Thresholds { Failover = 0.3, ConnectNew = 0.3, ConnectReturning = 0.3 }, forecastHorizon: 5);
        Hold(m, 0.9, 3);
        // A steady fall of 0.06 per second: the actual score crosses 0.3 after 10 s.
        DateTimeOffset? movedAt = null, crossedAt = null;
        for (int i = 0; i <= 150; i++)
        {
            _load.Headroom = Math.Max(0, 0.9 - 0.006 * i);
            var snapshot = m.Tick();
            if (movedAt is null && snapshot.Zone == Zone.Defer)
                movedAt = snapshot.At;
            // The zones follow the sustained score (a breach counts once it persists): that is the crossing the lead is measured to.
            if (crossedAt is null && snapshot.Sustained < 0.3)
                crossedAt = snapshot.At;
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }
        Assert.NotNull(movedAt);
        Assert.NotNull(crossedAt);
        var change = Assert.Single(m.Current.RecentChanges);
        Assert.Equal(ZoneCause.Forecast, change.Cause);
        Assert.True(crossedAt - movedAt >= TimeSpan.FromSeconds(2), $"lead {crossedAt - movedAt}");
        Assert.NotNull(change.LeadTime);
        Assert.InRange(change.LeadTime!.Value.TotalSeconds, (crossedAt - movedAt)!.Value.TotalSeconds - 0.11, (crossedAt - movedAt)!.Value.TotalSeconds + 0.11);
    }

    /// <summary>
    /// A ramp to just above the failover threshold: the score leaves Accept, the forecast moves on to
    /// Defer before the score crosses, the zone stays there while the score hovers just above it, and the
    /// forecast's lead time is measured to the crossing.
    /// </summary>
    [Fact]
    public void Forecast_DefersOnceTheScoreHasLeftAccept_AndTimesItsLead()
    {
        var m = Monitor(new Thresholds { Failover = 0.25, ConnectNew = 0.45, ConnectReturning = 0.5 }, forecastHorizon: 5);
        Hold(m, 0.9, 3);
        for (int i = 0; i < 100 && m.Current.Zone != Zone.Defer; i++)
        {
            _load.Headroom = Math.Max(0.30, 0.9 - 0.03 * i);
            m.Tick();
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }
        var first = Assert.Single(m.Current.RecentChanges, c => c.To == Zone.Defer);
        Assert.Equal(ZoneCause.Forecast, first.Cause);
        Assert.Equal(Zone.Hold, first.From);
        Assert.True(first.Score >= 0.25, $"{first}");
        // Above the failover threshold, but not by the hysteresis: the zone stays, and the lead stays open.
        Assert.Equal(Zone.Defer, Hold(m, 0.28, 3));
        Assert.Null(first.LeadTime);
        Hold(m, 0.1, 2);
        Assert.True(first.LeadTime is not null, string.Join("; ", m.Current.RecentChanges));
        Assert.True(first.LeadTime > TimeSpan.FromSeconds(3), $"lead {first.LeadTime}");
    }

    /// <summary>
    /// The forecast moves the zone one zone ahead of the actual score, never two: with the score in
    /// Accept, a predicted fall below the failover threshold shuts the door (the middle zone of the
    /// layout) and defers nobody; once the score has left Accept, the same forecast defers. Where the
    /// layout has no middle zone, one zone ahead is Defer.
    /// </summary>
    [Theory]
    [InlineData(0.25, 0.45, Zone.Hold)]
    [InlineData(0.30, 0.20, Zone.AdmitThenDefer)]
    [InlineData(0.30, 0.30, Zone.Defer)]
    public void Forecast_MovesOneZoneAheadOfTheScore_NeverTwo(double failover, double connect, Zone ahead)
    {
        var zone = new ZoneMachine("default", new Thresholds { Failover = failover, ConnectNew = connect, ConnectReturning = connect },
            new HealthOptions { MinimumDwellSeconds = 0 }, _time);
        // The score at 0.7, its forecast at 0.1 (below every threshold).
        var change = zone.Update(0.7, 0.1, null);
        Assert.Equal((Zone.Accept, ahead, ZoneCause.Forecast), (change!.From, change.To, change.Cause));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(zone.Update(0.7, 0.1, null));
        if (ahead == Zone.Defer)
            return;
        // The actual score leaves Accept: now the forecast's fall below the failover threshold defers.
        var defer = zone.Update(Math.Min(failover, connect), 0.1, null);
        Assert.Equal((ahead, Zone.Defer, ZoneCause.Forecast), (defer!.From, defer.To, defer.Cause));
    }

    [Fact]
    public void Forecast_StaysSilent_OnNoise()
    {
        var m = Monitor(new Thresholds { Failover = 0.3, ConnectNew = 0.3, ConnectReturning = 0.3 }, forecastHorizon: 5);
        var random = new Random(42);
        for (int i = 0; i < 3000; i++)
        {
            _load.Headroom = 0.55 + (random.NextDouble() - 0.5) * 0.3; // 0.40 .. 0.70, never below failover
            m.Tick();
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }
        Assert.Empty(m.Current.RecentChanges);
    }

    [Fact]
    public void MandatoryServiceDown_ForcesTheWorstScore()
    {
        var m = Monitor(new Thresholds());
        Hold(m, 0.9);
        _store.Healthy = false;
        var snapshot = m.Tick();
        Assert.Equal(0, snapshot.Score);
        Assert.Equal(Zone.Defer, snapshot.Zone);
        Assert.Equal(ZoneCause.MandatoryService, snapshot.RecentChanges[^1].Cause);
    }

    [Fact]
    public void DependentServiceDown_DefersEveryClient_AndAlerts()
    {
        var m = Monitor(new Thresholds(), dwell: 1);
        Hold(m, 0.9);
        _log.Healthy = false;
        var snapshot = m.Tick();
        Assert.Equal(0.9, snapshot.Score, 3); // the score itself is untouched ...
        Assert.Equal(Zone.Defer, snapshot.Zone); // ... but every client is deferred
        Assert.Equal(ZoneCause.DependentService, snapshot.RecentChanges[^1].Cause);
        Assert.Contains(_alerts.Recent, a => a.Severity == AlertSeverity.Critical && a.Source == "log-sink");
        _log.Healthy = true;
        Assert.Equal(Zone.Accept, Hold(m, 0.9, 2));
        Assert.Contains(_alerts.Recent, a => a.Source == "log-sink" && a.Message.Contains("restored", StringComparison.Ordinal));
    }

    [Fact]
    public void Drain_DefersRegardlessOfScore_ResumeRestores()
    {
        var m = Monitor(new Thresholds());
        Hold(m, 1);
        m.Drain();
        Assert.Equal(Zone.Defer, m.Tick().Zone);
        Assert.Equal(ZoneCause.Drain, m.Current.RecentChanges[^1].Cause);
        m.Resume();
        Assert.Equal(Zone.Accept, Hold(m, 1, 2));
    }

    [Fact]
    public void DuringWarmup_OnlyForcedCausesMoveTheZone()
    {
        var m = new HealthMonitor([_load, _store, _log], new HealthOptions { WarmupSeconds = 5, ForecastHorizonSeconds = 0 }, _time, _alerts,
            new DrillState(_time), NullLogger<HealthMonitor>.Instance);
        Assert.Equal(Zone.Accept, Hold(m, 0.1, 2));      // start-up load: ignored
        _store.Healthy = false;
        Assert.Equal(Zone.Defer, m.Tick().Zone);         // a mandatory service down: not ignored
        _store.Healthy = true;
        Assert.Equal(Zone.Defer, Hold(m, 0.1, 5));       // after the warm-up the score counts
    }

    /// <summary>
    /// A fleet that arrives just after the warm-up time: the zone holds until the request path has
    /// answered enough requests to be compiled, then the score counts. A quiet server's warm-up ends
    /// at the cap. Once over, it stays over.
    /// </summary>
    [Fact]
    public void Warmup_EndsWhenTheRequestPathHasBeenExercised_NotByTimeAlone()
    {
        long recent = 0;
        var options = new HealthOptions { WarmupSeconds = 5, WarmupRequests = 200, WarmupMaxSeconds = 60, ForecastHorizonSeconds = 0 };
        var warmUp = new WarmUp(options, _time, () => recent);
        var m = new HealthMonitor([_load, _store, _log], options, _time, _alerts, new DrillState(_time), NullLogger<HealthMonitor>.Instance, warmUp);
        Assert.Equal(Zone.Accept, Hold(m, 1, 6));
        recent = 150;                                    // the fleet arrives: first requests pay for the JIT
        Assert.Equal(Zone.Accept, Hold(m, 0.05, 3));
        Assert.False(warmUp.IsOver);
        recent = 400;                                    // the path has been exercised
        Assert.Equal(Zone.Defer, Hold(m, 0.05, 5));
        recent = 0;
        Assert.True(warmUp.IsOver);

        // The readings of the warm-up do not outlive it: a server that scored 0 while its JIT worked and
        // 1.0 from the first warm tick stays in Accept (the persisted, sustained score starts afresh).
        long fresh = 0;
        var warmUp2 = new WarmUp(options, _time, () => fresh);
        var m2 = new HealthMonitor([_load, _store, _log], options, _time, _alerts, new DrillState(_time), NullLogger<HealthMonitor>.Instance, warmUp2);
        Assert.Equal(Zone.Accept, Hold(m2, 0, 6));
        fresh = 500;
        Assert.Equal(Zone.Accept, Hold(m2, 1, 3));

        var quiet = new WarmUp(options, _time, () => 0);
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.False(quiet.IsOver);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(quiet.IsOver);
    }

    [Fact]
    public void ScoreDrill_RampsTheSyntheticProbe()
    {
        var drill = new DrillState(_time);
        var probe = new DrillProbe(drill);
        drill.Start(DrillKind.Score, 10);
        _time.Advance(TimeSpan.FromSeconds(2.5));
        Assert.Equal(0.5, probe.Sample().Headroom, 3);
        _time.Advance(TimeSpan.FromSeconds(2.5));
        Assert.Equal(0, probe.Sample().Headroom, 3);
        _time.Advance(TimeSpan.FromSeconds(6));
        Assert.Null(drill.Current);
        Assert.Equal(1, probe.Sample().Headroom);
    }

    [Theory]
    [InlineData("min", 0.2)]
    [InlineData("weighted-mean", 0.5)]
    public void ScoreFunctions(string function, double expected)
    {
        var options = new HealthOptions { ScoreFunction = function, Weights = { ["ignored"] = 0 } };
        var score = new ScoreFunction(options).Compute([
            new ProbeSample("a", ProbeKind.Server, 0.2, 0, ""),
            new ProbeSample("b", ProbeKind.Server, 0.8, 0, ""),
            new ProbeSample("ignored", ProbeKind.Server, 0, 0, ""),
            new ProbeSample("log", ProbeKind.Dependent, 0, 0, "", Healthy: false),
        ]);
        Assert.Equal(expected, score, 6);
    }

    [Theory]
    [InlineData(1.0, 0.0, 1.0)]       // the service at full headroom: an exhausted machine changes nothing
    [InlineData(0.85, 0.0, 0.8)]      // a little strain (a fifth of the way to StrainFullAt): the machine counts a fifth
    [InlineData(0.625, 0.0, 0.5)]     // half of the way: half of the machine's pressure
    [InlineData(0.25, 0.0, 0.0)]      // at StrainFullAt: in full
    [InlineData(0.4, 0.6, 0.4)]       // the service is the scarcer
    public void SystemPressure_CountsInProportionToTheServicesStrain(double service, double system, double expected)
    {
        var reading = new ScoreFunction(new HealthOptions()).Read([
            new ProbeSample("workers", ProbeKind.Server, service, 0, ""),
            new ProbeSample("cpu", ProbeKind.System, system, 0, ""),
        ]);
        Assert.Equal(expected, reading.Score, 6);
        Assert.Equal(service, reading.Service, 6);
        Assert.Equal(system, reading.System, 6);
    }

    [Fact]
    public void ABreach_CountsOnlyOnceItPersists_ThreeOfFiveSamples()
    {
        var m = Monitor(new Thresholds(), dwell: 0);
        Hold(m, 1, 1);
        // Two stray samples at zero, apart or together, move nothing.
        foreach (var headroom in new[] { 0.0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1 })
        {
            _load.Headroom = headroom;
            _time.Advance(TimeSpan.FromMilliseconds(100));
            Assert.Equal(Zone.Accept, m.Tick().Zone);
        }
        // A stall: the third low sample in the window moves the zone, 0.2 s after the first.
        _load.Headroom = 0;
        var moves = new List<Zone>();
        for (int i = 0; i < 3; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(100));
            moves.Add(m.Tick().Zone);
        }
        Assert.Equal([Zone.Accept, Zone.Accept, Zone.Defer], moves);
    }

    [Fact]
    public void MachinePressure_MovesTheZone_OnlyWhenSustained_AndWhenTheServiceIsStrained()
    {
        var cpu = new ScriptedProbe("cpu", ProbeKind.System);
        var m = new HealthMonitor([_load, cpu, _store, _log], new HealthOptions { WarmupSeconds = 0, ForecastHorizonSeconds = 0, MinimumDwellSeconds = 0 },
            _time, _alerts, new DrillState(_time), NullLogger<HealthMonitor>.Instance);
        Hold(m, 1, 6);
        // A machine at 100 % for a minute while the service has all its headroom: nothing.
        cpu.Headroom = 0;
        Assert.Equal(Zone.Accept, Hold(m, 1, 60));
        // The service strained (0.4) and a 2 s burst: still nothing, the burst is not sustained.
        cpu.Headroom = 1;
        Assert.Equal(Zone.Hold, Hold(m, 0.4, 6));
        cpu.Headroom = 0;
        Assert.Equal(Zone.Hold, Hold(m, 0.4, 2));
        cpu.Headroom = 1;
        Assert.Equal(Zone.Hold, Hold(m, 0.4, 6));
        // Strained and starved for longer than the sustain window: the machine's pressure counts (0.4 -> 0.2).
        cpu.Headroom = 0;
        Assert.Equal(Zone.Defer, Hold(m, 0.4, 6));
    }

    [Fact]
    public void Forecast_StaysSilent_OnAFlatScoreWithDips_AndBeforeItsWindowIsFull()
    {
        var m = Monitor(new Thresholds { Failover = 0.3, ConnectNew = 0.45, ConnectReturning = 0.5 }, forecastHorizon: 5);
        // Start-up: a falling first second would have predicted 0 from a few samples.
        for (int i = 0; i < 10; i++)
        {
            _load.Headroom = 1 - 0.05 * i;
            m.Tick();
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }
        var random = new Random(7);
        for (int i = 0; i < 36_000; i++) // an hour at 10 Hz: at 1 with dips of one or two samples to 0.2 now and then
        {
            _load.Headroom = random.NextDouble() < 0.02 ? 0.2 : 1;
            m.Tick();
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }
        Assert.Empty(m.Current.RecentChanges);
    }

    /// <summary>Recorded in the noise benchmark: the machine got busy and the score stepped from 1 to 0.51 and stayed; a line through the step predicted 0.</summary>
    [Fact]
    public void Forecast_DoesNotExtrapolateAStep()
    {
        var m = Monitor(new Thresholds(), forecastHorizon: 5);
        Hold(m, 1, 10);
        Assert.Equal(Zone.Accept, Hold(m, 0.514, 15));
        Assert.Empty(m.Current.RecentChanges);
    }

    /// <summary>
    /// Recorded in the oscillation benchmark: the score stepped from 1 to 0.55 and then swung ±0.05 around
    /// the returning clients' threshold (0.5); the line through the step and the first falling swing
    /// predicted a crossing of the failover threshold (0.25) it never came near, and every device was deferred.
    /// </summary>
    [Fact]
    public void Forecast_DoesNotExtrapolateAStepFollowedByASwing()
    {
        var m = Monitor(new Thresholds(), forecastHorizon: 5);
        Hold(m, 1, 10);
        for (int i = 0; i < 600; i++)
        {
            _load.Headroom = 0.5 + 0.05 * Math.Cos(2 * Math.PI * i / 100.0);
            m.Tick();
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }
        Assert.DoesNotContain(m.Current.RecentChanges, c => c.To == Zone.Defer);
    }

    [Fact]
    public async Task ServiceCheck_CountsAsDown_OnlyAfterFailuresInARow()
    {
        var check = new ScriptedCheck();
        var probe = new ServiceProbe("user-store", ProbeKind.Mandatory, check, failuresToTrip: 2);
        var timeout = TimeSpan.FromSeconds(1);
        await probe.RunAsync(timeout, _time, CancellationToken.None);
        Assert.True(probe.Sample().Healthy);
        check.Healthy = false;
        await probe.RunAsync(timeout, _time, CancellationToken.None);
        Assert.True(probe.Sample().Healthy);
        Assert.Contains("1 failed check", probe.Sample().Detail, StringComparison.Ordinal);
        await probe.RunAsync(timeout, _time, CancellationToken.None);
        Assert.False(probe.Sample().Healthy);
        check.Healthy = true;
        await probe.RunAsync(timeout, _time, CancellationToken.None);
        Assert.True(probe.Sample().Healthy);
    }

    /// <summary>
    /// A check that blocks its thread and ignores its cancellation (a synchronous driver call waiting on
    /// a lock another process holds): the time limit still holds, the blocked check is not started a
    /// second time while it blocks, each round it is still blocked is another failure, and once it ends the
    /// next round asks afresh (its late answer is not counted twice).
    /// </summary>
    [Fact]
    public async Task ServiceCheck_ThatIgnoresCancellation_StillTimesOut_AndIsNotStartedTwice()
    {
        var check = new BlockingCheck();
        var probe = new ServiceProbe("accounting-sink", ProbeKind.Dependent, check, failuresToTrip: 2);
        var timeout = TimeSpan.FromMilliseconds(200);
        await probe.RunAsync(timeout, TimeProvider.System, CancellationToken.None);
        Assert.Contains("no answer within", probe.Sample().Detail, StringComparison.Ordinal);
        Assert.True(probe.Sample().Healthy);
        await probe.RunAsync(timeout, TimeProvider.System, CancellationToken.None);
        Assert.False(probe.Sample().Healthy);
        Assert.Equal(1, check.Calls);
        // Released: the blocked run ends (this round either sees it end or, when it ended first, asks
        // afresh, since two rounds have counted it already); after that every round asks afresh.
        check.Release.Set();
        await probe.RunAsync(timeout, TimeProvider.System, CancellationToken.None);
        Assert.True(probe.Sample().Healthy);
        int calls = check.Calls;
        Assert.InRange(calls, 1, 2);
        await probe.RunAsync(timeout, TimeProvider.System, CancellationToken.None);
        Assert.Equal(calls + 1, check.Calls);
        Assert.True(probe.Sample().Healthy);
    }

    private sealed class BlockingCheck : Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck
    {
        public ManualResetEventSlim Release { get; } = new();
        public int Calls;

        public Task<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult> CheckHealthAsync(
            Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Calls);
            Release.Wait(TimeSpan.FromSeconds(30), CancellationToken.None);
            return Task.FromResult(Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy("committed at last"));
        }
    }

    private sealed class ScriptedCheck : Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck
    {
        public bool Healthy { get; set; } = true;

        public Task<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult> CheckHealthAsync(
            Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(Healthy ? Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy("answered")
                : Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Unhealthy("scripted failure"));
    }
}
