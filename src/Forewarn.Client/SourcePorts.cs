using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Forewarn.Client;

/// <summary>
/// The client's UDP source ports and the RADIUS Identifiers on each. A server tells requests apart by
/// (source address, source port, Identifier) (RFC 2865 §3, RFC 5080 §2.1.1), so each port has 256
/// Identifiers per server endpoint, handed out from a first-in first-out free list: an Identifier is never
/// given to a second request while the first is outstanding, and one just released is the last to be
/// reused (a late answer to it then finds nothing rather than someone else's request). When every
/// Identifier of every open port is taken for a server, another port is opened, up to <see cref="MaxPorts"/>;
/// beyond that, new requests wait for a free one.
/// </summary>
internal sealed class SourcePorts : IDisposable
{
    /// <summary>256 × 64 = 16,384 requests outstanding to one server endpoint.</summary>
    public const int MaxPorts = 64;

    private readonly IPAddress _local;
    private readonly Action<Port> _opened;
    private readonly Lock _lock = new();
    private readonly List<Port> _ports = [];
    private readonly ConcurrentDictionary<IPEndPoint, SemaphoreSlim> _capacity = new();
    private bool _disposed;

    public SourcePorts(IPAddress local, Action<Port> opened)
    {
        _local = local;
        _opened = opened;
        Open();
    }

    public IReadOnlyList<Port> Ports
    {
        get
        {
            lock (_lock)
                return [.. _ports];
        }
    }

    /// <summary>One source port: its socket, its free Identifiers per server, and the requests waiting for an answer on it.</summary>
    internal sealed class Port(Socket socket)
    {
        public Socket Socket { get; } = socket;
        public ConcurrentDictionary<(IPEndPoint Server, byte Identifier), ForewarnClient.Pending> Pending { get; } = new();
        internal readonly Dictionary<IPEndPoint, Queue<byte>> Free = [];

        internal Queue<byte> FreeFor(IPEndPoint server)
        {
            if (!Free.TryGetValue(server, out var free))
            {
                free = new Queue<byte>(256);
                // Start at a random Identifier so that two clients restarted together do not walk in step.
                int start = Random.Shared.Next(256);
                for (int i = 0; i < 256; i++)
                    free.Enqueue((byte)(start + i));
                Free[server] = free;
            }
            return free;
        }
    }

    /// <summary>An Identifier on a port, held until disposed.</summary>
    internal sealed class Lease(SourcePorts owner, Port port, IPEndPoint server, byte identifier) : IDisposable
    {
        private int _released;
        public Port Port { get; } = port;
        public IPEndPoint Server { get; } = server;
        public byte Identifier { get; } = identifier;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
                owner.Release(this);
        }
    }

    public async ValueTask<Lease> AcquireAsync(IPEndPoint server, CancellationToken cancellationToken)
    {
        var capacity = _capacity.GetOrAdd(server, _ => new SemaphoreSlim(MaxPorts * 256, MaxPorts * 256));
        await capacity.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                foreach (var port in _ports)
                {
                    var free = port.FreeFor(server);
                    if (free.Count > 0)
                        return new Lease(this, port, server, free.Dequeue());
                }
                // The semaphore guarantees a free Identifier exists or a port may still be opened.
                var opened = Open();
                return new Lease(this, opened, server, opened.FreeFor(server).Dequeue());
            }
        }
        catch
        {
            capacity.Release();
            throw;
        }
    }

    private void Release(Lease lease)
    {
        lock (_lock)
            lease.Port.FreeFor(lease.Server).Enqueue(lease.Identifier);
        if (_capacity.TryGetValue(lease.Server, out var capacity))
            capacity.Release();
    }

    /// <summary>Opens a port; called under the lock (or from the constructor).</summary>
    private Port Open()
    {
        var socket = new Socket(_local.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.Bind(new IPEndPoint(_local, 0));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var port = new Port(socket);
        _ports.Add(port);
        _opened(port);
        return port;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var port in _ports)
                port.Socket.Dispose();
        }
    }
}
