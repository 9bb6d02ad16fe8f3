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
        if ((methods & AuthMethods.Chap) != 0)
            return new Credential(null, null, sealer.Seal(password));
        if ((methods & (AuthMethods.MsChap | AuthMethods.MsChapV2)) != 0)
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
                "all" => AuthMethods.All,
                _ => throw new FormatException($"Unknown method '{part}': use pap, chap, mschap, mschapv2 or all."),
            };
        }
        return methods;
    }

    public static string FormatMethods(AuthMethods methods)
    {
        var names = new List<string>(4);
        if ((methods & AuthMethods.Pap) != 0) names.Add("pap");
        if ((methods & AuthMethods.Chap) != 0) names.Add("chap");
        if ((methods & AuthMethods.MsChap) != 0) names.Add("mschap");
        if ((methods & AuthMethods.MsChapV2) != 0) names.Add("mschapv2");
        return string.Join(',', names);
    }

    /// <summary>How the credential is kept, for listings and documentation.</summary>
    public static string DescribeStorage(Credential credential) =>
        credential.SealedPassword is not null ? "sealed cleartext (CHAP)"
        : credential.NtHash is not null ? "NT hash"
        : "salted PBKDF2";
}
