using System.Net;
using System.Security.Cryptography;
using System.Text;
using Forewarn.Core.Store;
using Forewarn.Protocol.Advisory;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Advisories;

/// <summary>
/// Peers from the shared database: every second this server heartbeats its row (address, RADIUS, advisory
/// and TACACS+ ports) and takes the other rows heartbeated within <c>ClusterMemberStaleMs</c> as peers,
/// beside the configured ones: they exchange PEERHEALTH, name each other as alternates and speak for each
/// other when one falls silent. With no PeerSecret configured, the peer-health key is a secret the first
/// member made and stored in the database (whoever can read the database can read every RADIUS secret too,
/// so it is trusted no less than the clients table).
/// </summary>
public sealed partial class AdvisoryService
{
    /// <summary>Configured peers, and with a shared database its other members; replaced whole when membership changes.</summary>
    private volatile PeerOptions[] _peerList = [];

    private void InitialisePeers() => _peerList = [.. _options.Peers];

    private async Task MembershipLoopAsync(IClusterMembership cluster)
    {
        string name = $"{_self}:{Endpoint!.Port}";
        bool failing = false;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    if (_peerKeys is null)
                    {
                        var secret = await cluster.SharedSecretAsync("peer-health", () => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), _stop.Token).ConfigureAwait(false);
                        _peerKeys = AdvisoryKeys.FromSharedSecret(Encoding.UTF8.GetBytes(secret));
                    }
                    await cluster.HeartbeatAsync(new ClusterMember(name, _self.ToString(), _radius.EndpointOf(PortKind.Authentication).Port, Endpoint.Port, OwnTacacsPort()), _stop.Token).ConfigureAwait(false);
                    var members = await cluster.MembersAsync(TimeSpan.FromMilliseconds(_options.ClusterMemberStaleMs), _stop.Token).ConfigureAwait(false);
                    UpdatePeers(members, name);
                    if (failing)
                        LogClusterBack(_logger);
                    failing = false;
                }
                catch (Exception e) when (e is not OperationCanceledException || !_stop.IsCancellationRequested)
                {
                    // The database is away: keep the peers known last (their own health messages still come and go).
                    if (!failing)
                        LogClusterFailed(_logger, e.Message);
                    failing = true;
                }
                await Task.Delay(TimeSpan.FromSeconds(1), _time, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        try
        {
            using var leave = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await cluster.LeaveAsync(name, leave.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // best effort: a member that did not say goodbye drops out when its heartbeat goes stale
        }
    }

    private void UpdatePeers(IReadOnlyList<ClusterMember> members, string self)
    {
        var peers = new List<PeerOptions>(_options.Peers);
        foreach (var member in members)
        {
            if (member.Name == self || !IPAddress.TryParse(member.Address, out var address))
                continue;
            // Peers are known by their address: a second server on this server's own address cannot be one.
            if (address.Equals(_self) || peers.Any(p => IPAddress.Parse(p.Address).Equals(address)))
                continue;
            peers.Add(new PeerOptions { Address = member.Address, AuthPort = member.AuthPort, AdvisoryPort = member.AdvisoryPort });
        }
        var before = _peerList;
        if (before.Length == peers.Count && before.Zip(peers).All(p => p.First.Address == p.Second.Address && p.First.AuthPort == p.Second.AuthPort && p.First.AdvisoryPort == p.Second.AdvisoryPort))
            return;
        _peerList = [.. peers];
        var named = string.Join(", ", peers.Select(p => $"{p.Address}:{p.AuthPort}"));
        LogClusterPeers(_logger, peers.Count, named);
    }

    [LoggerMessage(EventId = 620, Level = LogLevel.Information, Message = "Cluster peers: {Count} ({Peers})")]
    private static partial void LogClusterPeers(ILogger logger, int count, string peers);

    [LoggerMessage(EventId = 621, Level = LogLevel.Warning, Message = "Cluster membership cannot reach the database ({Reason}); keeping the peers known last")]
    private static partial void LogClusterFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 622, Level = LogLevel.Information, Message = "Cluster membership reaches the database again")]
    private static partial void LogClusterBack(ILogger logger);

    [LoggerMessage(EventId = 623, Level = LogLevel.Warning, Message = "Cluster membership is off: the server listens on the wildcard address; set Forewarn:Advisory:Address to the address the other servers know it by")]
    private static partial void LogClusterNeedsAddress(ILogger logger);
}
