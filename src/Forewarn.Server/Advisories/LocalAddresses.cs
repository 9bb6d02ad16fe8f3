using System.Net;
using System.Net.NetworkInformation;

namespace Forewarn.Server.Advisories;

/// <summary>
/// The addresses of this host, for a server on the wildcard address: an advisory addressed to any of
/// them (or to any loopback address, which Linux routes to itself) is addressed to this server.
/// Re-read at most every 10 s, so that an address added while running is known.
/// </summary>
internal sealed class LocalAddresses(TimeProvider time)
{
    private readonly Lock _lock = new();
    private HashSet<IPAddress> _addresses = [];
    private long _readAt;

    public bool Contains(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        if (IPAddress.IsLoopback(address))
            return true;
        lock (_lock)
        {
            if (_readAt == 0 || time.GetElapsedTime(_readAt).TotalSeconds >= 10)
            {
                _addresses = [.. NetworkInterface.GetAllNetworkInterfaces()
                    .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                    .Select(a => a.Address)];
                _readAt = time.GetTimestamp();
            }
            return _addresses.Contains(address);
        }
    }
}
