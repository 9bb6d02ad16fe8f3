using Forewarn.Core.Health;
using Forewarn.Core.Store;

namespace Forewarn.Server.Health;

/// <summary>The user store as the server uses it: during a SlowStore drill every lookup waits first (a real degradation the probes then see).</summary>
public sealed class DrillingUserStore(IUserStore inner, DrillState drill, TimeProvider time) : IUserStore, IUserCache
{
    /// <summary>During a slow-store drill nothing is answered from memory: every lookup takes the slow way.</summary>
    public bool TryFindCachedUser(string name, out UserRecord? user)
    {
        user = null;
        return drill.StoreDelay <= TimeSpan.Zero && inner is IUserCache cache && cache.TryFindCachedUser(name, out user);
    }

    public bool TryFindCachedGroup(string name, out GroupRecord? group)
    {
        group = null;
        return drill.StoreDelay <= TimeSpan.Zero && inner is IUserCache cache && cache.TryFindCachedGroup(name, out group);
    }

    public async ValueTask<UserRecord?> FindUserAsync(string name, CancellationToken cancellationToken = default)
    {
        var delay = drill.StoreDelay;
        if (delay > TimeSpan.Zero)
            await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
        return await inner.FindUserAsync(name, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask<GroupRecord?> FindGroupAsync(string name, CancellationToken cancellationToken = default) => inner.FindGroupAsync(name, cancellationToken);
    public Task<bool> AddUserAsync(UserRecord user, CancellationToken cancellationToken = default) => inner.AddUserAsync(user, cancellationToken);
    public Task<bool> UpdateUserAsync(UserRecord user, CancellationToken cancellationToken = default) => inner.UpdateUserAsync(user, cancellationToken);
    public Task<bool> RemoveUserAsync(string name, CancellationToken cancellationToken = default) => inner.RemoveUserAsync(name, cancellationToken);
    public Task<IReadOnlyList<UserRecord>> ListUsersAsync(CancellationToken cancellationToken = default) => inner.ListUsersAsync(cancellationToken);
    public Task SetGroupAsync(GroupRecord group, CancellationToken cancellationToken = default) => inner.SetGroupAsync(group, cancellationToken);
    public Task<bool> RemoveGroupAsync(string name, CancellationToken cancellationToken = default) => inner.RemoveGroupAsync(name, cancellationToken);
    public Task<IReadOnlyList<GroupRecord>> ListGroupsAsync(CancellationToken cancellationToken = default) => inner.ListGroupsAsync(cancellationToken);
    /// <summary>A slow store is slow for the health check's query too.</summary>
    public async Task<bool> PingAsync(CancellationToken cancellationToken = default)
    {
        var delay = drill.StoreDelay;
        if (delay > TimeSpan.Zero)
            await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
        return await inner.PingAsync(cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>The accounting store as the server uses it: during a FailAccounting drill every write fails, as a full or broken disk would.</summary>
public sealed class DrillingAccountingStore(IAccountingStore inner, DrillState drill) : IAccountingStore
{
    private void ThrowIfDrilling()
    {
        if (drill.Is(DrillKind.FailAccounting))
            throw new IOException("drill: the accounting sink refuses writes");
    }

    public Task<int> AppendBatchAsync(IReadOnlyList<AccountingRecord> records, CancellationToken cancellationToken = default)
    {
        ThrowIfDrilling();
        return inner.AppendBatchAsync(records, cancellationToken);
    }

    public Task ProbeWriteAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDrilling();
        return inner.ProbeWriteAsync(cancellationToken);
    }

    public Task<IReadOnlyList<AccountingRecord>> QueryAsync(AccountingQuery query, CancellationToken cancellationToken = default) => inner.QueryAsync(query, cancellationToken);
}

/// <summary>Starts drills; a CpuHog drill spins one thread per core until it ends.</summary>
public sealed class DrillController(DrillState drill)
{
    public DrillState State => drill;

    public void Start(DrillKind kind, double seconds, double intensity)
    {
        drill.Start(kind, seconds, intensity);
        if (kind == DrillKind.Gc)
        {
            var gc = new Thread(() =>
            {
                while (drill.Is(DrillKind.Gc))
                {
                    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                    Thread.Sleep(1000);
                }
            })
            { IsBackground = true, Name = "forewarn-drill-gc" };
            gc.Start();
            return;
        }
        if (kind != DrillKind.CpuHog)
            return;
        for (int i = 0; i < Environment.ProcessorCount; i++)
        {
            var thread = new Thread(() =>
            {
                while (drill.Is(DrillKind.CpuHog))
                    Thread.SpinWait(100_000);
            })
            { IsBackground = true, Name = "forewarn-drill-cpu", Priority = ThreadPriority.BelowNormal };
            thread.Start();
        }
    }

    public void Stop() => drill.Stop();
}
