using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Forewarn.Core.Aaa;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Forewarn.Server;

/// <summary>
/// The UDP side: one socket per (address, port); each has a receive loop that only receives and hands
/// the datagram to a bounded queue; a fixed set of workers take from the queue, run the pipeline and
/// send the answer. "Workers busy" and "queue depth" are therefore real, measurable quantities.
/// </summary>
public sealed class RadiusServer(
    IOptions<ForewarnOptions> options,
    RequestPipeline pipeline,
    AccountingWriter accountingWriter,
    ServerCounters counters,
    Health.LatencyWindow latency,
    TimeProvider time,
    ILogger<RadiusServer> logger) : IHostedService, IAsyncDisposable
{
    private readonly record struct WorkItem(Socket Socket, PortKind Port, byte[] Buffer, int Length, IPEndPoint Source, long ReceivedAt);

    private readonly ForewarnOptions _options = options.Value;
    private readonly List<(Socket Socket, PortKind Port)> _sockets = [];
    private readonly List<Task> _loops = [];
    private readonly CancellationTokenSource _stopping = new();
    private Channel<WorkItem>? _queue;
    private int _busy;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int BusyWorkers => Volatile.Read(ref _busy);

    // Per worker: total ticks spent processing, and when the current item started (0 when idle).
    // The sampler reads them to get utilisation over an interval instead of an instantaneous count.
    private long[] _busyTotal = [];
    private long[] _busySince = [];

    /// <summary>Total time all workers have spent processing (in-flight work included), in TimeProvider ticks.</summary>
    public long BusyTicks
    {
        get
        {
            long now = time.GetTimestamp(), total = 0;
            for (int i = 0; i < _busyTotal.Length; i++)
            {
                long since = Volatile.Read(ref _busySince[i]);
                total += Volatile.Read(ref _busyTotal[i]) + (since != 0 ? Math.Max(0, now - since) : 0);
            }
            return total;
        }
    }

    public long TickFrequency => time.TimestampFrequency;
    public int MaxWorkers => _options.Workers;
    public int QueueDepth => _queue?.Reader.Count ?? 0;
    public int QueueCapacity => _options.QueueCapacity;

    /// <summary>Completes once every socket is bound.</summary>
    public Task Started => _started.Task;

    /// <summary>The bound endpoints (ports resolved when configured as 0).</summary>
    public IReadOnlyList<(IPEndPoint Endpoint, PortKind Port)> Endpoints =>
        _sockets.Select(s => ((IPEndPoint)s.Socket.LocalEndPoint!, s.Port)).ToList();

    public IPEndPoint EndpointOf(PortKind port) => Endpoints.First(e => e.Port == port).Endpoint;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _queue = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            SingleReader = false,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
        foreach (var address in _options.ListenAddresses)
        {
            var ip = IPAddress.Parse(address);
            _sockets.Add((Bind(new IPEndPoint(ip, _options.AuthPort)), PortKind.Authentication));
            _sockets.Add((Bind(new IPEndPoint(ip, _options.AcctPort)), PortKind.Accounting));
        }
        foreach (var (socket, port) in _sockets)
        {
            LogMessages.Listening(logger, port == PortKind.Authentication ? "authentication" : "accounting", socket.LocalEndPoint!);
            _loops.Add(Task.Run(() => ReceiveLoopAsync(socket, port), CancellationToken.None));
        }
        var workers = new Task[_options.Workers];
        _busyTotal = new long[workers.Length];
        _busySince = new long[workers.Length];
        for (int i = 0; i < workers.Length; i++)
        {
            int index = i;
            workers[i] = Task.Run(() => WorkerLoopAsync(index), CancellationToken.None);
        }
        _workers = workers;
        _started.TrySetResult();
        return Task.CompletedTask;
    }

    private Task[] _workers = [];

    private Socket Bind(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.ReceiveBufferSize = _options.ReceiveBufferBytes;
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6)
                socket.DualMode = false;
            socket.Bind(endpoint);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task ReceiveLoopAsync(Socket socket, PortKind port)
    {
        var token = _stopping.Token;
        EndPoint any = new IPEndPoint(socket.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        while (!token.IsCancellationRequested)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(RadiusPacket4096);
            SocketReceiveFromResult received;
            try
            {
                received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                break;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize)
            {
                // ICMP port unreachable from an earlier send, or an oversized datagram: not fatal.
                ArrayPool<byte>.Shared.Return(buffer);
                if (e.SocketErrorCode == SocketError.MessageSize)
                    counters.OnDrop(Protocol.Radius.DropReason.TooLong);
                continue;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                if (token.IsCancellationRequested)
                    break;
                LogMessages.ReceiveFailed(logger, socket.LocalEndPoint!, e);
                continue;
            }
            var item = new WorkItem(socket, port, buffer, received.ReceivedBytes, (IPEndPoint)received.RemoteEndPoint, time.GetTimestamp());
            if (!_queue!.Writer.TryWrite(item))
            {
                ArrayPool<byte>.Shared.Return(buffer);
                counters.OnReceived();
                counters.OnDrop(Protocol.Radius.DropReason.QueueFull);
                long dropped = counters.Dropped(Protocol.Radius.DropReason.QueueFull);
                if (dropped == 1 || dropped % 1000 == 0)
                    LogMessages.QueueFull(logger, dropped);
            }
        }
    }

    /// <summary>Datagrams larger than a RADIUS packet are truncated by the receive and then dropped as too long by validation.</summary>
    private const int RadiusPacket4096 = Protocol.Radius.RadiusPacket.MaxLength + 1;

    private async Task WorkerLoopAsync(int index)
    {
        var response = new byte[Protocol.Radius.RadiusPacket.MaxLength];
        var reader = _queue!.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var item))
            {
                Interlocked.Increment(ref _busy);
                long started = time.GetTimestamp();
                Volatile.Write(ref _busySince[index], started);
                try
                {
                    int length = await pipeline.ProcessAsync(item.Buffer.AsMemory(0, item.Length), item.Source, item.Port, response, CancellationToken.None).ConfigureAwait(false);
                    if (length > 0)
                    {
                        await SendAsync(item.Socket, response.AsMemory(0, length), item.Source).ConfigureAwait(false);
                        latency.Record(time.GetElapsedTime(item.ReceivedAt));
                    }
                }
                catch (Exception e)
                {
                    // The pipeline counts and logs its own failures; this keeps a worker alive whatever escapes it.
                    counters.OnDrop(Protocol.Radius.DropReason.InternalError);
                    LogMessages.RequestFailed(logger, item.Source, e);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(item.Buffer);
                    Volatile.Write(ref _busyTotal[index], _busyTotal[index] + (time.GetTimestamp() - started));
                    Volatile.Write(ref _busySince[index], 0);
                    Interlocked.Decrement(ref _busy);
                }
            }
        }
    }

    private static async ValueTask SendAsync(Socket socket, ReadOnlyMemory<byte> response, IPEndPoint destination)
    {
        try
        {
            await socket.SendToAsync(response, SocketFlags.None, destination).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The NAS retransmits; the duplicate cache answers it without reprocessing.
        }
    }

    /// <summary>Graceful stop: stop receiving, let the workers finish what is queued, then flush accounting.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_queue is null)
            return;
        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).ConfigureAwait(false);
        int inFlight = _queue.Reader.Count + BusyWorkers;
        _queue.Writer.TryComplete();
        await Task.WhenAll(_workers).WaitAsync(cancellationToken).ConfigureAwait(false);
        await accountingWriter.DisposeAsync().ConfigureAwait(false);
        foreach (var (socket, _) in _sockets)
            socket.Dispose();
        LogMessages.Stopped(logger, inFlight);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopping.IsCancellationRequested)
            await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var (socket, _) in _sockets)
            socket.Dispose();
        _stopping.Dispose();
    }
}
