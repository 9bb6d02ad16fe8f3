using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Forewarn.Core.Aaa.Eap;
using Forewarn.Protocol.Auth;
using Forewarn.Protocol.Eap;
using Forewarn.Protocol.Radius;
using HdrHistogram;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.Tls;
using Org.BouncyCastle.Tls.Crypto.Impl.BC;
using BcCertificate = Org.BouncyCastle.Tls.Certificate;
using CertificateRequest = Org.BouncyCastle.Tls.CertificateRequest;
using HashAlgorithm = Org.BouncyCastle.Tls.HashAlgorithm;

namespace Forewarn.Bench.Load;

public enum EapLoadMethod { PeapMsChapV2, Tls }

public sealed record EapLoadOptions
{
    public required IPEndPoint Server { get; init; }
    public required string Secret { get; init; }
    public EapLoadMethod Method { get; init; } = EapLoadMethod.PeapMsChapV2;
    public string User { get; init; } = "user1";
    public string Password { get; init; } = "password";
    /// <summary>EAP-TLS: the client certificate (PEM) and its key.</summary>
    public string? CertificateFile { get; init; }
    public string? KeyFile { get; init; }
    public bool Tls13 { get; init; }
    /// <summary>Conversations in flight (closed loop).</summary>
    public int Outstanding { get; init; } = 16;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(3);
    public int? ServerPid { get; init; }
}

/// <summary>What an EAP run measured: whole authentications (every round, to Access-Accept with keys that match the peer's own).</summary>
public sealed record EapLoadReport(
    string Method, string Tls, int Outstanding, double Seconds, long Completed, long Rejected, long Failed, double PerSecond, double RoundsPerAuthentication,
    double P50Ms, double P99Ms, double MaxMs, double GeneratorCpuMsPerAuthentication, double? ServerCpuMsPerAuthentication, double? ServerResidentMiB);

/// <summary>
/// A closed-loop EAP load generator with its own supplicant (BouncyCastle's non-blocking TLS client):
/// PEAPv0/EAP-MSCHAPv2 or EAP-TLS over RADIUS, every round with Message-Authenticator, every
/// authentication checked to the end — Access-Accept with MS-MPPE-Recv-Key equal to the key the peer
/// derived itself. It can drive any RADIUS server (FreeRADIUS alike), and costs far less per
/// authentication than an eapol_test process, which on a small machine is the bottleneck.
/// </summary>
public sealed class EapLoad(EapLoadOptions options)
{
    private static readonly BcTlsCrypto Crypto = EapTlsCrypto.Shared;
    private readonly byte[] _secret = Encoding.UTF8.GetBytes(options.Secret);

    public async Task<EapLoadReport> RunAsync(CancellationToken cancellationToken = default)
    {
        (BcCertificate? chain, AsymmetricAlgorithm? key) = LoadClientCertificate();
        var histogram = new LongHistogram(TimeSpan.FromMinutes(1).Ticks, 3);
        long completed = 0, rejected = 0, failed = 0, rounds = 0;
        bool measuring = false;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var workers = Enumerable.Range(0, options.Outstanding).Select(_ => Task.Run(async () =>
        {
            using var socket = new Socket(options.Server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Connect(options.Server);
            byte identifier = (byte)Random.Shared.Next(256);
            while (!stop.IsCancellationRequested)
            {
                long started = Stopwatch.GetTimestamp();
                Outcome outcome;
                int count;
                try
                {
                    (outcome, count) = await AuthenticateAsync(socket, () => identifier++, chain, key, stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                if (!Volatile.Read(ref measuring) || stop.IsCancellationRequested)
                    continue;
                Interlocked.Add(ref rounds, count);
                switch (outcome)
                {
                    case Outcome.Accepted:
                        Interlocked.Increment(ref completed);
                        lock (histogram)
                            histogram.RecordValue(Stopwatch.GetElapsedTime(started).Ticks);
                        break;
                    case Outcome.Rejected:
                        Interlocked.Increment(ref rejected);
                        break;
                    default:
                        Interlocked.Increment(ref failed);
                        break;
                }
            }
        }, CancellationToken.None)).ToList();

        await Task.Delay(options.Warmup, cancellationToken).ConfigureAwait(false);
        var serverBefore = options.ServerPid is { } pid ? ServerProcess.CpuTime(pid) : null;
        var generatorBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref measuring, true);
        await Task.Delay(options.Duration, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref measuring, false);
        double seconds = clock.Elapsed.TotalSeconds;
        var serverAfter = options.ServerPid is { } pid2 ? ServerProcess.CpuTime(pid2) : null;
        var generatorCpu = Process.GetCurrentProcess().TotalProcessorTime - generatorBefore;
        double? resident = options.ServerPid is { } pid3 && ServerProcess.ResidentBytes(pid3) is { } bytes ? bytes / 1048576.0 : null;
        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(workers).ConfigureAwait(false);

        long done = Math.Max(1, completed);
        double Ms(double percentile) => completed == 0 ? 0 : Math.Round(histogram.GetValueAtPercentile(percentile) / (double)TimeSpan.TicksPerMillisecond, 2);
        return new EapLoadReport(
            options.Method == EapLoadMethod.Tls ? "eap-tls" : "peap-mschapv2", options.Tls13 ? "1.3" : "1.2", options.Outstanding, Math.Round(seconds, 2),
            completed, rejected, failed, Math.Round(completed / seconds, 1), Math.Round((double)rounds / Math.Max(1, completed + rejected + failed), 1),
            Ms(50), Ms(99), completed == 0 ? 0 : Math.Round(histogram.GetMaxValue() / (double)TimeSpan.TicksPerMillisecond, 2),
            Math.Round(generatorCpu.TotalMilliseconds / done, 3),
            serverBefore is { } b && serverAfter is { } a ? Math.Round((a - b).TotalMilliseconds / done, 3) : null,
            resident is { } r ? Math.Round(r, 1) : null);
    }

    private (BcCertificate?, AsymmetricAlgorithm?) LoadClientCertificate()
    {
        if (options.Method != EapLoadMethod.Tls)
            return (null, null);
        if (options.CertificateFile is null || options.KeyFile is null)
            throw new ArgumentException("EAP-TLS needs a client certificate and key (--certificate, --key).");
        using var certificate = X509Certificate2.CreateFromPemFile(options.CertificateFile, options.KeyFile);
        AsymmetricAlgorithm key = (AsymmetricAlgorithm?)certificate.GetRSAPrivateKey() ?? certificate.GetECDsaPrivateKey() ?? throw new ArgumentException("only RSA and ECDSA keys");
        return (new BcCertificate([Crypto.CreateCertificate(certificate.RawData)]), key);
    }

    private enum Outcome { Accepted, Rejected, Failed }

    /// <summary>One whole authentication; the outcome and the number of RADIUS round trips it took.</summary>
    private async Task<(Outcome, int)> AuthenticateAsync(Socket socket, Func<byte> nextId, BcCertificate? chain, AsymmetricAlgorithm? key, CancellationToken cancellationToken)
    {
        var peer = new Supplicant(options, chain, key);
        byte[]? state = null;
        var eap = EapPacket.Build(EapCode.Response, 0, EapType.Identity, Encoding.UTF8.GetBytes(options.Method == EapLoadMethod.Tls ? options.User : "anonymous"));
        var buffer = new byte[4096];
        for (int round = 1; round <= 40; round++)
        {
            var authenticator = RandomNumberGenerator.GetBytes(16);
            int length = Request(buffer, nextId(), authenticator, eap, state);
            byte[]? answer = await ExchangeAsync(socket, buffer.AsMemory(0, length), authenticator, cancellationToken).ConfigureAwait(false);
            if (answer is null)
                return (Outcome.Failed, round);
            RadiusPacket.TryParse(answer, out var response);
            switch (response.Code)
            {
                case RadiusCode.AccessAccept:
                    return (peer.KeysMatch(response, _secret, authenticator) ? Outcome.Accepted : Outcome.Failed, round);
                case RadiusCode.AccessReject:
                    return (Outcome.Rejected, round);
                case RadiusCode.AccessChallenge:
                    state = response.TryGetAttribute(AttributeTypes.State, out var s) ? s.ToArray() : null;
                    var message = new List<byte>();
                    foreach (var attribute in response.Attributes)
                        if (attribute.Type == AttributeTypes.EapMessage)
                            message.AddRange(attribute.Value);
                    if (peer.Answer(message.ToArray()) is not { } next)
                        return (Outcome.Failed, round);
                    eap = next;
                    break;
                default:
                    return (Outcome.Failed, round);
            }
        }
        return (Outcome.Failed, 40);
    }

    private int Request(byte[] buffer, byte id, byte[] authenticator, byte[] eap, byte[]? state)
    {
        var writer = new RadiusWriter(buffer, RadiusCode.AccessRequest, id, authenticator);
        writer.AddMessageAuthenticator();
        writer.AddText(AttributeTypes.UserName, options.Method == EapLoadMethod.Tls ? options.User : "anonymous");
        writer.AddUInt32(AttributeTypes.NasPort, 1);
        writer.AddSplit(AttributeTypes.EapMessage, eap);
        if (state is not null)
            writer.Add(AttributeTypes.State, state);
        return writer.Complete(_secret);
    }

    private async Task<byte[]?> ExchangeAsync(Socket socket, ReadOnlyMemory<byte> request, byte[] authenticator, CancellationToken cancellationToken)
    {
        var receive = new byte[4096];
        for (int attempt = 0; attempt < 2; attempt++)
        {
            await socket.SendAsync(request, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.Timeout);
            try
            {
                while (true)
                {
                    int length = await socket.ReceiveAsync(receive, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    var answer = receive.AsSpan(0, length);
                    // Only the answer to this request: its identifier, a valid Response Authenticator and Message-Authenticator.
                    if (length >= 20 && answer[1] == request.Span[1] && RadiusPacket.TryParse(answer, out var packet) == DropReason.None
                        && RadiusCrypto.VerifyResponseAuthenticator(answer, authenticator, _secret)
                        && RadiusCrypto.VerifyMessageAuthenticator(packet, _secret, authenticator))
                        return answer.ToArray();
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
            catch (OperationCanceledException)
            {
                return null;
            }
        }
        return null;
    }

    /// <summary>The peer's side of one conversation: NAK to the wanted method, TLS records in fragments, then the inner method.</summary>
    private sealed class Supplicant(EapLoadOptions options, BcCertificate? chain, AsymmetricAlgorithm? key)
    {
        private readonly byte _method = options.Method == EapLoadMethod.Tls ? EapType.Tls : EapType.Peap;
        private TlsClientProtocol? _tls;
        private Client? _client;
        private readonly List<byte> _incoming = [];
        private byte[] _outgoing = [];
        private int _sent;
        private byte[] _challenge = [];
        private byte _msChapId;

        public byte[]? Answer(byte[] request)
        {
            if (!EapPacket.TryParse(request, out var packet, out _) || packet.Code != EapCode.Request)
                return null;
            byte id = packet.Identifier;
            if (packet.Type != _method)
                return EapPacket.Build(EapCode.Response, id, EapType.Nak, [_method]);
            if (!EapTlsFraming.TryRead(packet.TypeData, out var fragment, out _))
                return null;
            if ((fragment.Flags & EapTlsFraming.Start) != 0)
            {
                _client = new Client(Crypto, options.Tls13, chain, key);
                _tls = new TlsClientProtocol();
                _tls.Connect(_client);
                return Send(id);
            }
            if (_tls is null)
                return null;
            if (fragment.Data.IsEmpty && !fragment.More && _sent > 0 && _sent < _outgoing.Length)
                return Send(id);
            _incoming.AddRange(fragment.Data);
            if (fragment.More)
                return Response(id, []);
            var records = _incoming.ToArray();
            _incoming.Clear();
            if (records.Length > 0)
            {
                try
                {
                    _tls.OfferInput(records);
                }
                catch (IOException)
                {
                    return null;
                }
            }
            if (_tls.GetAvailableInputBytes() is var available and > 0)
            {
                var data = new byte[available];
                _tls.ReadInput(data, 0, available);
                if (_method == EapType.Peap && Inner(data) is { } inner)
                    _tls.WriteApplicationData(inner);
            }
            return Send(id);
        }

        private byte[] Send(byte id)
        {
            if (_sent >= _outgoing.Length && _tls!.GetAvailableOutputBytes() is var available and > 0)
            {
                _outgoing = new byte[available];
                _tls.ReadOutput(_outgoing, 0, available);
                _sent = 0;
            }
            if (_sent >= _outgoing.Length)
                return Response(id, []);
            int size = Math.Min(1024, _outgoing.Length - _sent);
            bool more = _sent + size < _outgoing.Length;
            var data = EapTlsFraming.Write(0, _outgoing.AsSpan(_sent, size), _outgoing.Length, _sent == 0, more);
            _sent += size;
            if (!more)
            {
                _outgoing = [];
                _sent = 0;
            }
            return EapPacket.Build(EapCode.Response, id, _method, data);
        }

        private byte[] Response(byte id, byte[] data) => EapPacket.Build(EapCode.Response, id, _method, [0, .. data]);

        /// <summary>PEAPv0's inner conversation, compressed (no EAP header) except the Result TLV.</summary>
        private byte[]? Inner(byte[] data)
        {
            if (data.Length >= 5 && data[0] == (byte)EapCode.Request && data[4] == EapType.Extensions)
                return EapPacket.Build(EapCode.Response, data[1], EapType.Extensions, [0x80, 0x03, 0x00, 0x02, 0x00, 0x01]);
            switch (data[0])
            {
                case EapType.Identity:
                    return [EapType.Identity, .. Encoding.UTF8.GetBytes(options.User)];
                case EapType.MsChapV2 when data.Length >= 22 && data[1] == 1:
                    _msChapId = data[2];
                    _challenge = data.AsSpan(6, 16).ToArray();
                    var peerChallenge = RandomNumberGenerator.GetBytes(16);
                    var name = Encoding.UTF8.GetBytes(options.User);
                    var ntHash = new byte[16];
                    MsChap.NtPasswordHash(options.Password, ntHash);
                    var ntResponse = new byte[24];
                    MsChap.GenerateNtResponse(_challenge, peerChallenge, name, ntHash, ntResponse);
                    var response = new byte[1 + 4 + 1 + 49 + name.Length];
                    response[0] = EapType.MsChapV2;
                    response[1] = 2;
                    response[2] = _msChapId;
                    BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(3), (ushort)(response.Length - 1));
                    response[5] = 49;
                    peerChallenge.CopyTo(response, 6);
                    ntResponse.CopyTo(response, 30);
                    name.CopyTo(response, 55);
                    return response;
                case EapType.MsChapV2 when data.Length >= 2 && data[1] == 3:
                    return [EapType.MsChapV2, 3];
                default:
                    return null;
            }
        }

        /// <summary>The Access-Accept's MS-MPPE-Recv-Key is the first 32 octets of the MSK the peer derived from its own TLS.</summary>
        public bool KeysMatch(RadiusPacket accept, byte[] secret, byte[] authenticator)
        {
            if (_client?.Msk is not { } msk || !accept.TryGetVendorAttribute(AttributeTypes.MicrosoftVendor, AttributeTypes.MsMppeRecvKey, out var hidden))
                return false;
            Span<byte> plain = stackalloc byte[64];
            int length = RadiusCrypto.SaltDecrypt(hidden, secret, authenticator, plain);
            return length >= 32 && plain[..32].SequenceEqual(msk.AsSpan(0, 32));
        }

        private sealed class Client(BcTlsCrypto crypto, bool tls13, BcCertificate? chain, AsymmetricAlgorithm? key) : DefaultTlsClient(crypto)
        {
            public byte[]? Msk { get; private set; }
            private BcCertificate? Chain => chain;
            private AsymmetricAlgorithm? Key => key;
            private TlsClientContext Context => m_context;

            protected override ProtocolVersion[] GetSupportedVersions() => tls13 ? ProtocolVersion.TLSv13.Only() : ProtocolVersion.TLSv12.Only();

            public override TlsAuthentication GetAuthentication() => new Authentication(this);

            public override void NotifyHandshakeComplete()
            {
                base.NotifyHandshakeComplete();
                bool v13 = TlsUtilities.IsTlsV13(m_context.ServerVersion);
                byte type = Chain is null ? EapType.Peap : EapType.Tls;
                var material = v13
                    ? m_context.ExportKeyingMaterial("EXPORTER_EAP_TLS_Key_Material", [type], 128)
                    : m_context.ExportKeyingMaterial("client EAP encryption", null, 128);
                Msk = material[..64];
            }

            /// <summary>The benchmark trusts the server it was pointed at (no chain check); EAP-TLS offers its certificate.</summary>
            private sealed class Authentication(Client client) : TlsAuthentication
            {
                public void NotifyServerCertificate(TlsServerCertificate serverCertificate)
                {
                }

                public TlsCredentials? GetClientCredentials(CertificateRequest certificateRequest)
                {
                    if (client.Chain is not { } chain || client.Key is not { } key)
                        return null;
                    bool v13 = TlsUtilities.IsTlsV13(client.Context.ServerVersion);
                    var algorithm = key is ECDsa
                        ? SignatureAndHashAlgorithm.GetInstance(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa)
                        : v13 ? SignatureAndHashAlgorithm.rsa_pss_rsae_sha256 : SignatureAndHashAlgorithm.GetInstance(HashAlgorithm.sha256, SignatureAlgorithm.rsa);
                    var certificate = v13 ? new BcCertificate(TlsUtilities.EmptyBytes, [new CertificateEntry(chain.GetCertificateAt(0), null)]) : chain;
                    return new DotNetTlsSigner(certificate, key, algorithm);
                }
            }
        }
    }
}
