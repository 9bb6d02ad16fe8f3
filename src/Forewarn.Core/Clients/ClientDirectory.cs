using System.Collections.Frozen;
using System.Net;
using Forewarn.Core.Store;

namespace Forewarn.Core.Clients;

/// <summary>
/// Finds the NAS for a source address: exact addresses first, then the longest matching CIDR block.
/// A snapshot is immutable; <see cref="Replace"/> swaps in a new one and carries learned state
/// (BlastRADIUS "seen Message-Authenticator") across by client name.
/// </summary>
public sealed class ClientDirectory
{
    private sealed record Snapshot(FrozenDictionary<IPAddress, RadiusClient> Exact, RadiusClient[] Blocks, RadiusClient[] All);

    private Snapshot _snapshot = new(FrozenDictionary<IPAddress, RadiusClient>.Empty, [], []);

    public int Count => _snapshot.All.Length;
    public IReadOnlyList<RadiusClient> All => _snapshot.All;

    public void Replace(IEnumerable<ClientRecord> records)
    {
        var previous = _snapshot.All.ToDictionary(c => c.Name, StringComparer.Ordinal);
        var exact = new Dictionary<IPAddress, RadiusClient>();
        var blocks = new List<RadiusClient>();
        var all = new List<RadiusClient>();
        foreach (var record in records)
        {
            var client = new RadiusClient(record);
            if (previous.TryGetValue(record.Name, out var old) && old.Record == record)
                client.SeenMessageAuthenticator = old.SeenMessageAuthenticator;
            all.Add(client);
            bool host = client.Network.PrefixLength == (client.Network.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            if (host)
                exact.TryAdd(client.Network.BaseAddress, client);
            else
                blocks.Add(client);
        }
        blocks.Sort((a, b) => b.Network.PrefixLength.CompareTo(a.Network.PrefixLength));
        _snapshot = new Snapshot(exact.ToFrozenDictionary(), [.. blocks], [.. all]);
    }

    public RadiusClient? Find(IPAddress source)
    {
        if (source.IsIPv4MappedToIPv6)
            source = source.MapToIPv4();
        var snapshot = _snapshot;
        if (snapshot.Exact.TryGetValue(source, out var client))
            return client;
        foreach (var block in snapshot.Blocks)
        {
            if (block.Network.Contains(source))
                return block;
        }
        return null;
    }
}
