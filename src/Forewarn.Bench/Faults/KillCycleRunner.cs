using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Forewarn.Bench.Failover;
using Forewarn.Core.Store;

namespace Forewarn.Bench.Faults;

/// <summary>One kill-9 run: how many, how hard, against which store.</summary>
public sealed record KillCycleOptions
{
    /// <summary>How to run forewarn: e.g. ["dotnet", "/path/forewarn.dll"].</summary>
    public required IReadOnlyList<string> ServerCommand { get; init; }
    /// <summary>Opens the store of a data directory the way the server does, to count what it holds after the last kill.</summary>
    public required Func<string, IForewarnStore> OpenStore { get; init; }
    public string WorkDirectory { get; init; } = Path.Combine(Path.GetTempPath(), "forewarn-kill-" + Guid.NewGuid().ToString("N")[..8]);
    public int Cycles { get; init; } = 100;
    /// <summary>NASes, each on its own 127.3.0.x address, each keeping <see cref="Window"/> records in flight.</summary>
    public int Nases { get; init; } = 16;
    public int Window { get; init; } = 32;
    /// <summary>New records a second, all NASes together (retransmissions come on top).</summary>
    public double Rate { get; init; } = 5000;
    /// <summary>The server runs under load for a random time in this range (seconds) before it is killed.</summary>
    public double MinUpSeconds { get; init; } = 0.05;
    public double MaxUpSeconds { get; init; } = 2.5;
    /// <summary>And stays dead for a random time in this range before the restart.</summary>
    public double MaxDownSeconds { get; init; } = 0.5;
    /// <summary>A NAS retransmits an unacknowledged record after this long (and again, until it is acknowledged).</summary>
    public double RetransmitSeconds { get; init; } = 1;
    /// <summary>Extra server settings (--set), e.g. Forewarn:Postgres=...</summary>
    public IReadOnlyList<string> Settings { get; init; } = [];
    public string Secret { get; init; } = "kill-secret";
    public IPAddress ServerAddress { get; init; } = IPAddress.Parse("127.0.90.1");
    /// <summary>Seed of the kill times (null: a random one, reported so that a run can be repeated).</summary>
    public int? Seed { get; init; }

    public void Validate()
    {
        if (Cycles is < 1 or > 10_000)
            throw new ArgumentException("Cycles must be between 1 and 10000.");
        if (Nases is < 1 or > 250)
            throw new ArgumentException("NASes must be between 1 and 250.");
        if (Window is < 1 or > 200)
            throw new ArgumentException("The window must be between 1 and 200 records per NAS.");
        if (Rate is <= 0 or > 1_000_000)
            throw new ArgumentException("The rate must be above 0 and at most 1000000 records a second.");
        if (MinUpSeconds < 0 || MaxUpSeconds < MinUpSeconds || MaxDownSeconds < 0)
            throw new ArgumentException("The up and down times must be 0 or more, the longest up time at least the shortest.");
    }
}

/// <summary>One cycle: how long the server ran, how long until it answered accounting again after its start, and what it acknowledged.</summary>
public readonly record struct KillCycle(int Number, double UpSeconds, double? FirstAnswerSeconds, long Acknowledged, int InFlightAtKill);

/// <summary>What the run found: every record the NASes issued against what the store holds after the last kill.</summary>
public sealed record KillCycleResult(int Cycles, int Seed, StoreCount Count, long Retransmissions,
    double MedianFirstAnswerSeconds, double MaxFirstAnswerSeconds, double Seconds, IReadOnlyList<KillCycle> Timeline)
{
    public bool Held => Count.Held;
}

/// <summary>
/// kill -9 at random moments under accounting load, again and again, then counts. A server process
/// (`forewarn serve`) takes accounting from NASes that retransmit until acknowledged (<see cref="AccountingNas"/>);
/// after a random time it is killed with SIGKILL (no shutdown of any kind), stays dead a moment, and is
/// started again on the same data directory; the NASes never stop. After the last cycle the server is
/// started once more, every outstanding record is sent until acknowledged, the server is killed a last
/// time, and the store is read: each record the NASes issued must be there exactly once.
/// </summary>
public sealed class KillCycleRunner(KillCycleOptions options)
{
    public async Task<KillCycleResult> RunAsync(Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        int seed = options.Seed ?? RandomNumberGenerator.GetInt32(int.MaxValue);
        var random = new Random(seed);
        Directory.CreateDirectory(options.WorkDirectory);
        await using var node = await ServerNode.PrepareAsync(0, options.ServerAddress, options.ServerCommand, options.WorkDirectory, options.Secret,
            options.Settings, cancellationToken).ConfigureAwait(false);
        using var fleet = new AccountingFleet(new IPEndPoint(options.ServerAddress, 1813), options.Secret, options.Nases, options.Window, options.Rate,
            TimeSpan.FromSeconds(options.RetransmitSeconds));
        var clock = Stopwatch.StartNew();
        var timeline = new List<KillCycle>();
        for (int cycle = 1; cycle <= options.Cycles; cycle++)
        {
            long ackedBefore = fleet.Acknowledged;
            fleet.Mark();
            long started = Stopwatch.GetTimestamp();
            await node.StartAsync(cancellationToken).ConfigureAwait(false);
            double up = options.MinUpSeconds + random.NextDouble() * (options.MaxUpSeconds - options.MinUpSeconds);
            await Task.Delay(TimeSpan.FromSeconds(up), cancellationToken).ConfigureAwait(false);
            int inFlight = fleet.Pending;
            await node.CrashAsync().ConfigureAwait(false);
            long acked = fleet.Acknowledged - ackedBefore;
            double? firstAnswer = fleet.FirstAcknowledgedSinceMark is long first ? Stopwatch.GetElapsedTime(started, first).TotalSeconds : null;
            timeline.Add(new KillCycle(cycle, up, firstAnswer, acked, inFlight));
            progress?.Invoke($"cycle {cycle}/{options.Cycles}: up {up:0.00} s, {acked} acknowledged, {inFlight} in flight at the kill");
            await Task.Delay(TimeSpan.FromSeconds(random.NextDouble() * options.MaxDownSeconds), cancellationToken).ConfigureAwait(false);
        }

        // The last start: no new records; what is outstanding is retransmitted until acknowledged; a last kill.
        fleet.Issuing = false;
        await node.StartAsync(cancellationToken).ConfigureAwait(false);
        await fleet.DrainAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        await node.CrashAsync().ConfigureAwait(false);

        StoreCount count;
        using (var store = options.OpenStore(node.DataDirectory))
            count = await fleet.CountAsync(store, cancellationToken).ConfigureAwait(false);
        var firstAnswers = timeline.Where(c => c.FirstAnswerSeconds is not null).Select(c => c.FirstAnswerSeconds!.Value).Order().ToList();
        return new KillCycleResult(options.Cycles, seed, count, fleet.Retransmissions,
            MedianFirstAnswerSeconds: firstAnswers.Count > 0 ? firstAnswers[firstAnswers.Count / 2] : double.NaN,
            MaxFirstAnswerSeconds: firstAnswers.Count > 0 ? firstAnswers[^1] : double.NaN,
            clock.Elapsed.TotalSeconds, timeline);
    }

    public static string Describe(KillCycleResult r) =>
        $"{r.Cycles} kill -9 cycles in {r.Seconds:0} s (seed {r.Seed}), {r.Retransmissions:N0} retransmissions: {r.Count}; " +
        $"first answer after a start: median {r.MedianFirstAnswerSeconds:0.000} s, max {r.MaxFirstAnswerSeconds:0.000} s. " +
        (r.Held ? "Held." : "BROKEN.");
}
