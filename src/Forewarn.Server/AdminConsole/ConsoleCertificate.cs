using System.Net;
using System.Net.NetworkInformation;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Forewarn.Server.AdminConsole;

/// <summary>
/// The console's HTTPS certificate when the operator brings none (<c>Forewarn:Admin:Https</c>): a
/// self-signed leaf in tls/admin.pem and admin.key (0600), for the addresses the console listens on
/// (every local address for a wildcard), localhost and this machine's name. It is its own: not issued by
/// the EAP CA, so trusting it in a browser trusts this console and nothing else, and its key cannot act
/// as the EAP server. Made again when it is missing, expires within 30 days, or no longer names the
/// listen address.
/// </summary>
internal static class ConsoleCertificate
{
    private static readonly TimeSpan Validity = TimeSpan.FromDays(825);

    public static (string Certificate, string Key) Ensure(string dataDirectory, IPAddress listen)
    {
        var folder = Path.Combine(dataDirectory, CertificateAuthority.Folder);
        string certificateFile = Path.Combine(folder, "admin.pem"), keyFile = Path.Combine(folder, "admin.key");
        var addresses = Addresses(listen);
        if (File.Exists(certificateFile) && File.Exists(keyFile) && Fits(certificateFile, addresses))
            return (certificateFile, keyFile);
        CertificateAuthority.CreateDirectory(folder);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedNameBuilder();
        subject.AddCommonName($"Forewarn console ({Environment.MachineName})");
        var request = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddDnsName(Environment.MachineName);
        foreach (var address in addresses)
            san.AddIpAddress(address);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow.AddMinutes(-5);
        using var certificate = request.CreateSelfSigned(now, now + Validity);
        CertificateAuthority.WritePem(keyFile, key.ExportPkcs8PrivateKeyPem(), secret: true);
        CertificateAuthority.WritePem(certificateFile, certificate.ExportCertificatePem(), secret: false);
        return (certificateFile, keyFile);
    }

    /// <summary>The listen address; for a wildcard, every address of this machine's interfaces that are up.</summary>
    private static List<IPAddress> Addresses(IPAddress listen)
    {
        var addresses = new List<IPAddress> { IPAddress.Loopback, IPAddress.IPv6Loopback };
        if (listen.Equals(IPAddress.Any) || listen.Equals(IPAddress.IPv6Any))
        {
            addresses.AddRange(NetworkInterface.GetAllNetworkInterfaces().Where(n => n.OperationalStatus == OperationalStatus.Up)
                .SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(u => u.Address).Where(a => !a.IsIPv6LinkLocal));
        }
        else
        {
            addresses.Add(listen);
        }
        return [.. addresses.Distinct()];
    }

    private static bool Fits(string certificateFile, List<IPAddress> addresses)
    {
        try
        {
            using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(certificateFile));
            if (certificate.NotAfter.ToUniversalTime() < DateTime.UtcNow.AddDays(30))
                return false;
            var named = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => e.EnumerateIPAddresses()).ToHashSet();
            return addresses.All(named.Contains);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }
}
