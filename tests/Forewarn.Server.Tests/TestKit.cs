using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;
using Forewarn.Server;
using Forewarn.Storage.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Tests;

/// <summary>A Forewarn server in this process on free loopback ports, with its own data directory.</summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly IHost _host;

    public string DataDirectory { get; }
    public IPEndPoint Auth { get; }
    public IPEndPoint Acct { get; }
    public IForewarnStore Store => _host.Services.GetRequiredService<IForewarnStore>();
    public ServerCounters Counters => _host.Services.GetRequiredService<ServerCounters>();
    public IServiceProvider Services => _host.Services;

    private TestServer(IHost host, string dataDirectory)
    {
        _host = host;
        DataDirectory = dataDirectory;
        var server = host.Services.GetRequiredService<RadiusServer>();
        Auth = server.EndpointOf(PortKind.Authentication);
        Acct = server.EndpointOf(PortKind.Accounting);
    }

    public static async Task<TestServer> StartAsync(Dictionary<string, string?>? settings = null, string? dataDirectory = null, Action<IServiceCollection>? configure = null)
    {
        var directory = dataDirectory ?? Path.Combine(Path.GetTempPath(), "forewarn-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var overrides = new Dictionary<string, string?>
        {
            ["Forewarn:Listen:0"] = "127.0.0.1",
            ["Forewarn:AuthPort"] = "0",
            ["Forewarn:AcctPort"] = "0",
            ["Forewarn:Advisory:Port"] = "0",
            ["Forewarn:Tacacs:Port"] = "0",
            ["Forewarn:PasswordIterations"] = "1000",
        };
        foreach (var (key, value) in settings ?? [])
            overrides[key] = value;
        var host = ServerHost.Build(directory, null, overrides, LogLevel.Warning, configure is null ? null : (services, _) => configure(services));
        await ServerServices.SeedDefaultsAsync(host.Services.GetRequiredService<IForewarnStore>());
        await host.StartAsync();
        return new TestServer(host, directory);
    }

    public async Task AddUserAsync(string name, string password, AuthMethods methods = AuthMethods.All, IReadOnlyList<ReplyItem>? reply = null, IReadOnlyList<CheckItem>? checks = null, string? group = null, int iterations = 1000)
    {
        var sealer = _host.Services.GetRequiredService<Core.Aaa.PasswordSealer>();
        var credential = Core.Aaa.Credentials.Create(password, methods, sealer, iterations);
        var user = new UserRecord(name, methods, credential, group, reply ?? [], checks ?? []);
        if (!await Store.AddUserAsync(user))
            await Store.UpdateUserAsync(user);
        // The running server caches users and would see the change within a second; tests need it now.
        _host.Services.GetRequiredService<CachedUserStore>().Invalidate();
    }

    /// <summary>Adds a client and waits until the running server has loaded it.</summary>
    public async Task AddClientAsync(ClientRecord client)
    {
        await Store.RemoveClientAsync(client.Name);
        await Store.AddClientAsync(client);
        await _host.Services.GetRequiredService<ClientLoader>().ReloadAsync(CancellationToken.None);
    }

    public ValueTask DisposeAsync() => DisposeAsync(keepData: false);

    /// <summary>Stops the server; <paramref name="keepData"/> leaves its data directory for a restart.</summary>
    public async ValueTask DisposeAsync(bool keepData)
    {
        await _host.StopAsync();
        _host.Dispose();
        if (keepData)
            return;
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Sends hand-built packets over a real UDP socket, as a NAS would.</summary>
public sealed class UdpPeer : IDisposable
{
    private readonly Socket _socket;

    public UdpPeer(string localAddress = "127.0.0.1")
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _socket.Bind(new IPEndPoint(IPAddress.Parse(localAddress), 0));
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    /// <summary>The answer, or null if none came within the timeout.</summary>
    public async Task<byte[]?> ExchangeAsync(IPEndPoint server, byte[] packet, int timeoutMs = 2000)
    {
        await _socket.SendToAsync(packet, SocketFlags.None, server);
        return await ReceiveAsync(timeoutMs);
    }

    public async Task<byte[]?> ReceiveAsync(int timeoutMs = 2000)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(timeoutMs);
        try
        {
            var result = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cts.Token);
            return buffer.AsSpan(0, result.ReceivedBytes).ToArray();
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    public void Dispose() => _socket.Dispose();

    public static byte[] RandomAuthenticator() => RandomNumberGenerator.GetBytes(16);

    /// <summary>Builds an Access-Request with a PAP password; <paramref name="extra"/> may add attributes before Complete.</summary>
    public static byte[] AccessRequest(byte id, string user, string password, string secret, bool messageAuthenticator = true, WriterAction? extra = null)
    {
        var buffer = new byte[4096];
        var authenticator = RandomAuthenticator();
        var writer = new RadiusWriter(buffer, RadiusCode.AccessRequest, id, authenticator);
        if (messageAuthenticator)
            writer.AddMessageAuthenticator();
        writer.AddText(AttributeTypes.UserName, user);
        Span<byte> hidden = stackalloc byte[128];
        int length = RadiusCrypto.HideUserPassword(System.Text.Encoding.UTF8.GetBytes(password), System.Text.Encoding.UTF8.GetBytes(secret), authenticator, hidden);
        writer.Add(AttributeTypes.UserPassword, hidden[..length]);
        extra?.Invoke(ref writer);
        return buffer.AsSpan(0, writer.Complete(System.Text.Encoding.UTF8.GetBytes(secret))).ToArray();
    }

    /// <summary>A Status-Server (RFC 5997), Message-Authenticator included as it requires.</summary>
    public static byte[] StatusServer(byte id, string secret)
    {
        var buffer = new byte[4096];
        var writer = new RadiusWriter(buffer, RadiusCode.StatusServer, id, RandomAuthenticator());
        writer.AddMessageAuthenticator();
        return buffer.AsSpan(0, writer.Complete(System.Text.Encoding.UTF8.GetBytes(secret))).ToArray();
    }

    public delegate void WriterAction(ref RadiusWriter writer);
}

/// <summary>Runs an external program (a real peer such as radtest) with a time limit.</summary>
public static class Peer
{
    public sealed record Result(int ExitCode, string Output, string Error)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
    }

    /// <summary>The program's path; missing, the test is skipped with the reason (locally) or fails (under CI=true).</summary>
    public static string Require(string program)
    {
        Requires.Program(program);
        return Find(program)!;
    }

    /// <summary>The program's path, or null when it is not installed.</summary>
    public static string? Find(string program)
    {
        if (Path.IsPathRooted(program))
            return File.Exists(program) ? program : null;
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            var path = Path.Combine(directory, program);
            if (File.Exists(path))
                return path;
        }
        return null;
    }

    public static async Task<Result> RunAsync(string program, IEnumerable<string> arguments, string? input = null, int timeoutMs = 30_000)
    {
        var info = new ProcessStartInfo(Require(program))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
            info.ArgumentList.Add(argument);
        using var process = Process.Start(info)!;
        if (input is not null)
            await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeoutMs);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} did not finish within {timeoutMs} ms");
        }
        return new Result(process.ExitCode, await output, await error);
    }
}

/// <summary>
/// What a test needs from the machine. Missing locally, the test is skipped with the reason; under
/// CI=true it fails, so that CI proves every peer and capability was really there.
/// </summary>
public static class Requires
{
    public static bool UnderCi => Environment.GetEnvironmentVariable("CI") == "true";

    public static void That(bool available, string reason)
    {
        if (available)
            return;
        if (UnderCi)
            throw new InvalidOperationException($"CI=true and this test cannot run: {reason}");
        throw new SkipException(reason);
    }

    /// <summary>A program on PATH (a real peer such as radtest, radclient, eapol_test).</summary>
    public static void Program(string program) =>
        That(Peer.Find(program) is not null, $"'{program}' is not installed (.ci/run installs it)");

    public static void Root(string why) => That(Environment.UserName == "root", $"needs root: {why}");
}

/// <summary>Ports no other program holds: a test never assumes 1812–1815 are free (a system FreeRADIUS holds them on every address).</summary>
public static class FreePorts
{
    /// <summary>A TCP port free on <paramref name="address"/> now.</summary>
    public static int Tcp(IPAddress address)
    {
        using var listener = new System.Net.Sockets.TcpListener(address, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A UDP port free on <paramref name="address"/> and on the wildcard address now (the kernel's choice for port 0).</summary>
    public static int Udp(IPAddress address)
    {
        while (true)
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(address, 0));
            int port = ((IPEndPoint)socket.LocalEndPoint!).Port;
            // A port bound on the wildcard address by another program would refuse a bind on any address later.
            try
            {
                using var wildcard = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                socket.Dispose();
                wildcard.Bind(new IPEndPoint(address.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, port));
                return port;
            }
            catch (SocketException)
            {
            }
        }
    }
}
