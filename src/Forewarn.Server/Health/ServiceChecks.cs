using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Forewarn.Core.Aaa;
using Forewarn.Core.Clients;
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

    public bool IsSelf(IPEndPoint source) =>
        source.Equals(_v4.LocalEndPoint) || (_v6.IsBound && source.Equals(_v6.LocalEndPoint));

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
            await socket.SendToAsync(buffer.AsMemory(0, length), SocketFlags.None, target, cancellationToken).ConfigureAwait(false);
            var answer = new byte[RadiusPacket.MaxLength];
            while (true)
            {
                var received = await socket.ReceiveFromAsync(answer, SocketFlags.None, new IPEndPoint(target.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0), cancellationToken).ConfigureAwait(false);
                var bytes = answer.AsSpan(0, received.ReceivedBytes);
                if (RadiusPacket.TryParse(bytes, out var response) == DropReason.None && response.Identifier == id)
                    return RadiusCrypto.VerifyResponseAuthenticator(response.Bytes, authenticator, Client.Secret);
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

/// <summary>Mandatory: the user store answers a query.</summary>
public sealed class UserStoreCheck(IUserStore users) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        await users.PingAsync(cancellationToken).ConfigureAwait(false) ? HealthCheckResult.Healthy("answered") : HealthCheckResult.Unhealthy("wrong answer");
}

/// <summary>Dependent: the accounting sink commits a durable write and its disk has room.</summary>
public sealed class AccountingSinkCheck(IAccountingStore store, AccountingWriter writer, string dataDirectory) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (DiskCheck.LowSpace(dataDirectory) is { } low)
            return HealthCheckResult.Unhealthy(low);
        // A failing store throws here. After a failed batch, a heartbeat that commits again means the sink
        // has recovered; the NASes retransmit what was not acknowledged.
        await store.ProbeWriteAsync(cancellationToken).ConfigureAwait(false);
        return HealthCheckResult.Healthy(writer.LastCommitFailed ? "heartbeat committed (the last batch had failed; NASes retransmit it)" : "heartbeat committed");
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
        var name = target.FullName;
        if (name.Contains("(deleted)", StringComparison.Ordinal))
            return Task.FromResult(HealthCheckResult.Unhealthy($"the log file {name} was deleted"));
        if (name.StartsWith('/') && !name.StartsWith("/dev/", StringComparison.Ordinal) && DiskCheck.LowSpace(Path.GetDirectoryName(name)!) is { } low)
            return Task.FromResult(HealthCheckResult.Unhealthy(low));
        return Task.FromResult(HealthCheckResult.Healthy($"standard output: {name}"));
    }
}

internal static class DiskCheck
{
    /// <summary>A reason when the file system holding <paramref name="directory"/> has under 1 % or 64 MiB free.</summary>
    public static string? LowSpace(string directory)
    {
        try
        {
            var drive = new DriveInfo(Path.GetFullPath(directory));
            long free = drive.AvailableFreeSpace, total = drive.TotalSize;
            if (total > 0 && (free < 64L * 1024 * 1024 || free < total / 100))
                return $"only {free / (1024 * 1024)} MiB free on {drive.Name}";
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return null;
        }
        return null;
    }
}
