using Forewarn.Bench.Failover;

namespace Forewarn.Server.Tests;

/// <summary>
/// The failover benchmark's machinery, small: three real server processes on 127.0.80.1-3, thirty
/// devices, server A's workers exhausted. With advisories every device must move and no request may be
/// lost or late; after the heal every device must come back. (The default run's figures are in
/// docs/benchmarks.md; this only proves the machinery.)
/// </summary>
[Collection(nameof(Serial))]
public sealed class FailoverBenchTests
{
    [SkippableFact]
    public async Task AdvisoryMode_MovesEveryDevice_LosesNoRequest_AndBringsThemBack()
    {
        var options = new FailoverOptions
        {
            ServerCommand = ["dotnet", Path.Combine(AppContext.BaseDirectory, "forewarn.dll")],
            Devices = 30,
            RatePerDevice = 2,
            Mode = FailoverMode.Forecast,
            Degradation = Degradation.Workers,
            BaselineSeconds = 7,
            DegradeSeconds = 8,
            ReturnSeconds = 20,
            RampSeconds = 3,
        };
        var result = await new FailoverRunner(options).RunAsync();
        try
        {
            Assert.True(result.DeferredAfter is not null, "server A never deferred its clients");
            Assert.Equal(options.Devices, result.Moved);
            Assert.Equal(0, result.Failed);
            Assert.Equal(0, result.Late);
            Assert.Equal(options.Devices, result.Returned);
            Assert.True(result.SignallingPerDevice > 0);
            Assert.Contains(result.Timeline, p => p.Zone[0] == "Defer");
        }
        finally
        {
            Directory.Delete(options.WorkDirectory, recursive: true);
        }
    }

    /// <summary>
    /// No warning comes: server A is killed (-9, then restarted) or stopped (SIGSTOP, then SIGCONT)
    /// under thirty devices. Each device's requests miss A's deadline and are hedged to an alternate;
    /// three misses and the device suspects A. None may fail, every device must move, and every device
    /// must come back — by a PROBE the restarted (or resumed) server admits, not by a timer.
    /// </summary>
    [SkippableTheory]
    [InlineData(Degradation.Crash)]
    [InlineData(Degradation.Hang)]
    public async Task SilentFailure_MovesEveryDevice_FailsNoRequest_AndBringsThemBackByProbe(Degradation degradation)
    {
        var options = new FailoverOptions
        {
            ServerCommand = ["dotnet", Path.Combine(AppContext.BaseDirectory, "forewarn.dll")],
            Devices = 30,
            RatePerDevice = 2,
            Mode = FailoverMode.Advisory,
            Degradation = degradation,
            BaselineSeconds = 5,
            DegradeSeconds = 6,
            ReturnSeconds = 40,
            RampSeconds = 0,
        };
        var result = await new FailoverRunner(options).RunAsync();
        try
        {
            Assert.Equal(options.Devices, result.Moved);
            Assert.Equal(0, result.Failed);
            Assert.Equal(0, result.Late);
            Assert.True(result.Suspicions >= options.Devices, $"{result.Suspicions} suspicions for {options.Devices} devices");
            Assert.True(result.Hedges > 0);
            Assert.Equal(options.Devices, result.Returned);
        }
        finally
        {
            Directory.Delete(options.WorkDirectory, recursive: true);
        }
    }
}
