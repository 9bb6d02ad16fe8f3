using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Forewarn.Core.Aaa;
using Forewarn.Core.Clients;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Forewarn.Server.Health;

/// <summary>
/// The server's own RADIUS client for self-checks: a loopback socket and a random secret that exist
/// only in this process. The pipeline recognises datagrams from <see cref="Endpoint"/> as this client.
/// </summary>
public sealed class SelfClient : IDisposable
{
    private readonly Socket _v4 = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Socket _v6;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private byte _identifier;

    public SelfClient()
    {
        _v4.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _v6 = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            _v6.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        }
        catch (SocketException)
        {
            // No IPv6 loopback on this machine: IPv6 listeners are then checked through nothing.
        }
        Client = new RadiusClient(new ClientRecord("forewarn-self-check", "127.0.0.1", Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)),
            MessageAuthenticator: MessageAuthenticatorPolicy.Require));
    }

    public RadiusClient Client { get; }

    private static readonly TimeSpan RetransmitAfter = TimeSpan.FromMilliseconds(500);

    public bool IsSelf(IPEndPoint source) =>
        source.Equals(_v4.LocalEndPoint) || (_v6.IsBound && source.Equals(_v6.LocalEndPoint));

    private readonly System.Collections.Concurrent.ConcurrentDictionary<IPEndPoint, byte> _tcp = new();

    /// <summary>A TCP connection of the TACACS+ self-check, known by its local endpoint (bound before it connects).</summary>
    public bool IsSelfConnection(IPEndPoint source) => !_tcp.IsEmpty && _tcp.ContainsKey(source);

    /// <summary>
    /// Asks the TACACS+ listener at <paramref name="target"/> to authorize a command for a user who does not
    /// exist, as this process's own client: any reply that decodes with the self-check key (FAIL, normally)
    /// shows the listener accepting, the worker pool admitting and the handlers answering.
    /// </summary>
    public async Task<bool> TacacsAsync(IPEndPoint target, CancellationToken cancellationToken)
    {
        using var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Bind(new IPEndPoint(target.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Loopback : IPAddress.IPv6Loopback, 0));
        var local = (IPEndPoint)socket.LocalEndPoint!;
        _tcp[local] = 0;
        try
        {
            await socket.ConnectAsync(target, cancellationToken).ConfigureAwait(false);
            var key = System.Text.Encoding.UTF8.GetBytes(Client.Record.TacacsSecret);
            uint session = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(RandomNumberGenerator.GetBytes(4));
            var request = new Protocol.Tacacs.AuthorRequest(Protocol.Tacacs.AuthenMethod.TacacsPlus, 1, Protocol.Tacacs.AuthenType.Ascii, Protocol.Tacacs.AuthenService.Login,
                "forewarn-self-check"u8.ToArray(), "self"u8.ToArray(), [], ["service=shell"u8.ToArray()]);
            var buffer = new byte[1024];
            int length = Protocol.Tacacs.TacacsPacket.Encode(request, Protocol.Tacacs.TacacsHeader.VersionDefault, 1, Protocol.Tacacs.TacacsFlags.None, session, key, buffer);
            await socket.SendAsync(buffer.AsMemory(0, length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            int read = 0;
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                    return false;
                read += n;
                if (read >= Protocol.Tacacs.TacacsHeader.Size
                    && Protocol.Tacacs.TacacsPacket.TryReadHeader(buffer.AsSpan(0, read), out var header) == Protocol.Tacacs.TacacsError.None
                    && read >= Protocol.Tacacs.TacacsHeader.Size + header.Length)
                    return header.SessionId == session
                        && Protocol.Tacacs.TacacsPacket.TryDecode(buffer.AsSpan(0, Protocol.Tacacs.TacacsHeader.Size + header.Length), key, out _, out _) == Protocol.Tacacs.TacacsError.None;
                if (read == buffer.Length)
                    return false;
            }
        }
        catch (SocketException)
        {
            return false;
        }
        finally
        {
            _tcp.TryRemove(local, out _);
        }
    }

    /// <summary>Sends Status-Server to <paramref name="target"/> and waits for a verified answer.</summary>
    public async Task<bool> StatusServerAsync(IPEndPoint target, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var socket = target.AddressFamily == AddressFamily.InterNetwork ? _v4 : _v6;
            var buffer = new byte[RadiusPacket.MaxLength];
            var authenticator = RandomNumberGenerator.GetBytes(16);
            byte id = ++_identifier;
            var writer = new RadiusWriter(buffer, RadiusCode.StatusServer, id, authenticator);
            writer.AddMessageAuthenticator();
            int length = writer.Complete(Client.Secret);
            var answer = new byte[RadiusPacket.MaxLength];
            var any = new IPEndPoint(target.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
            // As a NAS would: the same request again every half second until the check's time limit, so
            // that one datagram lost in a burst is not taken for a dead listener.
            while (true)
            {
                await socket.SendToAsync(buffer.AsMemory(0, length), SocketFlags.None, target, cancellationToken).ConfigureAwait(false);
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                wait.CancelAfter(RetransmitAfter);
                try
                {
                    while (true)
                    {
                        var received = await socket.ReceiveFromAsync(answer, SocketFlags.None, any, wait.Token).ConfigureAwait(false);
                        var bytes = answer.AsSpan(0, received.ReceivedBytes);
                        if (RadiusPacket.TryParse(bytes, out var response) == DropReason.None && response.Identifier == id)
                            return RadiusCrypto.VerifyResponseAuthenticator(response.Bytes, authenticator, Client.Secret);
                    }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        _v4.Dispose();
        _v6.Dispose();
        _gate.Dispose();
    }
}

/// <summary>Mandatory: every RADIUS listener answers a Status-Server sent to itself (over loopback for wildcard listeners).</summary>
public sealed class RadiusListenerCheck(RadiusServer server, SelfClient self) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        foreach (var (endpoint, port) in server.Endpoints)
        {
            var target = endpoint.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, endpoint.Port)
                : endpoint.Address.Equals(IPAddress.IPv6Any) ? new IPEndPoint(IPAddress.IPv6Loopback, endpoint.Port)
                : endpoint;
            if (!await self.StatusServerAsync(target, cancellationToken).ConfigureAwait(false))
                return HealthCheckResult.Unhealthy($"{port} listener {endpoint} gave a wrong answer");
        }
        return HealthCheckResult.Healthy($"{server.Endpoints.Count} listeners answered");
    }
}

/// <summary>Mandatory: every plain TACACS+ listener answers an authorization request sent to itself (healthy when TACACS+ is off).</summary>
public sealed class TacacsListenerCheck(Func<Tacacs.TacacsServer> server, SelfClient self) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var endpoints = server().Endpoints.Where(e => !e.Tls).Select(e => e.Endpoint).ToList();
        if (endpoints.Count == 0)
            return HealthCheckResult.Healthy("TACACS+ is not listening");
        foreach (var endpoint in endpoints)
        {
            var target = endpoint.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, endpoint.Port)
                : endpoint.Address.Equals(IPAddress.IPv6Any) ? new IPEndPoint(IPAddress.IPv6Loopback, endpoint.Port)
                : endpoint;
            if (!await self.TacacsAsync(target, cancellationToken).ConfigureAwait(false))
                return HealthCheckResult.Unhealthy($"TACACS+ listener {endpoint} gave no answer");
        }
        return HealthCheckResult.Healthy($"{endpoints.Count} TACACS+ listener{(endpoints.Count == 1 ? "" : "s")} answered");
    }
}

/// <summary>Mandatory: the user store answers a query.</summary>
public sealed class UserStoreCheck(IUserStore users) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        await users.PingAsync(cancellationToken).ConfigureAwait(false) ? HealthCheckResult.Healthy("answered") : HealthCheckResult.Unhealthy("wrong answer");
}

/// <summary>Dependent: the accounting sink commits a durable write and its disk has the room it needs (see <see cref="DiskNeed"/>).</summary>
public sealed class AccountingSinkCheck(IAccountingStore store, AccountingWriter writer, DiskNeed disk) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var (full, detail) = disk.Check();
        if (full)
            return HealthCheckResult.Unhealthy(detail);
        // A failing store throws here. After a failed batch, a heartbeat that commits again means the sink
        // has recovered; the NASes retransmit what was not acknowledged.
        await store.ProbeWriteAsync(cancellationToken).ConfigureAwait(false);
        return HealthCheckResult.Healthy((writer.LastCommitFailed ? "heartbeat committed (the last batch had failed; NASes retransmit it)" : "heartbeat committed") + "; " + detail);
    }
}

/// <summary>
/// Free space on the data directory's disk against what accounting needs, from the rate at which the
/// database actually grows (forewarn.db and its WAL, measured over up to the last hour): the sink counts
/// as failed (every client deferred, so that no record is lost) only when less than
/// <see cref="HealthOptions.DiskFloorMinutes"/> of writing, or <see cref="HealthOptions.DiskMinimumFreeMiB"/>,
/// is left; a warning alert, with no zone change, once less than <see cref="HealthOptions.DiskAlertHours"/>
/// is left. A small volume with little accounting is therefore fine, and a large one filling fast is not.
/// </summary>
public sealed class DiskNeed(string dataDirectory, HealthOptions options, AlertHub alerts, TimeProvider time)
{
    private readonly Queue<(long At, long Bytes)> _history = new();
    private bool _alerted;
    private bool _full;

    /// <summary>Bytes per second the database has grown by, over the history held (0 until a minute of history exists).</summary>
    public double WriteRate { get; private set; }

    public (bool Full, string Detail) Check()
    {
        long free;
        string drive;
        try
        {
            var info = new DriveInfo(Path.GetFullPath(dataDirectory));
            free = info.AvailableFreeSpace;
            drive = info.Name;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return (false, "free space not readable");
        }
        Observe(DatabaseBytes());
        double floor = Math.Max(options.DiskMinimumFreeMiB * 1024 * 1024, WriteRate * options.DiskFloorMinutes * 60);
        double hoursLeft = WriteRate > 0 ? free / WriteRate / 3600 : double.PositiveInfinity;
        string detail = WriteRate > 0
            ? $"{free / (1024 * 1024)} MiB free on {drive}: {hoursLeft:0.#} h at {WriteRate * 3600 / (1024 * 1024):0.##} MiB/h of accounting; floor {floor / (1024 * 1024):0.#} MiB"
            : $"{free / (1024 * 1024)} MiB free on {drive}; no accounting growth measured; floor {floor / (1024 * 1024):0.#} MiB";
        bool full = free < floor;
        bool low = hoursLeft < options.DiskAlertHours;
        if (low && !_alerted)
            alerts.Raise(AlertSeverity.Warning, "disk-space", $"accounting disk space low: {detail}");
        else if (!low && _alerted)
            alerts.Raise(AlertSeverity.Info, "disk-space", $"accounting disk space sufficient again: {detail}");
        _alerted = low;
        if (full != _full && full)
            alerts.Raise(AlertSeverity.Critical, "disk-space", $"accounting disk full: {detail}");
        _full = full;
        return (full, detail);
    }

    private long DatabaseBytes()
    {
        long sum = 0;
        foreach (var name in new[] { DataDirectory.DatabaseFile, DataDirectory.DatabaseFile + "-wal" })
        {
            try
            {
                var file = new FileInfo(Path.Combine(dataDirectory, name));
                if (file.Exists)
                    sum += file.Length;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return sum;
    }

    private void Observe(long bytes)
    {
        long now = time.GetTimestamp();
        if (_history.Count == 0 || time.GetElapsedTime(_history.Last().At, now).TotalSeconds >= 10)
            _history.Enqueue((now, bytes));
        while (_history.Count > 1 && time.GetElapsedTime(_history.Peek().At, now).TotalHours > 1)
            _history.Dequeue();
        var (firstAt, firstBytes) = _history.Peek();
        double span = time.GetElapsedTime(firstAt, now).TotalSeconds;
        WriteRate = span >= 60 ? Math.Max(0, bytes - firstBytes) / span : 0;
    }
}

/// <summary>
/// Dependent: the log's destination can take writes. Standard output must still be open, and when it
/// is a file, its disk must have room (a full log disk is how logging usually fails).
/// </summary>
public sealed class LogSinkCheck : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!OperatingSystem.IsLinux())
            return Task.FromResult(HealthCheckResult.Healthy("not checked on this system"));
        FileSystemInfo? target;
        try
        {
            target = new FileInfo("/proc/self/fd/1").ResolveLinkTarget(returnFinalTarget: false);
        }
        catch (IOException e)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("standard output is closed: " + e.Message));
        }
        if (target is null)
            return Task.FromResult(HealthCheckResult.Unhealthy("standard output is closed"));
        // "pipe:[123]" or "socket:[456]" for a pipe or socket; a path for a file or terminal.
        var name = new FileInfo("/proc/self/fd/1").LinkTarget ?? target.FullName;
        if (name.Contains("(deleted)", StringComparison.Ordinal))
            return Task.FromResult(HealthCheckResult.Unhealthy($"the log file {name} was deleted"));
        if (name.StartsWith('/') && !name.StartsWith("/dev/", StringComparison.Ordinal) && DiskCheck.LowSpace(Path.GetDirectoryName(name)!) is { } low)
            return Task.FromResult(HealthCheckResult.Unhealthy(low));
        return Task.FromResult(HealthCheckResult.Healthy($"standard output: {name}"));
    }
}

internal static class DiskCheck
{
    /// <summary>A reason when the file system holding <paramref name="directory"/> has under 16 MiB free: a log that cannot be written.</summary>
    public static string? LowSpace(string directory)
    {
        try
        {
            var drive = new DriveInfo(Path.GetFullPath(directory));
            long free = drive.AvailableFreeSpace;
            if (drive.TotalSize > 0 && free < 16L * 1024 * 1024)
                return $"only {free / (1024 * 1024)} MiB free on {drive.Name}";
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return null;
        }
        return null;
    }
}
