using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.Tls;
using Org.BouncyCastle.Tls.Crypto;
using Org.BouncyCastle.Tls.Crypto.Impl.BC;
using BcCertificate = Org.BouncyCastle.Tls.Certificate;
using CertificateRequest = Org.BouncyCastle.Tls.CertificateRequest;
using HashAlgorithm = Org.BouncyCastle.Tls.HashAlgorithm;

namespace Forewarn.Core.Aaa.Eap;

/// <summary>
/// The server's TLS identity for the TLS-based EAP methods: its chain (leaf first, DER), its private
/// key (RSA or ECDSA, kept by .NET so signing runs in OpenSSL), the CAs whose client certificates
/// EAP-TLS accepts, and the protocol versions allowed.
/// </summary>
public sealed class EapTlsCredentials(IReadOnlyList<byte[]> chain, AsymmetricAlgorithm key, X509Certificate2Collection clientCas, bool allowTls12 = true, bool allowTls13 = true)
{
    public IReadOnlyList<byte[]> Chain { get; } = chain;
    public AsymmetricAlgorithm Key { get; } = key;
    public X509Certificate2Collection ClientCas { get; } = clientCas;
    public bool AllowTls12 { get; } = allowTls12;
    public bool AllowTls13 { get; } = allowTls13;

    internal static BcTlsCrypto Crypto => EapTlsCrypto.Shared;

    private TlsCertificate[]? _parsed;

    /// <summary>The chain as BouncyCastle's certificates, parsed once (they are immutable): a handshake neither parses it again nor holds a copy.</summary>
    internal TlsCertificate[] Parsed => _parsed ??= Chain.Select(der => Crypto.CreateCertificate(der)).ToArray();
}

/// <summary>
/// One TLS server conversation fed by bytes rather than a socket (BouncyCastle's non-blocking
/// <see cref="TlsServerProtocol"/>): the EAP method offers the TLS records the peer sent and takes the
/// records to send back; after the handshake it exchanges application data (the tunnel) and exports
/// keying material. TLS 1.2 requires the extended master secret (RFC 7627), without which keys must
/// not be exported. Nothing here writes a key log.
/// </summary>
public sealed class TlsEngine
{
    private readonly TlsServerProtocol _protocol = new();
    private readonly Server _server;

    /// <summary>Keying material a method needs: BouncyCastle releases the secrets when the handshake completes, so it is exported then.</summary>
    public readonly record struct KeyRequest(string Label, byte[]? Context, int Length);

    public TlsEngine(EapTlsCredentials credentials, bool requestClientCertificate, Func<bool, IReadOnlyList<KeyRequest>> keys)
    {
        _server = new Server(credentials, requestClientCertificate, keys);
        _protocol.Accept(_server);
    }

    public bool HandshakeComplete => _protocol.IsConnected && !_protocol.IsHandshaking;
    public bool IsTls13 => TlsUtilities.IsTlsV13(_server.Context.ServerVersion);
    public string Version => _server.Context.ServerVersion?.ToString() ?? "TLS";

    /// <summary>The client's validated certificate (its subject and the names it may stand for), when one was requested and given.</summary>
    public ClientIdentity? ClientCertificate => _server.ClientCertificate;

    /// <summary>Why the handshake failed, in words for the log: an alert we raised or one the peer sent.</summary>
    public string? Failure => _server.Failure;

    /// <summary>Feeds TLS records from the peer; false (with <see cref="Failure"/>) when TLS failed.</summary>
    public bool Offer(byte[] records)
    {
        try
        {
            _protocol.OfferInput(records);
            return true;
        }
        catch (Exception e) when (e is TlsException or IOException or InvalidOperationException)
        {
            _server.Failure ??= e.Message;
            return false;
        }
    }

    public bool HasOutput => _protocol.GetAvailableOutputBytes() > 0;

    /// <summary>The records to send the peer now (possibly none).</summary>
    public byte[] TakeOutput()
    {
        int available = _protocol.GetAvailableOutputBytes();
        if (available == 0)
            return [];
        var output = new byte[available];
        _protocol.ReadOutput(output, 0, available);
        return output;
    }

    /// <summary>Application data received through the tunnel (possibly none).</summary>
    public byte[] ReadApplicationData()
    {
        int available = _protocol.GetAvailableInputBytes();
        if (available == 0)
            return [];
        var data = new byte[available];
        _protocol.ReadInput(data, 0, available);
        return data;
    }

    public void WriteApplicationData(ReadOnlySpan<byte> data) => _protocol.WriteApplicationData(data);

    /// <summary>
    /// Keying material asked for by label, exported when the handshake completed: TLS 1.2
    /// PRF(master_secret, label, client.random || server.random) (RFC 5216 §2.3, RFC 5281 §8) with a
    /// null context, or the TLS 1.3 exporter (RFC 9190 §2.3, RFC 9427 §2).
    /// </summary>
    public byte[] Key(string label) => _server.Keys.TryGetValue(label, out var key) ? key : throw new InvalidOperationException($"no key material '{label}' was exported");

    private sealed class Server(EapTlsCredentials credentials, bool requestClientCertificate, Func<bool, IReadOnlyList<KeyRequest>> keys) : DefaultTlsServer(EapTlsCredentials.Crypto)
    {
        public Dictionary<string, byte[]> Keys { get; } = [];

        public override void NotifyHandshakeComplete()
        {
            base.NotifyHandshakeComplete();
            foreach (var request in keys(TlsUtilities.IsTlsV13(m_context.ServerVersion)))
                Keys[request.Label] = m_context.ExportKeyingMaterial(request.Label, request.Context, request.Length);
        }

        public TlsServerContext Context => m_context;
        public ClientIdentity? ClientCertificate { get; private set; }
        public string? Failure { get; set; }

        private bool IsEcdsa => credentials.Key is ECDsa;

        protected override ProtocolVersion[] GetSupportedVersions() => (credentials.AllowTls12, credentials.AllowTls13) switch
        {
            (true, true) => ProtocolVersion.TLSv13.DownTo(ProtocolVersion.TLSv12),
            (false, true) => ProtocolVersion.TLSv13.Only(),
            _ => ProtocolVersion.TLSv12.Only(),
        };

        protected override int[] GetSupportedCipherSuites() => TlsUtilities.GetSupportedCipherSuites(Crypto, IsEcdsa
            ?
            [
                CipherSuite.TLS_AES_128_GCM_SHA256, CipherSuite.TLS_AES_256_GCM_SHA384, CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
                CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
                CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
            ]
            :
            [
                CipherSuite.TLS_AES_128_GCM_SHA256, CipherSuite.TLS_AES_256_GCM_SHA384, CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
                CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
                CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
            ]);

        public override bool RequiresExtendedMasterSecret() => true;

        public override TlsCredentials GetCredentials()
        {
            bool tls13 = TlsUtilities.IsTlsV13(m_context.ServerVersion);
            var entries = credentials.Parsed;
            var certificate = tls13
                ? new BcCertificate(TlsUtilities.EmptyBytes, entries.Select(c => new CertificateEntry(c, null)).ToArray())
                : new BcCertificate(entries);
            var offered = m_context.SecurityParameters.ClientSigAlgs;
            var algorithm = ChooseSignature(offered, tls13) ?? throw new TlsFatalAlert(AlertDescription.handshake_failure, "no signature algorithm in common with the client");
            return new DotNetTlsSigner(certificate, credentials.Key, algorithm);
        }

        private SignatureAndHashAlgorithm? ChooseSignature(IList<SignatureAndHashAlgorithm>? offered, bool tls13)
        {
            SignatureAndHashAlgorithm[] candidates = IsEcdsa
                ? [SignatureAndHashAlgorithm.GetInstance(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa),
                   SignatureAndHashAlgorithm.GetInstance(HashAlgorithm.sha384, SignatureAlgorithm.ecdsa)]
                : tls13
                    ? [SignatureAndHashAlgorithm.rsa_pss_rsae_sha256, SignatureAndHashAlgorithm.rsa_pss_rsae_sha384]
                    : [SignatureAndHashAlgorithm.rsa_pss_rsae_sha256, SignatureAndHashAlgorithm.GetInstance(HashAlgorithm.sha256, SignatureAlgorithm.rsa),
                       SignatureAndHashAlgorithm.GetInstance(HashAlgorithm.sha384, SignatureAlgorithm.rsa), SignatureAndHashAlgorithm.GetInstance(HashAlgorithm.sha1, SignatureAlgorithm.rsa)];
            if (offered is null)
                return tls13 ? null : candidates[^1];
            return candidates.FirstOrDefault(offered.Contains);
        }

        public override CertificateRequest? GetCertificateRequest()
        {
            if (!requestClientCertificate)
                return null;
            var algorithms = TlsUtilities.GetDefaultSupportedSignatureAlgorithms(m_context);
            var authorities = credentials.ClientCas.Select(ca => Org.BouncyCastle.Asn1.X509.X509Name.GetInstance(ca.SubjectName.RawData)).ToList();
            return TlsUtilities.IsTlsV13(m_context.ServerVersion)
                ? new CertificateRequest(TlsUtilities.EmptyBytes, algorithms, null, authorities)
                : new CertificateRequest([ClientCertificateType.rsa_sign, ClientCertificateType.ecdsa_sign], algorithms, authorities);
        }

        public override void NotifyClientCertificate(BcCertificate clientCertificate)
        {
            if (clientCertificate is null || clientCertificate.IsEmpty)
                throw Fail(AlertDescription.certificate_required, "the client sent no certificate");
            var chain = new X509Certificate2[clientCertificate.Length];
            try
            {
                for (int i = 0; i < chain.Length; i++)
                    chain[i] = X509CertificateLoader.LoadCertificate(clientCertificate.GetCertificateAt(i).GetEncoded());
                if (ClientCertificates.Validate(chain, credentials.ClientCas, DateTime.UtcNow) is { } problem)
                    throw Fail(AlertDescription.bad_certificate, $"client certificate {chain[0].Subject}: {problem}");
                ClientCertificate = new ClientIdentity(chain[0].Subject, ClientCertificates.Identities(chain[0]).ToList());
            }
            finally
            {
                // Undisposed, each certificate waits for the finalizer thread: measured, as much CPU as the handshake's own work.
                foreach (var certificate in chain)
                    certificate?.Dispose();
            }
        }

        private TlsFatalAlert Fail(short alert, string reason)
        {
            Failure = reason;
            return new TlsFatalAlert(alert, reason);
        }

        public override void NotifyAlertReceived(short alertLevel, short alertDescription)
        {
            if (alertLevel == AlertLevel.fatal)
                Failure ??= $"the client sent the TLS alert {AlertDescription.GetText(alertDescription)}";
        }

        public override void NotifyAlertRaised(short alertLevel, short alertDescription, string message, Exception cause)
        {
            if (alertLevel == AlertLevel.fatal)
                Failure ??= $"TLS alert {AlertDescription.GetText(alertDescription)}" + (message is null ? "" : $": {message}");
        }
    }
}

/// <summary>Signs with the .NET key (OpenSSL underneath: several times faster than a managed RSA private operation). The server's, and the benchmark peer's for EAP-TLS.</summary>
public sealed class DotNetTlsSigner(BcCertificate certificate, AsymmetricAlgorithm key, SignatureAndHashAlgorithm algorithm) : TlsCredentialedSigner
{
    public BcCertificate Certificate => certificate;
    public SignatureAndHashAlgorithm SignatureAndHashAlgorithm => algorithm;
    public TlsStreamSigner? GetStreamSigner() => null;

    public byte[] GenerateRawSignature(byte[] hash)
    {
        bool pss = algorithm.Hash == HashAlgorithm.Intrinsic;
        var name = (pss ? algorithm.Signature : algorithm.Hash) switch
        {
            HashAlgorithm.sha1 => HashAlgorithmName.SHA1,
            HashAlgorithm.sha384 or SignatureAlgorithm.rsa_pss_rsae_sha384 => HashAlgorithmName.SHA384,
            HashAlgorithm.sha512 or SignatureAlgorithm.rsa_pss_rsae_sha512 => HashAlgorithmName.SHA512,
            _ => HashAlgorithmName.SHA256,
        };
        return key switch
        {
            RSA rsa => rsa.SignHash(hash, name, pss ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1),
            ECDsa ecdsa => ecdsa.SignHash(hash, DSASignatureFormat.Rfc3279DerSequence),
            _ => throw new TlsFatalAlert(AlertDescription.internal_error, "unsupported key type"),
        };
    }
}

/// <summary>A validated client certificate, kept as text once the handshake has checked it.</summary>
public sealed record ClientIdentity(string Subject, IReadOnlyList<string> Names);

/// <summary>Validation of a client certificate chain against the configured CAs (no system roots).</summary>
public static class ClientCertificates
{
    /// <summary>Null when <paramref name="chain"/>'s leaf chains to one of <paramref name="cas"/> and every certificate is in its validity period; otherwise why not.</summary>
    public static string? Validate(IReadOnlyList<X509Certificate2> chain, X509Certificate2Collection cas, DateTime now)
    {
        if (cas.Count == 0)
            return "no CA is configured for client certificates";
        using var builder = new X509Chain();
        builder.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        builder.ChainPolicy.CustomTrustStore.AddRange(cas);
        builder.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        builder.ChainPolicy.DisableCertificateDownloads = true;
        builder.ChainPolicy.VerificationTime = now;
        for (int i = 1; i < chain.Count; i++)
            builder.ChainPolicy.ExtraStore.Add(chain[i]);
        try
        {
            if (builder.Build(chain[0]))
                return null;
            var status = builder.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct();
            return string.Join("; ", status) is { Length: > 0 } text ? text : "not issued by a configured CA";
        }
        finally
        {
            // The chain's elements are new certificate objects (equal to, never the same as, the ones given): each is disposed, or the finalizer thread does it at a high price.
            foreach (var element in builder.ChainElements)
            {
                if (!chain.Any(c => ReferenceEquals(c, element.Certificate)) && !cas.Any(c => ReferenceEquals(c, element.Certificate)))
                    element.Certificate.Dispose();
            }
        }
    }

    /// <summary>The names a certificate may stand for: its subject's common name, then its e-mail address.</summary>
    public static IEnumerable<string> Identities(X509Certificate2 certificate)
    {
        if (certificate.GetNameInfo(X509NameType.SimpleName, false) is { Length: > 0 } commonName)
            yield return commonName;
        if (certificate.GetNameInfo(X509NameType.EmailName, false) is { Length: > 0 } email)
            yield return email;
    }
}
