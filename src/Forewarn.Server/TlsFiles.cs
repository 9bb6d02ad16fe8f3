using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Forewarn.Server;

/// <summary>
/// Certificates and keys from files named in the configuration (PEM, or PKCS#12 by .p12/.pfx), each
/// problem one sentence naming the setting: a missing file, an unreadable one, a key that does not
/// match, a certificate outside its validity period.
/// </summary>
public static class TlsFiles
{
    /// <summary>The leaf (with its private key) and the rest of the chain in the file, leaf first.</summary>
    public static (X509Certificate2 Leaf, IReadOnlyList<X509Certificate2> Chain) LoadServer(string setting, string file, string? keyFile, string? passwordFile = null)
    {
        if (!File.Exists(file))
            throw new StartupException($"{setting} '{file}' does not exist.");
        if (keyFile is { Length: > 0 } && !File.Exists(keyFile))
            throw new StartupException($"the key file '{keyFile}' for {setting} does not exist.");
        X509Certificate2 leaf;
        var chain = new List<X509Certificate2>();
        try
        {
            if (file.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".p12", StringComparison.OrdinalIgnoreCase))
            {
                string? password = passwordFile is { Length: > 0 } ? File.ReadAllText(passwordFile).TrimEnd('\r', '\n') : null;
                var all = X509CertificateLoader.LoadPkcs12CollectionFromFile(file, password);
                leaf = all.FirstOrDefault(c => c.HasPrivateKey) ?? throw new StartupException($"{setting} '{file}' holds no private key.");
                chain.Add(leaf);
                chain.AddRange(all.Where(c => !ReferenceEquals(c, leaf)));
            }
            else
            {
                leaf = X509Certificate2.CreateFromPemFile(file, keyFile is { Length: > 0 } ? keyFile : null);
                var all = new X509Certificate2Collection();
                all.ImportFromPemFile(file);
                chain.Add(leaf);
                chain.AddRange(all.Where(c => c.Thumbprint != leaf.Thumbprint));
            }
        }
        catch (CryptographicException e)
        {
            throw new StartupException($"{setting} '{file}' cannot be used: {e.Message.TrimEnd('.')} (is the key the certificate's, and in PEM?).");
        }
        catch (IOException e)
        {
            throw new StartupException($"{setting} '{file}' cannot be read: {e.Message}");
        }
        var now = DateTime.Now;
        if (leaf.NotAfter < now)
            throw new StartupException($"{setting} '{file}' expired on {leaf.NotAfter:yyyy-MM-dd}: renew it.");
        if (leaf.NotBefore > now)
            throw new StartupException($"{setting} '{file}' is not valid before {leaf.NotBefore:yyyy-MM-dd}: check the clock.");
        return (leaf, chain);
    }

    /// <summary>The CA certificates in a PEM file.</summary>
    public static X509Certificate2Collection LoadCas(string setting, string file)
    {
        if (!File.Exists(file))
            throw new StartupException($"{setting} '{file}' does not exist.");
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPemFile(file);
        }
        catch (CryptographicException e)
        {
            throw new StartupException($"{setting} '{file}' cannot be read: {e.Message}");
        }
        if (collection.Count == 0)
            throw new StartupException($"{setting} '{file}' holds no certificate.");
        return collection;
    }
}
