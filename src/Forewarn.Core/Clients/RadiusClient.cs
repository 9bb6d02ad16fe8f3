using System.Net;
using System.Text;
using Forewarn.Core.Store;

namespace Forewarn.Core.Clients;

/// <summary>A configured NAS as the request path sees it: secret as octets, policy, learned state.</summary>
public sealed class RadiusClient
{
    public RadiusClient(ClientRecord record)
    {
        Record = record;
        Name = record.Name;
        Secret = Encoding.UTF8.GetBytes(record.Secret);
        DeviceGroup = record.DeviceGroup;
        Network = ParseNetwork(record.Address);
    }

    public ClientRecord Record { get; }
    public string Name { get; }
    public byte[] Secret { get; }
    public string? DeviceGroup { get; }
    public IPNetwork Network { get; }
    public MessageAuthenticatorPolicy Policy => Record.MessageAuthenticator;

    /// <summary>The client's class (its thresholds); null for the default class.</summary>
    public string? Class => Record.Class;

    /// <summary>Advisory keys shared by the client's NASes, derived from the shared secret (docs/protocol.md §4.1).</summary>
    public Forewarn.Protocol.Advisory.AdvisoryKeys AdvisoryKeys => _advisoryKeys ??= Forewarn.Protocol.Advisory.AdvisoryKeys.FromSharedSecret(Secret);
    private Forewarn.Protocol.Advisory.AdvisoryKeys? _advisoryKeys;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<IPAddress, Forewarn.Protocol.Advisory.AdvisoryKeys> _perNas = new();

    /// <summary>
    /// The advisory keys of the NAS at <paramref name="nas"/>: its own, when the entry has an advisory
    /// secret (docs/protocol.md §4.1), else the shared ones.
    /// </summary>
    public Forewarn.Protocol.Advisory.AdvisoryKeys AdvisoryKeysFor(IPAddress nas)
    {
        if (Record.AdvisorySecret is not { } blockSecret)
            return AdvisoryKeys;
        if (_perNas.TryGetValue(nas, out var keys))
            return keys;
        if (_perNas.Count >= 65_536)
            _perNas.Clear();
        return _perNas[nas] = Forewarn.Protocol.Advisory.AdvisoryKeys.ForNas(Encoding.UTF8.GetBytes(blockSecret), nas);
    }

    /// <summary>Set once this client has sent a valid Message-Authenticator in an Access-Request (policy Auto).</summary>
    public bool SeenMessageAuthenticator { get; set; }

    private long _requests;

    /// <summary>Requests received from this client's NASes since it was loaded (a reload of the clients starts it again).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    public void CountRequest() => Interlocked.Increment(ref _requests);

    public bool RequiresMessageAuthenticator =>
        Policy == MessageAuthenticatorPolicy.Require || (Policy == MessageAuthenticatorPolicy.Auto && SeenMessageAuthenticator);

    public static IPNetwork ParseNetwork(string address)
    {
        if (address.Contains('/', StringComparison.Ordinal))
            return IPNetwork.Parse(address);
        var ip = IPAddress.Parse(address);
        return new IPNetwork(ip, ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
    }

    public static bool IsValidAddress(string address) =>
        address.Contains('/', StringComparison.Ordinal) ? IPNetwork.TryParse(address, out _) : IPAddress.TryParse(address, out _);
}
