using System.Collections.Concurrent;

namespace Forewarn.Core.Store;

/// <summary>
/// Users and groups kept in memory in front of the store, so that an Access-Request costs no query.
/// The store raises a version on every change to users or groups, from any process (the command line
/// writes while the server runs); <see cref="RefreshAsync"/>, called every second, drops the cache when
/// it moved. Unknown names are cached too (as null), up to <see cref="MaxEntries"/>, after which the
/// cache starts over rather than grow without bound under a flood of made-up names.
/// </summary>
public sealed class CachedUserStore(IUserStore inner, Func<CancellationToken, Task<long>> version) : IUserStore, IUserCache
{
    public const int MaxEntries = 200_000;

    private ConcurrentDictionary<string, UserRecord?> _users = new(StringComparer.Ordinal);
    private ConcurrentDictionary<string, GroupRecord?> _groups = new(StringComparer.Ordinal);
    private long _version = long.MinValue;

    private long _hits;
    private long _misses;

    public long Hits => Interlocked.Read(ref _hits);
    public long Misses => Interlocked.Read(ref _misses);

    public bool TryFindCachedUser(string name, out UserRecord? user)
    {
        if (!_users.TryGetValue(name, out user))
            return false;
        Interlocked.Increment(ref _hits);
        return true;
    }

    public bool TryFindCachedGroup(string name, out GroupRecord? group) => _groups.TryGetValue(name, out group);

    public ValueTask<UserRecord?> FindUserAsync(string name, CancellationToken cancellationToken = default)
    {
        var users = _users;
        if (users.TryGetValue(name, out var user))
        {
            Interlocked.Increment(ref _hits);
            return ValueTask.FromResult(user);
        }
        return LoadUserAsync(users, name, cancellationToken);
    }

    private async ValueTask<UserRecord?> LoadUserAsync(ConcurrentDictionary<string, UserRecord?> users, string name, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _misses);
        var user = await inner.FindUserAsync(name, cancellationToken).ConfigureAwait(false);
        if (users.Count >= MaxEntries)
            users.Clear();
        users[name] = user;
        return user;
    }

    public ValueTask<GroupRecord?> FindGroupAsync(string name, CancellationToken cancellationToken = default)
    {
        var groups = _groups;
        return groups.TryGetValue(name, out var group) ? ValueTask.FromResult(group) : LoadGroupAsync(groups, name, cancellationToken);
    }

    private async ValueTask<GroupRecord?> LoadGroupAsync(ConcurrentDictionary<string, GroupRecord?> groups, string name, CancellationToken cancellationToken)
    {
        var group = await inner.FindGroupAsync(name, cancellationToken).ConfigureAwait(false);
        if (groups.Count >= MaxEntries)
            groups.Clear();
        groups[name] = group;
        return group;
    }

    /// <summary>Drops everything when the store's version moved since the last look (or always, the first time); true when it did.</summary>
    public async Task<bool> RefreshAsync(CancellationToken cancellationToken = default)
    {
        long current = await version(cancellationToken).ConfigureAwait(false);
        if (Interlocked.Exchange(ref _version, current) == current)
            return false;
        Invalidate();
        return true;
    }

    /// <summary>
    /// Replaces the dictionaries rather than clearing them: a lookup that raced with the change writes
    /// its (possibly old) answer into the dictionary that is being thrown away.
    /// </summary>
    public void Invalidate()
    {
        _users = new(StringComparer.Ordinal);
        _groups = new(StringComparer.Ordinal);
    }

    public Task<bool> AddUserAsync(UserRecord user, CancellationToken cancellationToken = default) => Changed(inner.AddUserAsync(user, cancellationToken));
    public Task<bool> UpdateUserAsync(UserRecord user, CancellationToken cancellationToken = default) => Changed(inner.UpdateUserAsync(user, cancellationToken));
    public Task<bool> RemoveUserAsync(string name, CancellationToken cancellationToken = default) => Changed(inner.RemoveUserAsync(name, cancellationToken));
    public Task<IReadOnlyList<UserRecord>> ListUsersAsync(CancellationToken cancellationToken = default) => inner.ListUsersAsync(cancellationToken);
    public Task<bool> RemoveGroupAsync(string name, CancellationToken cancellationToken = default) => Changed(inner.RemoveGroupAsync(name, cancellationToken));
    public async Task SetGroupAsync(GroupRecord group, CancellationToken cancellationToken = default)
    {
        await inner.SetGroupAsync(group, cancellationToken).ConfigureAwait(false);
        Invalidate();
    }

    public Task<IReadOnlyList<GroupRecord>> ListGroupsAsync(CancellationToken cancellationToken = default) => inner.ListGroupsAsync(cancellationToken);
    /// <summary>The health check asks the store itself, never the cache.</summary>
    public Task<bool> PingAsync(CancellationToken cancellationToken = default) => inner.PingAsync(cancellationToken);

    private async Task<bool> Changed(Task<bool> write)
    {
        bool result = await write.ConfigureAwait(false);
        Invalidate();
        return result;
    }
}
