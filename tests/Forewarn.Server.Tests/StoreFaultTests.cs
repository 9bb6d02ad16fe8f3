using System.Net;
using Forewarn.Bench.Faults;
using Forewarn.Core.Health;
using Microsoft.Data.Sqlite;

namespace Forewarn.Server.Tests;

/// <summary>
/// Faults injected under a running server while NASes send accounting and retransmit until acknowledged
/// (<see cref="AccountingFleet"/>): the SQLite file locked by another process, the data directory's file
/// system filled to the last block; and a restart onto a read-only one. Each time: while the fault lasts the zone
/// leaves Accept and the accounting sink raises a critical alert; when it is healed the server recovers
/// by itself, every outstanding record is acknowledged, and the store holds every record exactly once.
/// </summary>
[Collection(nameof(Serial))]
public sealed class StoreFaultTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private const string Secret = "fault-secret";
    private static readonly string Program = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private readonly string _mount = Path.Combine(Path.GetTempPath(), "forewarn-fault-" + Guid.NewGuid().ToString("N")[..8]);
    private bool _mounted;

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_mount);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_mounted)
            await Peer.RunAsync("umount", ["-l", _mount]);
        try
        {
            Directory.Delete(_mount, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task MountTmpfsAsync()
    {
        var mount = await Peer.RunAsync("mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", _mount]);
        Assert.True(mount.ExitCode == 0, mount.ToString());
        _mounted = true;
    }

    [SkippableFact]
    public async Task DatabaseLockedByAnotherProcess_DefersAndAlerts_ThenRecovers_EveryRecordStoredOnce()
    {
        SqliteConnection? holder = null;
        await UnderFaultAsync(
            inject: data =>
            {
                // Another program holding the write lock (a backup tool, an operator's sqlite3 shell in a transaction).
                holder = new SqliteConnection($"Data Source={Path.Combine(data, "forewarn.db")};Pooling=False");
                holder.Open();
                using var begin = holder.CreateCommand();
                begin.CommandText = "BEGIN IMMEDIATE";
                begin.ExecuteNonQuery();
                return Task.CompletedTask;
            },
            heal: _ =>
            {
                using (var rollback = holder!.CreateCommand())
                {
                    rollback.CommandText = "ROLLBACK";
                    rollback.ExecuteNonQuery();
                }
                holder.Dispose();
                return Task.CompletedTask;
            });
    }

    /// <summary>
    /// Linux will not remount a file system read-only while a file on it is open for writing (EBUSY), so a
    /// running server meets a read-only disk only as failing writes (the full disk below shows those). What
    /// it does meet is a restart onto one, after a crash: it must refuse in one sentence, with no stack
    /// trace and no data touched, and serve again, losing nothing, once the disk is writable.
    /// </summary>
    [SkippableFact]
    public async Task CrashedThenRestartedOnAReadOnlyFileSystem_RefusesInOneLine_ThenServesWhenWritable_EveryRecordStoredOnce()
    {
        Requires.Root("mounts a tmpfs and remounts it read-only");
        await MountTmpfsAsync();
        var data = Path.Combine(_mount, "data");
        await AddFleetClientAsync(data);
        var server = await ServerProcess.StartAsync(data);
        using var fleet = new AccountingFleet(new IPEndPoint(IPAddress.Loopback, server.AcctPort), Secret, nases: 4, window: 16, rate: 200, TimeSpan.FromSeconds(1));
        await server.WaitForAsync(_ => fleet.Acknowledged > 400, TimeSpan.FromSeconds(20));
        await server.KillAsync();
        int port = server.AcctPort;
        await server.DisposeAsync();

        var remount = await Peer.RunAsync("mount", ["-o", "remount,ro", _mount]);
        Assert.True(remount.ExitCode == 0, remount.ToString());
        var refused = await Peer.RunAsync("/usr/bin/env", ["dotnet", Program, "serve", "--data", data, "--acct-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--auth-port", "0", "--advisory-port", "0", "--tacacs-port", "0"], timeoutMs: 60_000);
        output.WriteLine($"on the read-only disk: exit {refused.ExitCode}: {refused.Error.Trim()}");
        Assert.Equal(2, refused.ExitCode);
        Assert.Matches("cannot be (used|written)", refused.Error);
        Assert.DoesNotContain("   at ", refused.Error, StringComparison.Ordinal);

        remount = await Peer.RunAsync("mount", ["-o", "remount,rw", _mount]);
        Assert.True(remount.ExitCode == 0, remount.ToString());
        // The NASes have kept retransmitting to the port; the server comes back on it.
        await using var again = await ServerProcess.StartAsync(data, "--acct-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(await fleet.DrainAsync(TimeSpan.FromSeconds(30)), $"{fleet.Pending} records still unacknowledged");
        await again.KillAsync();
        using var store = StoreFactory.Open(data, postgres: null);
        var count = await fleet.CountAsync(store);
        output.WriteLine(count.ToString());
        Assert.True(count.Held, count.ToString());
    }

    private async Task AddFleetClientAsync(string data)
    {
        Directory.CreateDirectory(data);
        var secretFile = Path.Combine(_mount, "secret");
        await File.WriteAllTextAsync(secretFile, Secret);
        var added = await Peer.RunAsync("/usr/bin/env", ["dotnet", Program, "clients", "add", "fleet", "--address", "127.3.0.0/16", "--secret-file", secretFile, "--data", data]);
        Assert.True(added.ExitCode == 0, added.ToString());
        File.Delete(secretFile);
    }

    [SkippableFact]
    public async Task FileSystemFull_DefersAndAlerts_ThenRecovers_EveryRecordStoredOnce()
    {
        Requires.Root("mounts a small tmpfs and fills it");
        await MountTmpfsAsync();
        var filler = Path.Combine(_mount, "filler");
        await UnderFaultAsync(
            inject: async _ =>
            {
                // Every free block taken: the next page SQLite writes fails with ENOSPC (SQLITE_FULL).
                long free = new DriveInfo(_mount).AvailableFreeSpace;
                var fill = await Peer.RunAsync("fallocate", ["-l", free.ToString(System.Globalization.CultureInfo.InvariantCulture), filler]);
                Assert.True(fill.ExitCode == 0, fill.ToString());
                await Peer.RunAsync("dd", ["if=/dev/zero", $"of={filler}-tail", "bs=4096"]);
                output.WriteLine($"free after filling: {new DriveInfo(_mount).AvailableFreeSpace} bytes");
            },
            heal: _ =>
            {
                File.Delete(filler);
                File.Delete(filler + "-tail");
                return Task.CompletedTask;
            },
            dataDirectory: Path.Combine(_mount, "data"));
    }

    /// <summary>
    /// The common script: a server, a fleet at 200 records/s; the fault for 12 s (past SQLite's 10 s
    /// busy timeout); then healed. Asserts what the fault showed and that nothing was lost or doubled.
    /// </summary>
    private async Task UnderFaultAsync(Func<string, Task> inject, Func<string, Task> heal, string? dataDirectory = null)
    {
        var data = dataDirectory ?? Path.Combine(_mount, "data");
        await AddFleetClientAsync(data);
        await using var server = await ServerProcess.StartAsync(data);
        using var fleet = new AccountingFleet(new IPEndPoint(IPAddress.Loopback, server.AcctPort), Secret, nases: 4, window: 16, rate: 200, TimeSpan.FromSeconds(1));
        var status = await server.WaitForAsync(s => s.Health.Zone == Zone.Accept && fleet.Acknowledged > 400, TimeSpan.FromSeconds(20));
        Assert.True(fleet.Acknowledged > 400, $"only {fleet.Acknowledged} records acknowledged before the fault");
        Assert.Equal(Zone.Accept, status.Health.Zone);

        await inject(data);
        var faulted = System.Diagnostics.Stopwatch.StartNew();
        long ackedAtFault = fleet.Acknowledged;
        status = await server.WaitForAsync(s => s.Health.Zone != Zone.Accept && s.Health.RecentAlerts.Any(a => a.Source == "accounting-sink" && a.Severity == AlertSeverity.Critical),
            TimeSpan.FromSeconds(20));
        output.WriteLine($"under the fault: zone {status.Health.Zone}; " + string.Join("; ", status.Health.RecentAlerts.Select(a => $"{a.Source} {a.Severity}: {a.Message}"))
            + "; probes: " + string.Join("; ", status.Health.Probes.Select(p => $"{p.Name} {p.Headroom:0.00} {(p.Healthy ? "" : "DOWN ")}{p.Detail}")));
        Assert.NotEqual(Zone.Accept, status.Health.Zone);
        Assert.Contains(status.Health.RecentAlerts, a => a.Source == "accounting-sink" && a.Severity == AlertSeverity.Critical);
        // Held for 12 s in all: past SQLite's 10 s busy timeout, so that commits fail, not only wait.
        var rest = TimeSpan.FromSeconds(12) - faulted.Elapsed;
        if (rest > TimeSpan.Zero)
            await Task.Delay(rest);
        output.WriteLine($"acknowledged during the fault: {fleet.Acknowledged - ackedAtFault}; outstanding {fleet.Pending}");

        await heal(data);
        status = await server.WaitForAsync(s => s.Health.Zone == Zone.Accept && fleet.Acknowledged > ackedAtFault + 400, TimeSpan.FromSeconds(40));
        Assert.True(status.Health.Zone == Zone.Accept, "the server did not recover: " + server.OutputSoFar()[^Math.Min(4000, server.OutputSoFar().Length)..]);
        Assert.True(await fleet.DrainAsync(TimeSpan.FromSeconds(30)), $"{fleet.Pending} records still unacknowledged after the heal");
        await server.KillAsync();

        using var store = StoreFactory.Open(data, postgres: null);
        var count = await fleet.CountAsync(store);
        output.WriteLine(count.ToString());
        Assert.True(count.Held, count.ToString());
        Assert.Equal(count.Issued, count.StoredRows);
    }
}
