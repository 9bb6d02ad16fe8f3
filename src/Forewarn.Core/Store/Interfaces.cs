namespace Forewarn.Core.Store;

/// <summary>Users and groups. Lookups run on the request path; everything else is administration.</summary>
/// <summary>A user store with a memory in front: answers without blocking when it can.</summary>
public interface IUserCache
{
    /// <summary>True when the answer (a user, or that there is none) is in memory.</summary>
    bool TryFindCachedUser(string name, out UserRecord? user);
    bool TryFindCachedGroup(string name, out GroupRecord? group);
}

public interface IUserStore
{
    /// <summary>The user, or null. Names compare exactly (case-sensitive), as RADIUS clients send them.</summary>
    ValueTask<UserRecord?> FindUserAsync(string name, CancellationToken cancellationToken = default);
    ValueTask<GroupRecord?> FindGroupAsync(string name, CancellationToken cancellationToken = default);
    Task<bool> AddUserAsync(UserRecord user, CancellationToken cancellationToken = default);
    Task<bool> UpdateUserAsync(UserRecord user, CancellationToken cancellationToken = default);
    Task<bool> RemoveUserAsync(string name, CancellationToken cancellationToken = default);
    Task<IReadOnlyList<UserRecord>> ListUsersAsync(CancellationToken cancellationToken = default);
    Task SetGroupAsync(GroupRecord group, CancellationToken cancellationToken = default);
    /// <summary>Removes a group; its members keep naming it and simply get nothing from it. False when there was none.</summary>
    Task<bool> RemoveGroupAsync(string name, CancellationToken cancellationToken = default);
    Task<IReadOnlyList<GroupRecord>> ListGroupsAsync(CancellationToken cancellationToken = default);
    /// <summary>Round-trips a trivial query: the "user store answers" health check.</summary>
    Task<bool> PingAsync(CancellationToken cancellationToken = default);
}

/// <summary>TACACS+ command sets, named and shared by groups. Changes raise the users' version (the caches watch it).</summary>
public interface ICommandSetStore
{
    ValueTask<CommandSet?> FindCommandSetAsync(string name, CancellationToken cancellationToken = default);
    Task SetCommandSetAsync(CommandSet commandSet, CancellationToken cancellationToken = default);
    Task<bool> RemoveCommandSetAsync(string name, CancellationToken cancellationToken = default);
    Task<IReadOnlyList<CommandSet>> ListCommandSetsAsync(CancellationToken cancellationToken = default);
}

public interface IClientStore
{
    Task<IReadOnlyList<ClientRecord>> ListClientsAsync(CancellationToken cancellationToken = default);
    Task<bool> AddClientAsync(ClientRecord client, CancellationToken cancellationToken = default);
    Task<bool> RemoveClientAsync(string name, CancellationToken cancellationToken = default);
    /// <summary>Replaces the client of the same name (address, secret, group, policy and the rest) in one statement; false when there is none.</summary>
    Task<bool> UpdateClientAsync(ClientRecord client, CancellationToken cancellationToken = default);
    /// <summary>Changes whenever clients are added or removed, so a running server can reload cheaply.</summary>
    Task<long> ClientsVersionAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// Durable accounting. <see cref="AppendBatchAsync"/> returns only once every record is on stable
/// storage; a record whose <see cref="AccountingRecord.DedupKey"/> is already stored is skipped.
/// </summary>
public interface IAccountingStore
{
    /// <summary>Stores the batch in one transaction; returns how many were new (the rest were duplicates).</summary>
    Task<int> AppendBatchAsync(IReadOnlyList<AccountingRecord> records, CancellationToken cancellationToken = default);
    Task<IReadOnlyList<AccountingRecord>> QueryAsync(AccountingQuery query, CancellationToken cancellationToken = default);
    /// <summary>Commits one small durable write (a heartbeat): the "accounting sink accepts writes" health check.</summary>
    Task ProbeWriteAsync(CancellationToken cancellationToken = default);
}

/// <summary>An accounting request a relay holds because no upstream server acknowledged it.</summary>
public sealed record SpooledRequest(long Id, DateTimeOffset SpooledAt, string Client, byte[] Attributes);

/// <summary>The relay's durable spool: requests kept until an upstream server acknowledges them, replayed in order.</summary>
public interface IRequestSpool
{
    /// <summary>Stores an accounting request durably (committed before this returns); returns its id.</summary>
    long Spool(string client, ReadOnlySpan<byte> attributes);
    /// <summary>The oldest spooled requests, in order.</summary>
    IReadOnlyList<SpooledRequest> PeekSpool(int limit);
    void Unspool(long id);
    long SpoolDepth();
}

/// <summary>
/// Everything a server, a relay or the command line opens: the embedded SQLite file, or a PostgreSQL
/// database several servers share. Changes made by any process raise versions the caches watch.
/// </summary>
public interface IForewarnStore : IUserStore, ICommandSetStore, IClientStore, IAccountingStore, IRequestSpool, IDisposable
{
    /// <summary>Where the data lives, for the operator (a file, or a database without its password).</summary>
    string Location { get; }
    /// <summary>Raised by every change to users, groups or command sets, from any process: the user cache watches it.</summary>
    Task<long> UsersVersionAsync(CancellationToken cancellationToken = default);
    /// <summary>Adds or replaces every user in one transaction: all of them, or (on any error) none. Returns (added, replaced).</summary>
    Task<(int Added, int Replaced)> ImportUsersAsync(IReadOnlyList<UserRecord> users, CancellationToken cancellationToken = default);
    /// <summary>
    /// Waits until another process may have changed users, groups, command sets or clients, or for
    /// <paramref name="timeout"/>, whichever comes first. A store that is told of changes (PostgreSQL's
    /// LISTEN/NOTIFY) returns as soon as one is committed; one that is not simply waits, and the caller polls.
    /// </summary>
    Task WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>A server of a cluster as it registers itself: where its RADIUS, advisory and TACACS+ services are.</summary>
public sealed record ClusterMember(string Name, string Address, int AuthPort, int AdvisoryPort, int TacacsPort);

/// <summary>
/// Membership from the shared database: each server heartbeats its own row; the members are the rows
/// heartbeated recently (by the database's clock, so the servers' clocks need not agree).
/// </summary>
public interface IClusterMembership
{
    Task HeartbeatAsync(ClusterMember self, CancellationToken cancellationToken = default);
    Task<IReadOnlyList<ClusterMember>> MembersAsync(TimeSpan heartbeatWithin, CancellationToken cancellationToken = default);
    Task LeaveAsync(string name, CancellationToken cancellationToken = default);
    /// <summary>A secret every member shares, made once by the first server that asks (<paramref name="create"/>).</summary>
    Task<string> SharedSecretAsync(string name, Func<string> create, CancellationToken cancellationToken = default);
}
