using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Forewarn.Client.Net;
using Forewarn.Core.Aaa;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Forewarn.Server;

/// <summary>
/// The UDP side. One socket per (address, port), each read by <see cref="ForewarnOptions.Receivers"/>
/// threads blocked in receive (the kernel wakes one per datagram). A receiving thread runs the request
/// to completion itself: validate, handle, answer, with no hand-off, no task and no allocation when the
/// handler completes at once (an Access-Request with its user cached). A request that has to wait
/// (accounting until its record is on disk, a user not yet cached) continues asynchronously and answers
/// when done, while its thread goes back to receiving.
/// Admission goes through the <see cref="WorkerPool"/> the TACACS+ listener shares: a worker free and
/// nothing queued, the datagram is processed at once; otherwise it waits in the pool's bounded queue,
/// and beyond that it is dropped (counted as QueueFull).
/// </summary>
public sealed class RadiusServer(
    IOptions<ForewarnOptions> options,
    RequestPipeline pipeline,
    WorkerPool pool,
    AccountingWriter accountingWriter,
    ServerCounters counters,
    Health.LatencyWindow latency,
    TimeProvider time,
    ILogger<RadiusServer> logger,
    Core.Health.DrillState? drill = null) : IHostedService, IAsyncDisposable
{
    /// <summary>
    /// A bound socket; <paramref name="KernelReceive"/> when datagrams are received with recvmsg (for the
    /// kernel's arrival stamp, or packet info), <paramref name="PacketInfo"/> when it is on the wildcard address and the kernel says where each
    /// datagram was sent (the answer then leaves from that address).
    /// </summary>
    private sealed record Listener(Socket Socket, PortKind Port, bool KernelReceive, bool PacketInfo)
    {
        public IPEndPoint LocalEndPoint { get; } = (IPEndPoint)Socket.LocalEndPoint!;
        /// <summary>The listener's own address, for datagrams whose destination the kernel does not report.</summary>
        public Destination Bound { get; } = new(((IPEndPoint)Socket.LocalEndPoint!).Address, 0);
    }

    /// <summary>A datagram waiting for a worker. It owns its buffer and a copy of its source address.</summary>
    private sealed class Queued(RadiusServer server, Listener listener, byte[] buffer, int length, IPEndPoint source, SocketAddress address, Destination local, long receivedAt) : IQueuedWork
    {
        public long ReceivedAt => receivedAt;

        public void Run(long started)
        {
            var response = ArrayPool<byte>.Shared.Rent(Protocol.Radius.RadiusPacket.MaxLength);
            if (server.Process(listener, buffer, length, source, address, addressIsShared: false, local, receivedAt, response, started))
            {
                ArrayPool<byte>.Shared.Return(buffer);
                ArrayPool<byte>.Shared.Return(response);
            }
        }

        public void Expire()
        {
            ArrayPool<byte>.Shared.Return(buffer);
            server.Counters.OnReceived();
            server.Counters.OnDrop(Protocol.Radius.DropReason.QueueTimeout);
        }
    }

    private ServerCounters Counters => counters;
    private readonly ForewarnOptions _options = options.Value;
    // Kernel arrival times are wall-clock: they convert to timestamps only on the system's own clock.
    private readonly bool _kernelTimestamps = ReferenceEquals(time, TimeProvider.System);
    private readonly List<Listener> _listeners = [];
    private readonly List<Thread> _receivers = [];
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _stopping;
    private readonly Core.Logging.LogLimiter _sendErrors = new(time, TimeSpan.FromSeconds(10));

    /// <summary>Completes once every socket is bound.</summary>
    public Task Started => _started.Task;

    /// <summary>The bound endpoints (ports resolved when configured as 0).</summary>
    public IReadOnlyList<(IPEndPoint Endpoint, PortKind Port)> Endpoints =>
        _listeners.Select(l => ((IPEndPoint)l.Socket.LocalEndPoint!, l.Port)).ToList();

    public IPEndPoint EndpointOf(PortKind port) => Endpoints.First(e => e.Port == port).Endpoint;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var address in _options.ListenAddresses)
        {
            var ip = IPAddress.Parse(address);
            _listeners.Add(Listen(new IPEndPoint(ip, _options.AuthPort), PortKind.Authentication));
            _listeners.Add(Listen(new IPEndPoint(ip, _options.AcctPort), PortKind.Accounting));
        }
        int receivers = _options.Receivers > 0 ? _options.Receivers : Math.Max(2, Environment.ProcessorCount);
        foreach (var listener in _listeners)
        {
            LogMessages.Listening(logger, listener.Port == PortKind.Authentication ? "authentication" : "accounting", listener.Socket.LocalEndPoint!);
            // Without recvmsg (other systems), one thread per socket: several blocked in Poll all wake for one
            // datagram, and the losers' ReceiveFrom would wait out the timeout and throw.
            for (int i = 0; i < (listener.KernelReceive ? receivers : 1); i++)
            {
                var thread = new Thread(() => ReceiveLoop(listener)) { IsBackground = true, Name = $"radius-{listener.Port}-{i}" };
                thread.Start();
                _receivers.Add(thread);
            }
        }
        _started.TrySetResult();
        return Task.CompletedTask;
    }

    private Listener Listen(IPEndPoint endpoint, PortKind port)
    {
        var socket = Bind(endpoint, port);
        bool wildcard = Datagrams.IsWildcard(socket);
        bool packetInfo = wildcard && Datagrams.EnablePacketInfo(socket);
        bool timestamps = _kernelTimestamps && Datagrams.EnableTimestamps(socket);
        if (wildcard && !packetInfo)
            LogMessages.WildcardWithoutPacketInfo(logger, socket.LocalEndPoint!);
        // Both come through recvmsg.
        return new Listener(socket, port, timestamps || packetInfo, packetInfo);
    }

    private Socket Bind(IPEndPoint endpoint, PortKind port)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.ReceiveBufferSize = _options.ReceiveBufferBytes;
            // Receivers wake up now and then to notice a stop; a datagram never waits for this.
            socket.ReceiveTimeout = 250;
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6)
                socket.DualMode = false;
            socket.Bind(endpoint);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            var what = port == PortKind.Authentication ? "authentication" : "accounting";
            throw new StartupException(e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => $"cannot listen for RADIUS {what} on udp {endpoint}: the port is in use by another program (another RADIUS server? `ss -ulpn 'sport = :{endpoint.Port}'` names it); choose another with --{(port == PortKind.Authentication ? "auth" : "acct")}-port.",
                SocketError.AddressNotAvailable => $"cannot listen for RADIUS {what} on udp {endpoint}: no interface of this host has that address (Forewarn:Listen).",
                SocketError.AccessDenied => $"cannot listen for RADIUS {what} on udp {endpoint}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE).",
                _ => $"cannot listen for RADIUS {what} on udp {endpoint}: {e.Message}.",
            });
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Datagrams larger than a RADIUS packet are truncated by the receive and then dropped as too long by validation.</summary>
    private const int ReceiveSize = Protocol.Radius.RadiusPacket.MaxLength + 1;

    private void ReceiveLoop(Listener listener)
    {
        var socket = listener.Socket;
        var address = new SocketAddress(socket.AddressFamily);
        // Source endpoints this thread has seen: a NAS sends from the same few ports, so no IPEndPoint per datagram.
        var endpoints = new Dictionary<SocketAddress, IPEndPoint>();
        var template = new IPEndPoint(socket.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        // Destination addresses of a wildcard listener, likewise.
        var locals = new Dictionary<UInt128, IPAddress>();
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ReceiveSize);
        byte[] response = ArrayPool<byte>.Shared.Rent(Protocol.Radius.RadiusPacket.MaxLength);
        while (!_stopping)
        {
            if (!Receive(listener, buffer, address, out int length, out long receivedAt, out var destination))
                continue;
            if (drill is not null && drill.DropNow())
            {
                counters.OnDrop(Protocol.Radius.DropReason.Drill);
                continue;
            }
            var local = destination.IsKnown ? Datagrams.DestinationOf(destination, locals) : listener.Bound;
            if (!endpoints.TryGetValue(address, out var source))
            {
                if (endpoints.Count >= 65_536)
                    endpoints.Clear();
                var key = Copy(address);
                source = (IPEndPoint)template.Create(key);
                endpoints[key] = source;
            }

            if (pool.TryAdmitNow())
            {
                if (!Process(listener, buffer, length, source, address, addressIsShared: true, local, receivedAt, response, pool.Begin()))
                {
                    // The request went asynchronous and took both buffers with it.
                    buffer = ArrayPool<byte>.Shared.Rent(ReceiveSize);
                    response = ArrayPool<byte>.Shared.Rent(Protocol.Radius.RadiusPacket.MaxLength);
                }
                continue;
            }
            Enqueue(new Queued(this, listener, buffer, length, source, Copy(address), local, receivedAt), buffer);
            buffer = ArrayPool<byte>.Shared.Rent(ReceiveSize);
            pool.Pump();
        }
        ArrayPool<byte>.Shared.Return(buffer);
        ArrayPool<byte>.Shared.Return(response);
    }

    /// <summary>
    /// Waits for one datagram; false when there is none to process (a timeout that lets the loop see a
    /// stop, a counted drop, a receive error). <paramref name="receivedAt"/> is when it reached the host:
    /// the kernel's timestamp where there is one, so that time spent in the socket buffer counts.
    /// </summary>
    private bool Receive(Listener listener, byte[] buffer, SocketAddress address, out int length, out long receivedAt, out Datagrams.RawDestination destination)
    {
        var socket = listener.Socket;
        receivedAt = 0;
        destination = default;
        if (listener.KernelReceive)
        {
            Datagrams.Result result;
            long arrival;
            int errno;
            try
            {
                result = Datagrams.Receive(socket, buffer.AsSpan(0, ReceiveSize), address, out length, out arrival, out destination, out errno);
            }
            catch (ObjectDisposedException)
            {
                length = 0;
                return false;
            }
            switch (result)
            {
                case Datagrams.Result.Received:
                case Datagrams.Result.Truncated:
                    // A truncated datagram holds ReceiveSize octets, one more than RADIUS allows: validation drops it as TooLong.
                    receivedAt = _kernelTimestamps ? Datagrams.ToTimestamp(arrival, time) : time.GetTimestamp();
                    return true;
                case Datagrams.Result.TimedOut:
                    pool.Pump();
                    // A socket .NET has made non-blocking would return at once: wait here instead of spinning.
                    // A stop (or a failed start) may dispose the socket meanwhile: the loop then sees _stopping.
                    try
                    {
                        socket.Poll(250_000, SelectMode.SelectRead);
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                    return false;
                default:
                    if (!_stopping)
                        LogMessages.ReceiveFailed(logger, listener.LocalEndPoint, Marshal.GetPInvokeErrorMessage(errno));
                    return false;
            }
        }
        try
        {
            // Wait without an exception: an idle receiver on ReceiveTimeout would throw four times a second.
            if (!socket.Poll(250_000, SelectMode.SelectRead))
            {
                pool.Pump();
                length = 0;
                return false;
            }
            length = socket.ReceiveFrom(buffer.AsSpan(0, ReceiveSize), SocketFlags.None, address);
            receivedAt = time.GetTimestamp();
            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock or SocketError.ConnectionReset)
        {
            // A timeout lets the loop see a stop; ConnectionReset is an ICMP port unreachable from an earlier send.
            pool.Pump();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
        {
            counters.OnDrop(Protocol.Radius.DropReason.TooLong);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            if (!_stopping)
                LogMessages.ReceiveFailed(logger, listener.LocalEndPoint, e.Message);
        }
        length = 0;
        return false;
    }

    private static SocketAddress Copy(SocketAddress address)
    {
        var copy = new SocketAddress(address.Family, address.Size);
        address.Buffer.Span[..address.Size].CopyTo(copy.Buffer.Span);
        return copy;
    }

    private void Enqueue(Queued item, byte[] buffer)
    {
        if (pool.TryEnqueue(item))
            return;
        ArrayPool<byte>.Shared.Return(buffer);
        // The pipeline never sees it, so it is counted as received here.
        counters.OnReceived();
        counters.OnDrop(Protocol.Radius.DropReason.QueueFull);
        long dropped = counters.Dropped(Protocol.Radius.DropReason.QueueFull);
        if (dropped == 1 || dropped % 1000 == 0)
            LogMessages.QueueFull(logger, dropped);
    }

    /// <summary>
    /// Runs one request on a worker already acquired. Returns true when it finished here (the caller keeps
    /// its buffers); false when it continues asynchronously, owning <paramref name="buffer"/> and <paramref name="response"/>.
    /// </summary>
    private bool Process(Listener listener, byte[] buffer, int length, IPEndPoint source, SocketAddress address, bool addressIsShared, in Destination local, long receivedAt, byte[] response, long started)
    {
        ValueTask<Handled> pending;
        try
        {
            pending = pipeline.ProcessAsync(buffer.AsMemory(0, length), source, local.Address!, listener.Port, response, CancellationToken.None, receivedAt);
        }
        catch (Exception e)
        {
            Failed(source, e);
            pool.Release(started);
            return true;
        }
        if (pending.IsCompleted)
        {
            Handled answer = default;
            try
            {
                answer = pending.GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                Failed(source, e);
            }
            Answer(listener, response, answer, address, local, receivedAt, started);
            pool.Release(started);
            return true;
        }
        // The receiving thread reuses its address for the next datagram: a request that outlives this call keeps a copy.
        _ = CompleteLaterAsync(pending, listener, buffer, response, source, addressIsShared ? Copy(address) : address, local, receivedAt, started);
        return false;
    }

    private async Task CompleteLaterAsync(ValueTask<Handled> pending, Listener listener, byte[] buffer, byte[] response, IPEndPoint source, SocketAddress address, Destination local, long receivedAt, long started)
    {
        Handled answer = default;
        try
        {
            answer = await pending.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Failed(source, e);
        }
        Answer(listener, response, answer, address, local, receivedAt, started);
        ArrayPool<byte>.Shared.Return(buffer);
        ArrayPool<byte>.Shared.Return(response);
        pool.Release(started);
        pool.Pump();
    }

    private void Answer(Listener listener, byte[] response, Handled answer, SocketAddress address, in Destination local, long receivedAt, long started)
    {
        int length = answer.Length;
        if (length <= 0)
            return;
        // Queueing delay, from arrival at the host (the kernel's stamp) to a worker starting on it, of the
        // requests answered: a flood of invalid datagrams is dropped, counted, and no evidence of anything.
        pool.RecordWait(receivedAt, started);
        // On the wildcard address the answer leaves from the address the request was sent to: a NAS
        // matches answers by source (RFC 2865 §3), and the kernel's own choice may be another address.
        string? error = null;
        if (listener.PacketInfo)
        {
            int errno = Datagrams.SendFrom(listener.Socket, response.AsSpan(0, length), address, local);
            if (errno != 0)
                error = Marshal.GetPInvokeErrorMessage(errno);
        }
        else
        {
            try
            {
                listener.Socket.SendTo(response.AsSpan(0, length), SocketFlags.None, address);
            }
            catch (SocketException e)
            {
                error = e.Message;
            }
            catch (ObjectDisposedException)
            {
                error = "stopping";
            }
        }
        if (error is not null)
            SendFailed(listener, address, error);
        // Time held on purpose (a PBKDF2 derivation) is the operator's choice, not ill health: the slow-work probe watches its wait.
        var elapsed = time.GetElapsedTime(receivedAt) - TimeSpan.FromSeconds((double)answer.DeliberateTicks / time.TimestampFrequency);
        // Only answers the service worked for are evidence of its latency (see Handled.WithoutService).
        if (!answer.WithoutService)
            latency.Record(elapsed);
        Health.ServerMetrics.RequestLatency(elapsed);
    }

    /// <summary>The NAS retransmits and the duplicate cache answers it; the failure is counted, and logged at most every 10 s.</summary>
    private void SendFailed(Listener listener, SocketAddress address, string error)
    {
        long count = counters.OnSendError();
        if (_sendErrors.ShouldLog("send", out _))
        {
            var template = new IPEndPoint(listener.Socket.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
            LogMessages.SendFailed(logger, listener.LocalEndPoint, template.Create(address), error, count);
        }
    }

    private void Failed(IPEndPoint source, Exception e)
    {
        // The pipeline counts and logs its own failures; this keeps the server alive whatever escapes it.
        counters.OnDrop(Protocol.Radius.DropReason.InternalError);
        LogMessages.RequestFailed(logger, source, e);
    }

    /// <summary>Graceful stop: stop receiving, let queued and in-flight requests finish and answer, then flush accounting.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_listeners.Count == 0 || _stopping)
            return;
        _stopping = true;
        await Task.Run(() => _receivers.ForEach(t => t.Join()), CancellationToken.None).ConfigureAwait(false);
        int inFlight = pool.QueueDepth + pool.BusyWorkers;
        while (pool.QueueDepth + pool.BusyWorkers > 0 && !cancellationToken.IsCancellationRequested)
        {
            pool.Pump();
            await Task.Delay(5, CancellationToken.None).ConfigureAwait(false);
        }
        await accountingWriter.DisposeAsync().ConfigureAwait(false);
        foreach (var listener in _listeners)
            listener.Socket.Dispose();
        LogMessages.Stopped(logger, inFlight);
    }

    public ValueTask DisposeAsync()
    {
        _stopping = true;
        foreach (var listener in _listeners)
            listener.Socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
