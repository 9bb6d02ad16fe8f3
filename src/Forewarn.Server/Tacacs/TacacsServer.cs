using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Forewarn.Core.Aaa.Tacacs;
using Forewarn.Core.Clients;
using Forewarn.Core.Deferrals;
using Forewarn.Core.Health;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Tacacs;

/// <summary>
/// The TACACS+ side (RFC 8907, and RFC 9887 over TLS 1.3): TCP listeners on Kestrel's transport, one
/// <see cref="TacacsConnection"/> per connection. Admission goes through the same <see cref="WorkerPool"/>
/// as RADIUS, so either protocol's load moves the score; the client directory, the registry the deferral
/// side reads, the credential check and the accounting writer are shared too.
/// Deferral uses what TCP gives a device that runs none of our code: a client this server has deferred
/// (drain, degradation) gets its sessions in progress finished, then its idle connections closed and new
/// ones refused at once, so it moves to its next server now rather than after its timeout.
/// </summary>
public sealed partial class TacacsServer(
    TacacsOptions options,
    ForewarnOptions server,
    ClientDirectory clients,
    ClientRegistry registry,
    HealthMonitor monitor,
    Health.SelfClient self,
    TacacsConnection.Services services,
    TimeProvider time,
    ILogger<TacacsServer> logger) : IHostedService, IAsyncDisposable
{
    private readonly List<(ListenOptions Listen, bool Tls)> _listens = [];
    private readonly ConcurrentDictionary<TacacsConnection, byte> _open = new();
    private readonly ConcurrentDictionary<IPAddress, int> _perClient = new();
    private readonly Core.Logging.LogLimiter _refusals = new(time, TimeSpan.FromSeconds(10));
    private WebApplication? _app;
    private ITimer? _sweep;
    private X509Certificate2Collection? _clientCas;

    public TacacsCounters Counters => services.Counters;

    /// <summary>The bound endpoints, ports resolved (empty when TACACS+ is off).</summary>
    public IReadOnlyList<(IPEndPoint Endpoint, bool Tls)> Endpoints => [.. _listens.Select(l => (l.Listen.IPEndPoint!, l.Tls))];

    public IPEndPoint? EndpointOf(bool tls) => Endpoints.Where(e => e.Tls == tls).Select(e => e.Endpoint).FirstOrDefault();

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Enabled)
            return;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var certificate = options.TlsEnabled ? LoadCertificate() : null;
        _clientCas = options.TlsEnabled ? LoadClientCas() : null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxConcurrentConnections = options.MaxConnections;
            foreach (var address in server.ListenAddresses)
            {
                var ip = IPAddress.Parse(address);
                k.Listen(ip, options.Port, listen =>
                {
                    listen.Run(connection => RunAsync(connection, tls: false));
                    _listens.Add((listen, false));
                });
                if (certificate is not null)
                {
                    k.Listen(ip, options.TlsPort, listen =>
                    {
                        listen.UseHttps(Tls(certificate));
                        listen.Run(connection => RunAsync(connection, tls: true));
                        _listens.Add((listen, true));
                    });
                }
            }
        });
        var app = builder.Build();
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            _listens.Clear();
            var socket = e.InnerException as SocketException;
            if (socket?.SocketErrorCode == SocketError.AccessDenied && !options.PortConfigured)
            {
                // The default port needs root: RADIUS still serves; the operator is told how to get TACACS+.
                LogNoPrivilege(logger, options.Port);
                return;
            }
            throw new StartupException(socket?.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => $"cannot listen for TACACS+ on tcp port {options.Port} or {options.TlsPort}: the port is in use by another program (another TACACS+ server? `ss -tlpn 'sport = :{options.Port}'` names it); choose another with --tacacs-port.",
                SocketError.AccessDenied => $"cannot listen for TACACS+ on tcp port {options.Port}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); choose another with --tacacs-port.",
                _ => $"cannot listen for TACACS+: {e.InnerException?.Message ?? e.Message}.",
            });
        }
        _app = app;
        foreach (var (listen, tls) in _listens)
            LogListening(logger, tls ? "TACACS+ over TLS 1.3" : "TACACS+", listen.IPEndPoint!);
        _sweep = time.CreateTimer(_ => Sweep(), null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
    }

    private HttpsConnectionAdapterOptions Tls(X509Certificate2 certificate) => new()
    {
        ServerCertificate = certificate,
        // RFC 9887 §3: TLS 1.3 only; no fall-back. SslStream offers no early data, so 0-RTT never happens.
        SslProtocols = SslProtocols.Tls13,
        ClientCertificateMode = ClientCertificateMode.RequireCertificate,
        // Revocation lists are not configured yet: the chain to the configured CA decides (ValidateClientCertificate).
        CheckCertificateRevocation = false,
        ClientCertificateValidation = (certificate, chain, errors) => ValidateClientCertificate(certificate, chain, errors),
        HandshakeTimeout = TimeSpan.FromSeconds(options.PacketTimeoutSeconds),
        OnAuthenticate = (_, ssl) =>
        {
            ssl.ApplicationProtocols = null;
            // The handshake's own chain build trusts the configured CA alone: one build, and no system store to load.
            ssl.CertificateChainPolicy = ClientChainPolicy();
        },
    };

    private X509ChainPolicy ClientChainPolicy()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.AddRange(_clientCas!);
        policy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.2"));
        return policy;
    }

    /// <summary>The device's certificate must chain to the configured client CA (and only to it).</summary>
    private bool ValidateClientCertificate(X509Certificate2? certificate, X509Chain? chain, System.Net.Security.SslPolicyErrors errors)
    {
        if (certificate is null || _clientCas is null)
            return false;
        // The chain was built under ClientChainPolicy (the configured CA, client-authentication purpose); a name mismatch does not apply to clients.
        bool valid = (errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateNameMismatch) == System.Net.Security.SslPolicyErrors.None;
        if (!valid && _refusals.ShouldLog("certificate", out long others))
            LogBadCertificate(logger, certificate.Subject, chain is null ? errors.ToString() : string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim())), others);
        return valid;
    }

    private X509Certificate2 LoadCertificate() =>
        TlsFiles.LoadServer("Forewarn:Tacacs:CertificateFile", options.CertificateFile!, options.CertificateKeyFile).Leaf;

    private X509Certificate2Collection LoadClientCas()
    {
        if (options.ClientCaFile is not { Length: > 0 } file || !File.Exists(file))
            throw new StartupException("TACACS+ over TLS needs Forewarn:Tacacs:ClientCaFile, the CA that signs the devices' certificates (RFC 9887 requires mutual authentication).");
        return TlsFiles.LoadCas("Forewarn:Tacacs:ClientCaFile", file);
    }

    private async Task RunAsync(ConnectionContext connection, bool tls)
    {
        if (connection.RemoteEndPoint is not IPEndPoint remote)
            return;
        var address = remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address;
        // The listener check comes from a loopback socket of this process, with its own key.
        bool isSelf = !tls && self.IsSelfConnection(new IPEndPoint(address, remote.Port));
        var client = isSelf ? self.Client : clients.Find(address);
        if (client is null)
        {
            Refused(TacacsDrop.UnknownClient, address, "no client entry covers it");
            return;
        }
        if (tls && !IdentityMatches(connection, client, address))
        {
            Refused(TacacsDrop.UnknownClient, address, $"its certificate names neither {client.Name} nor {address}");
            return;
        }
        if (!isSelf && Refuses(client, address))
        {
            Refused(TacacsDrop.Deferred, address, "this server is deferring it");
            return;
        }
        int count = _perClient.AddOrUpdate(address, 1, (_, n) => n + 1);
        try
        {
            if (count > options.MaxConnectionsPerClient)
            {
                Refused(TacacsDrop.ConnectionLimit, address, $"it holds {options.MaxConnectionsPerClient} connections already");
                return;
            }
            var local = connection.LocalEndPoint as IPEndPoint;
            using var handler = new TacacsConnection(connection, client, address, local?.Address, tls, isSelf, services);
            _open[handler] = 0;
            services.Counters.OnConnected();
            try
            {
                await handler.RunAsync().ConfigureAwait(false);
            }
            finally
            {
                _open.TryRemove(handler, out _);
                services.Counters.OnClosed();
            }
        }
        finally
        {
            if (_perClient.AddOrUpdate(address, 0, (_, n) => n - 1) <= 0)
                _perClient.TryRemove(new KeyValuePair<IPAddress, int>(address, 0));
        }
    }

    /// <summary>
    /// RFC 9887 §5: the device is identified by its certificate. A certificate naming addresses or DNS names
    /// must name the client entry's name or the address connecting; one naming neither kind (subject only)
    /// is identified by the address, as plain TACACS+ is.
    /// </summary>
    private static bool IdentityMatches(ConnectionContext connection, RadiusClient client, IPAddress address)
    {
        var certificate = connection.Features.Get<ITlsConnectionFeature>()?.ClientCertificate;
        if (certificate is null)
            return false;
        var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        if (names is null)
            return true;
        var ips = names.EnumerateIPAddresses().ToList();
        var dns = names.EnumerateDnsNames().ToList();
        if (ips.Count == 0 && dns.Count == 0)
            return true;
        return ips.Any(ip => ip.Equals(address)) || dns.Any(d => string.Equals(d, client.Name, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// A deferred client is refused, and so is every client while its class's zone defers (a drain, a
    /// breach): the zone moves at the monitor's tick, before the advisory side has marked each client.
    /// Invitations (state Invited) let deferred clients back in batches once the zone admits them.
    /// </summary>
    internal bool Refuses(RadiusClient client, IPAddress address) =>
        monitor.ZoneOf(client.Class).Current == Zone.Defer || registry.Find(address)?.State == ClientState.Deferred;

    private void Refused(TacacsDrop reason, IPAddress address, string why)
    {
        services.Counters.OnDrop(reason);
        if (_refusals.ShouldLog(reason.ToString(), out long others))
            LogRefused(logger, address, why, others);
    }

    /// <summary>Every 100 ms: closes connections whose client is deferred once their sessions are done, and those idle or stalled past their timeouts.</summary>
    private void Sweep()
    {
        long now = time.GetTimestamp();
        foreach (var connection in _open.Keys)
        {
            try
            {
                bool deferred = !connection.IsSelf && Refuses(connection.Client, connection.Address);
                connection.Sweep(now, deferred);
            }
            catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException)
            {
                // closed meanwhile
            }
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _sweep?.Dispose();
        if (_app is not null)
            await _app.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        _sweep?.Dispose();
        if (_app is not null)
            await _app.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Listening for {What} on tcp {Endpoint}")]
    private static partial void LogListening(ILogger logger, string what, IPEndPoint endpoint);

    [LoggerMessage(EventId = 31, Level = LogLevel.Warning, Message = "TACACS+ is not listening: port {Port} needs root or CAP_NET_BIND_SERVICE. RADIUS serves as usual; for TACACS+ choose a port with --tacacs-port (e.g. 4949) or grant the capability.")]
    private static partial void LogNoPrivilege(ILogger logger, int port);

    [LoggerMessage(EventId = 32, Level = LogLevel.Warning, Message = "TACACS+ connection from {Address} refused: {Why}; {Others} more for this reason in the 10 s before (not logged one by one)")]
    private static partial void LogRefused(ILogger logger, IPAddress address, string why, long others);

    [LoggerMessage(EventId = 33, Level = LogLevel.Warning, Message = "TACACS+ TLS client certificate '{Subject}' refused: {Status}; {Others} more in the 10 s before")]
    private static partial void LogBadCertificate(ILogger logger, string subject, string status, long others);
}
