using System.Collections.Concurrent;
using System.Net;
using Forewarn.Protocol.Tacacs;

namespace Forewarn.Client.Tacacs;

/// <summary>One TACACS+ server of a <see cref="TacacsPool"/>: the pool server it shares advisories with, and where it serves TACACS+.</summary>
public sealed record TacacsServer(PoolServer Server, IPEndPoint Endpoint, string Key);

/// <summary>
/// A NAS's TACACS+ servers, obeying the same advisories as its RADIUS traffic: the servers are those of a
/// <see cref="ServerPool"/> (the one a <see cref="ForewarnClient"/> keeps, whose advisory listener marks
/// servers deferred and follows their invitations), each with its TACACS+ endpoint. An exchange goes to
/// the server the pool picks (a deferring server's named alternates first); a server that closes or
/// refuses the connection without a reply — what a deferring Forewarn server does to devices that run
/// none of our code — is avoided for <see cref="AvoidFor"/> and the exchange is sent to the next server
/// at once, so a move costs one connection attempt, not a timeout.
/// </summary>
public sealed class TacacsPool(ServerPool pool, IEnumerable<TacacsServer> servers, int connectionsPerServer = 1, TimeSpan? timeout = null, TimeProvider? time = null,
    IPAddress? localAddress = null) : IAsyncDisposable
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Dictionary<PoolServer, TacacsClient> _clients = servers.ToDictionary(s => s.Server, s => new TacacsClient(new TacacsClientOptions
    {
        Server = s.Endpoint, Key = s.Key, Connections = connectionsPerServer, Timeout = timeout ?? TimeSpan.FromSeconds(5), LocalAddress = localAddress,
    }));
    private readonly ConcurrentDictionary<PoolServer, DateTimeOffset> _avoid = new();
    private long _moves;

    /// <summary>How long a server that closed or refused a connection is passed over (unless nothing else is left); an answered exchange clears it.</summary>
    public TimeSpan AvoidFor { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Exchanges that had to go to another server than the first one picked.</summary>
    public long Moves => Interlocked.Read(ref _moves);

    public Task<AuthenReply> PapAsync(string user, string password, CancellationToken cancellationToken = default) =>
        RunAsync(c => c.PapAsync(user, password, cancellationToken: cancellationToken));

    public Task<AuthenReply> AsciiAsync(string user, string password, CancellationToken cancellationToken = default) =>
        RunAsync(c => c.AsciiAsync(user, password, cancellationToken: cancellationToken));

    public Task<AuthorResponse> AuthorizeAsync(string user, IReadOnlyList<string> arguments, CancellationToken cancellationToken = default) =>
        RunAsync(c => c.AuthorizeAsync(user, arguments, cancellationToken: cancellationToken));

    public Task<AcctReply> AccountAsync(AcctFlags flags, string user, IReadOnlyList<string> arguments, CancellationToken cancellationToken = default) =>
        RunAsync(c => c.AccountAsync(flags, user, arguments, cancellationToken: cancellationToken));

    /// <summary>One packet each way (PAP, CHAP, authorization, accounting), relayed as it came: to the next usable server when one fails.</summary>
    public Task<TacacsBody> ForwardAsync(TacacsBody body, byte version, CancellationToken cancellationToken = default) =>
        RunAsync(c => c.ExchangeAsync(body, TacacsClient.NewSessionId(), 1, version, cancellationToken));

    /// <summary>The first packet of a conversation (ASCII login): the server it went to and the upstream session, for <see cref="ContinueAsync"/>.</summary>
    public async Task<(PoolServer Server, (uint Session, TacacsBody Body) Reply)> BeginAsync(AuthenStart start, byte version, CancellationToken cancellationToken = default)
    {
        PoolServer? chosen = null;
        uint session = TacacsClient.NewSessionId();
        var body = await RunAsync(async (client, server) =>
        {
            chosen = server;
            return await client.ExchangeInSessionAsync(start, session, 1, version, cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
        return (chosen!, (session, body));
    }

    /// <summary>A later packet of a conversation, on the server and session it began with (no failover mid-conversation).</summary>
    public Task<TacacsBody> ContinueAsync(PoolServer server, uint session, TacacsBody body, byte sequence, byte version, CancellationToken cancellationToken = default) =>
        _clients[server].ExchangeInSessionAsync(body, session, sequence, version, cancellationToken);

    private PoolServer? Pick(List<PoolServer> tried)
    {
        var now = _time.GetUtcNow();
        // Pool servers without a TACACS+ endpoint are never picked; avoided ones only when nothing else is left.
        var without = pool.Servers.Where(s => !_clients.ContainsKey(s)).ToList();
        var exclude = tried.Concat(without).Concat(_avoid.Where(a => a.Value > now).Select(a => a.Key)).ToHashSet();
        return pool.Pick(exclude) ?? pool.Pick(tried.Concat(without).ToHashSet());
    }

    private Task<T> RunAsync<T>(Func<TacacsClient, Task<T>> exchange) => RunAsync((client, _) => exchange(client));

    private async Task<T> RunAsync<T>(Func<TacacsClient, PoolServer, Task<T>> exchange)
    {
        var tried = new List<PoolServer>();
        TacacsException? last = null;
        while (Pick(tried) is { } server && _clients.TryGetValue(server, out var client))
        {
            try
            {
                var reply = await exchange(client, server).ConfigureAwait(false);
                _avoid.TryRemove(server, out _);
                return reply;
            }
            catch (TacacsException e)
            {
                last = e;
                tried.Add(server);
                _avoid[server] = _time.GetUtcNow() + AvoidFor;
                Interlocked.Increment(ref _moves);
            }
        }
        throw new TacacsException($"no TACACS+ server answered{(last is null ? "" : $": {last.Message}")}", last);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients.Values)
            await client.DisposeAsync().ConfigureAwait(false);
    }
}
