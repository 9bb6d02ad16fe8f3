using Forewarn.Core.Health;

namespace Forewarn.Server.Tests;

/// <summary>
/// Free space judged against need, on a real small file system (a 48 MiB tmpfs mounted by the test):
/// a small volume with little accounting serves; a full one defers every client and alerts; freed, it
/// recovers. Needs root (mount).
/// </summary>
[Collection(nameof(Serial))]
public sealed class DiskSpaceTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _mount = Path.Combine(Path.GetTempPath(), "forewarn-small-" + Guid.NewGuid().ToString("N")[..8]);

    private static bool Root => Environment.UserName == "root";

    public async Task InitializeAsync()
    {
        if (!Root)
            return; // the test says why it cannot run
        Directory.CreateDirectory(_mount);
        var mount = await Peer.RunAsync("mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", _mount]);
        Assert.True(mount.ExitCode == 0, mount.ToString());
    }

    public async Task DisposeAsync()
    {
        if (!Root)
            return;
        await Peer.RunAsync("umount", ["-l", _mount]);
        try
        {
            Directory.Delete(_mount, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [SkippableFact]
    public async Task SmallVolume_Serves_FullVolume_DefersAndAlerts_FreedVolume_Recovers()
    {
        Requires.Root("mounts a small tmpfs as the data directory");
        var data = Path.Combine(_mount, "data");
        await using var server = await ServerProcess.StartAsync(data);
        // 48 MiB in all: below the old fixed floor (64 MiB), which deferred every client from start-up.
        await Task.Delay(TimeSpan.FromSeconds(7));
        var status = await server.StatusAsync();
        var sink = status.Health.Probes.Single(p => p.Name == "accounting-sink");
        output.WriteLine(sink.Detail);
        Assert.True(sink.Healthy, sink.Detail);
        Assert.Equal(Zone.Accept, status.Health.Zone);
        Assert.Empty(status.Health.RecentChanges);

        // Fill it to under the 16 MiB minimum: the sink fails, every client is deferred, a disk-space alert is raised.
        var filler = Path.Combine(_mount, "filler");
        var fill = await Peer.RunAsync("fallocate", ["-l", "40m", filler]);
        Assert.True(fill.ExitCode == 0, fill.ToString());
        status = await server.WaitForAsync(s => s.Health.Zone == Zone.Defer, TimeSpan.FromSeconds(10));
        Assert.Equal(Zone.Defer, status.Health.Zone);
        Assert.Equal(ZoneCause.DependentService, status.Health.RecentChanges[^1].Cause);
        Assert.Contains(status.Health.RecentAlerts, a => a.Source == "disk-space" && a.Severity == AlertSeverity.Critical);

        File.Delete(filler);
        status = await server.WaitForAsync(s => s.Health.Zone == Zone.Accept, TimeSpan.FromSeconds(20));
        Assert.Equal(Zone.Accept, status.Health.Zone);
    }
}
