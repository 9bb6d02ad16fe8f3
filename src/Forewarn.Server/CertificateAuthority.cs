using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Forewarn.Server;

/// <summary>
/// The private CA a newcomer gets without asking (as FreeRADIUS's bootstrap makes one): in the data
/// directory's tls/ folder, ca.pem and ca.key, server.pem and server.key (keys mode 0600), and client
/// certificates for EAP-TLS under tls/clients/. RSA 2048 with SHA-256, which every supplicant accepts.
/// </summary>
public sealed class CertificateAuthority
{
    public const string Folder = "tls";
    public string Directory { get; }
    public string CaFile => Path.Combine(Directory, "ca.pem");
    public string CaKeyFile => Path.Combine(Directory, "ca.key");
    public string ServerFile => Path.Combine(Directory, "server.pem");
    public string ServerKeyFile => Path.Combine(Directory, "server.key");

    public CertificateAuthority(string dataDirectory) => Directory = Path.Combine(dataDirectory, Folder);

    public bool Exists => File.Exists(CaFile) && File.Exists(ServerFile) && File.Exists(ServerKeyFile);

    /// <summary>Makes the CA and the server certificate when they are not there yet; true when it made them.</summary>
    public bool EnsureServer(string serverName)
    {
        if (Exists)
            return false;
        CreateDirectory(Directory);
        using var caKey = RSA.Create(2048);
        using var ca = CreateCa(caKey);
        WritePem(CaFile, ca.ExportCertificatePem(), secret: false);
        WritePem(CaKeyFile, caKey.ExportPkcs8PrivateKeyPem(), secret: true);
        using var serverKey = RSA.Create(2048);
        using var server = Issue(ca, caKey, serverKey, serverName, serverAuth: true, TimeSpan.FromDays(825));
        WritePem(ServerKeyFile, serverKey.ExportPkcs8PrivateKeyPem(), secret: true);
        WritePem(ServerFile, server.ExportCertificatePem(), secret: false);
        return true;
    }

    /// <summary>A client certificate for EAP-TLS signed by the CA: tls/clients/NAME.pem and NAME.key. The paths written.</summary>
    public (string Certificate, string Key) IssueClient(string name, int days = 825)
    {
        if (!File.Exists(CaFile) && !File.Exists(CaKeyFile))
            EnsureServer(Environment.MachineName);  // what the first 'serve' would make
        if (!File.Exists(CaFile) || !File.Exists(CaKeyFile))
            throw new StartupException($"the Forewarn CA in '{Directory}' is incomplete (ca.pem or ca.key is missing): restore it, or remove the folder to make a new CA.");
        if (name.Length == 0 || name.IndexOfAny(['/', '\\', '\0']) >= 0 || name is "." or "..")
            throw new StartupException($"'{name}' cannot be a certificate name (no slashes).");
        using var ca = X509Certificate2.CreateFromPemFile(CaFile, CaKeyFile);
        using var caKey = ca.GetRSAPrivateKey() ?? throw new StartupException($"'{CaKeyFile}' is not an RSA key.");
        var folder = Path.Combine(Directory, "clients");
        CreateDirectory(folder);
        using var key = RSA.Create(2048);
        using var certificate = Issue(ca, caKey, key, name, serverAuth: false, TimeSpan.FromDays(days));
        string certificateFile = Path.Combine(folder, name + ".pem");
        string keyFile = Path.Combine(folder, name + ".key");
        WritePem(keyFile, key.ExportPkcs8PrivateKeyPem(), secret: true);
        WritePem(certificateFile, certificate.ExportCertificatePem(), secret: false);
        return (certificateFile, keyFile);
    }

    private static X509Certificate2 CreateCa(RSA key)
    {
        var request = new CertificateRequest($"CN=Forewarn private CA ({Environment.MachineName})", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow.AddMinutes(-5);
        return request.CreateSelfSigned(now, now.AddYears(10));
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, RSA caKey, RSA key, string name, bool serverAuth, TimeSpan validity)
    {
        var subject = new X500DistinguishedNameBuilder();
        subject.AddCommonName(name);
        var request = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        if (serverAuth)
            san.AddDnsName(name);
        else if (name.Contains('@'))
            san.AddEmailAddress(name);
        else
            san.AddUserPrincipalName(name);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var now = DateTimeOffset.UtcNow.AddMinutes(-5);
        var notAfter = now + validity;
        if (notAfter > ca.NotAfter)
            notAfter = ca.NotAfter;
        var generator = X509SignatureGenerator.CreateForRSA(caKey, RSASignaturePadding.Pkcs1);
        return request.Create(ca.SubjectName, generator, now, notAfter, RandomNumberGenerator.GetBytes(16));
    }

    internal static void CreateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
            System.IO.Directory.CreateDirectory(path);
        else
            System.IO.Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>Written beside and renamed into place, keys created 0600 before a byte is written.</summary>
    internal static void WritePem(string path, string pem, bool secret)
    {
        string temporary = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = secret ? UnixFileMode.UserRead | UnixFileMode.UserWrite : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        using (var stream = new FileStream(temporary, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(pem);
            writer.Write('\n');
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
