using System.Collections.Concurrent;
using System.Net;
using Forewarn.Core.Deferrals;
using Forewarn.Core.Health;
using Forewarn.Protocol.Advisory;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Advisories;

/// <summary>
/// Survivors speak for the dead (docs/protocol.md §6b): each peer-health message carries a slice of the
/// clients its sender serves; when a peer that was heard falls silent for <see cref="AdvisoryOptions.PeerSilentMs"/>,
/// the healthy survivors split its clients between them and tell each, with a PeerDown signed with the
/// survivor's own key for that client, to leave it now. The silent server's return is its own business:
/// its clients come back only when it invites them (answering their probes at its admission pace).
/// </summary>
public sealed partial class AdvisoryService
{
    /// <summary>The clients each peer said it serves, with when it last said so.</summary>
    private readonly ConcurrentDictionary<IPAddress, ConcurrentDictionary<IPAddress, long>> _peerClients = new();
    /// <summary>Peers spoken for since they were last heard.</summary>
    private readonly ConcurrentDictionary<IPAddress, bool> _spokenFor = new();
    private int _shareCursor;
    private PeerSilence? _silence;

    private const int MaxClientsPerPeer = 100_000;
    private static readonly TimeSpan PeerClientLifetime = TimeSpan.FromMinutes(2);

    /// <summary>The next slice of the clients this server serves (not those it deferred), rotating through them all; at most 1,000 octets of them.</summary>
    private IPAddress[] NextClientSlice()
    {
        if (!_options.SpeakForSilentPeers || _options.PeerClientsPerMessage <= 0)
            return [];
        var serving = _registry.All.Where(c => c.State != ClientState.Deferred).Select(c => c.Address).ToArray();
        if (serving.Length == 0)
            return [];
        int start = (int)((uint)Volatile.Read(ref _shareCursor) % (uint)serving.Length);
        var slice = new List<IPAddress>();
        int octets = 0;
        for (int i = 0; i < serving.Length && slice.Count < _options.PeerClientsPerMessage; i++)
        {
            var address = serving[(start + i) % serving.Length];
            octets += address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 7 : 19; // TLV header, family, address
            if (octets > 1000)
                break;
            slice.Add(address);
        }
        Interlocked.Add(ref _shareCursor, slice.Count);
        return [.. slice];
    }

    private void LearnPeerClients(IPAddress peer, IReadOnlyList<IPAddress> clients)
    {
        if (_spokenFor.TryRemove(peer, out _))
            LogPeerHeardAgain(_logger, peer);
        if (clients.Count == 0)
            return;
        var known = _peerClients.GetOrAdd(peer, _ => new ConcurrentDictionary<IPAddress, long>());
        long now = _time.GetTimestamp();
        foreach (var client in clients)
        {
            if (known.Count < MaxClientsPerPeer || known.ContainsKey(client))
                known[client] = now;
        }
    }

    /// <summary>Once a second: forgets clients a peer has not named for a while.</summary>
    private void ForgetStalePeerClients()
    {
        long now = _time.GetTimestamp();
        foreach (var known in _peerClients.Values)
        {
            foreach (var (client, at) in known)
            {
                if (_time.GetElapsedTime(at, now) > PeerClientLifetime)
                    known.TryRemove(client, out _);
            }
        }
    }

    /// <summary>Each housekeeping tick: a peer heard before and silent now is spoken for, once per silence.</summary>
    private async Task SpeakForSilentPeersAsync()
    {
        if (!_options.SpeakForSilentPeers || _peerKeys is null)
            return;
        _silence ??= new PeerSilence(_time, _options.PeerSilentMs);
        _silence.Tick();
        foreach (var peer in _peers.Values)
        {
            if (!_silence.IsSilent(peer.At) || !_spokenFor.TryAdd(peer.Address, true))
                continue;
            await SpeakForAsync(peer.Address, _silence.Of(peer.At)).ConfigureAwait(false);
        }
    }

    private async Task SpeakForAsync(IPAddress silent, TimeSpan silence)
    {
        // A survivor that is itself in trouble would only draw the clients into it.
        if (_monitor.Current.Zone != Zone.Accept)
            return;
        long now = _time.GetTimestamp();
        // The survivors share the work: each client is told by one of them, the same one whoever computes it.
        var survivors = _peers.Values
            .Where(p => !p.Address.Equals(silent) && p.Zone == Zone.Accept && _time.GetElapsedTime(p.At, now).TotalMilliseconds < _options.PeerSilentMs)
            .Select(p => p.Address)
            .Append(_self)
            .OrderBy(a => a.ToString(), StringComparer.Ordinal)
            .ToList();
        int me = survivors.IndexOf(_self);
        var alternates = Alternates().Where(a => !a.Address.Equals(silent)).Prepend(
            new Alternate(_self, (ushort)_radius.EndpointOf(PortKind.Authentication).Port,
                (byte)Math.Clamp(Math.Round(_monitor.Current.Score * 255), 0, 255), OwnTacacsPort())).ToList();
        var clients = _peerClients.TryGetValue(silent, out var known) ? known.Keys.ToList() : [];
        var mine = clients.Where(c => Owner(c, survivors.Count) == me).ToList();
        LogSpeakingFor(_logger, silent, (long)silence.TotalMilliseconds, mine.Count, clients.Count);
        _alerts.Raise(AlertSeverity.Warning, "peer", FormattableString.Invariant(
            $"peer {silent} silent for {silence.TotalMilliseconds:0} ms: told {mine.Count} of its {clients.Count} clients to leave it"));
        foreach (var address in mine)
        {
            if (_directory.Find(address) is not { } client)
                continue; // not a client of ours: we share no key with it
            var target = new ActiveClient(address, client, now);
            Interlocked.Increment(ref Counters._peerDowns);
            await SendAsync(target, new AdvisoryMessage
            {
                Type = AdvisoryType.PeerDown,
                KeyId = client.AdvisoryKeysFor(address).CurrentId,
                Reason = AdvisoryReason.PeerSilent,
                Sequence = _sequence.Next(),
                Timestamp = _time.GetUtcNow().ToUnixTimeMilliseconds(),
                Server = _self,
                Client = address,
                Subject = silent,
                Alternates = alternates,
                Score = (ushort)Math.Round(_monitor.Current.Score * 1000),
            }, reliable: true).ConfigureAwait(false);
        }
    }

    /// <summary>FNV-1a over the address: stable across processes and runs, unlike GetHashCode.</summary>
    private static int Owner(IPAddress client, int survivors)
    {
        uint hash = 2166136261;
        foreach (byte b in client.GetAddressBytes())
            hash = (hash ^ b) * 16777619;
        return (int)(hash % (uint)Math.Max(1, survivors));
    }

    [LoggerMessage(EventId = 604, Level = LogLevel.Warning, Message = "Peer {Peer} silent for {SilenceMs} ms: telling {Count} of its {Known} clients to leave it")]
    private static partial void LogSpeakingFor(ILogger logger, IPAddress peer, long silenceMs, int count, int known);

    [LoggerMessage(EventId = 605, Level = LogLevel.Information, Message = "Peer {Peer} heard again")]
    private static partial void LogPeerHeardAgain(ILogger logger, IPAddress peer);
}
