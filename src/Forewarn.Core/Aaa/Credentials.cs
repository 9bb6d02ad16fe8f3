using Forewarn.Core.Store;
using Forewarn.Protocol.Auth;

namespace Forewarn.Core.Aaa;

public static class Credentials
{
    /// <summary>Derives what the store keeps for <paramref name="methods"/>: the least revealing form they allow.</summary>
    public static Credential Create(string password, AuthMethods methods, PasswordSealer sealer, int pbkdf2Iterations = PasswordHasher.DefaultIterations)
    {
        if (methods == AuthMethods.None)
            throw new ArgumentException("At least one method is needed.", nameof(methods));
        if ((methods & (AuthMethods.Chap | AuthMethods.EapMd5)) != 0)
            return new Credential(null, null, sealer.Seal(password));
        if ((methods & (AuthMethods.MsChap | AuthMethods.MsChapV2 | AuthMethods.EapMsChapV2)) != 0)
        {
            var nt = new byte[16];
            MsChap.NtPasswordHash(password, nt);
            return new Credential(null, nt, null);
        }
        return new Credential(PasswordHasher.Hash(password, pbkdf2Iterations), null, null);
    }

    public static AuthMethods ParseMethods(string text)
    {
        var methods = AuthMethods.None;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            methods |= part.ToLowerInvariant() switch
            {
                "pap" => AuthMethods.Pap,
                "chap" => AuthMethods.Chap,
                "mschap" or "ms-chap" or "mschapv1" => AuthMethods.MsChap,
                "mschapv2" or "ms-chapv2" or "ms-chap-v2" => AuthMethods.MsChapV2,
                "eap-md5" or "md5" => AuthMethods.EapMd5,
                "eap-gtc" or "gtc" => AuthMethods.EapGtc,
                "eap-mschapv2" => AuthMethods.EapMsChapV2,
                "peap" => AuthMethods.Peap,
                "ttls" or "eap-ttls" => AuthMethods.Ttls,
                "tls" or "eap-tls" => AuthMethods.EapTls,
                "eap" => AuthMethods.Eap,
                "all" => AuthMethods.All,
                _ => throw new FormatException($"Unknown method '{part}': use pap, chap, mschap, mschapv2, eap-md5, eap-gtc, eap-mschapv2, peap, ttls, eap-tls, eap or all."),
            };
        }
        return methods;
    }

    public static string FormatMethods(AuthMethods methods)
    {
        var names = new List<string>(4);
        if ((methods & AuthMethods.Pap) != 0) names.Add("pap");
        if ((methods & (AuthMethods.Chap | AuthMethods.EapMd5)) != 0) names.Add("chap");
        if ((methods & AuthMethods.MsChap) != 0) names.Add("mschap");
        if ((methods & AuthMethods.MsChapV2) != 0) names.Add("mschapv2");
        if ((methods & AuthMethods.EapMd5) != 0) names.Add("eap-md5");
        if ((methods & AuthMethods.EapGtc) != 0) names.Add("eap-gtc");
        if ((methods & AuthMethods.EapMsChapV2) != 0) names.Add("eap-mschapv2");
        if ((methods & AuthMethods.Peap) != 0) names.Add("peap");
        if ((methods & AuthMethods.Ttls) != 0) names.Add("ttls");
        if ((methods & AuthMethods.EapTls) != 0) names.Add("eap-tls");
        return string.Join(',', names);
    }

    /// <summary>How the credential is kept, for listings and documentation.</summary>
    public static string DescribeStorage(Credential credential) =>
        credential.SealedPassword is not null ? "sealed cleartext (CHAP, EAP-MD5)"
        : credential.NtHash is not null ? "NT hash"
        : "salted PBKDF2";
}
