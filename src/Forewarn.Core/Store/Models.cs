namespace Forewarn.Core.Store;

/// <summary>Authentication methods a user may use. Each implies what the store must keep (see docs/configuration.md).</summary>
[Flags]
public enum AuthMethods
{
    None = 0,
    Pap = 1,
    Chap = 2,
    MsChap = 4,
    MsChapV2 = 8,
    /// <summary>EAP-MD5 (needs the cleartext, as CHAP does).</summary>
    EapMd5 = 16,
    /// <summary>EAP-GTC: a password in the clear inside a tunnel (any stored form).</summary>
    EapGtc = 32,
    /// <summary>EAP-MSCHAPv2, alone or inside PEAP or TTLS (needs the NT hash).</summary>
    EapMsChapV2 = 64,
    /// <summary>The tunnels and EAP-TLS: which outer methods the user may use. The inner method is checked on its own flag.</summary>
    Peap = 128,
    Ttls = 256,
    EapTls = 512,
    Passwords = Pap | Chap | MsChap | MsChapV2,
    Eap = EapMd5 | EapGtc | EapMsChapV2 | Peap | Ttls | EapTls,
    All = Passwords | Eap,
}

/// <summary>
/// What the store keeps of a password: the least revealing form the user's methods allow.
/// PAP only: <see cref="PasswordHash"/> (salted PBKDF2). MS-CHAP or MS-CHAPv2 without CHAP:
/// <see cref="NtHash"/> (PAP is then checked against it too). CHAP: <see cref="SealedPassword"/>
/// (the cleartext, sealed with the data directory's key), since CHAP needs the cleartext.
/// </summary>
public sealed record Credential(string? PasswordHash, byte[]? NtHash, byte[]? SealedPassword);

/// <summary>An attribute to add to an Access-Accept, as operator text (<c>Session-Timeout</c>, <c>3600</c>).</summary>
public sealed record ReplyItem(string Attribute, string Value)
{
    public override string ToString() => $"{Attribute} = {Value}";
}

/// <summary>
/// A condition an Access-Request must meet. <see cref="Attribute"/> is a request attribute name, or
/// <c>Device-Group</c> for the group of the client that sent it; the comparison is on text.
/// </summary>
public sealed record CheckItem(string Attribute, CheckOperator Operator, string Value)
{
    public override string ToString() => $"{Attribute} {(Operator == CheckOperator.Equal ? "==" : "!=")} {Value}";
}

public enum CheckOperator { Equal, NotEqual }

public sealed record UserRecord(
    string Name,
    AuthMethods Methods,
    Credential Credential,
    string? Group,
    IReadOnlyList<ReplyItem> Reply,
    IReadOnlyList<CheckItem> Checks,
    bool Enabled = true,
    string? EnableHash = null,
    IReadOnlyList<TacacsArgument>? Arguments = null);

/// <summary>
/// A group of users. For TACACS+: <see cref="EnableHash"/> (PBKDF2) is the enable secret of members without
/// their own; <see cref="Arguments"/> are given to members on service authorization (shell <c>priv-lvl</c>,
/// ppp <c>addr</c>); <see cref="CommandSets"/> decide command authorization, in order.
/// </summary>
public sealed record GroupRecord(
    string Name,
    IReadOnlyList<ReplyItem> Reply,
    IReadOnlyList<CheckItem> Checks,
    string? EnableHash = null,
    IReadOnlyList<TacacsArgument>? Arguments = null,
    IReadOnlyList<CommandSetBinding>? CommandSets = null);

/// <summary>
/// A TACACS+ attribute-value pair for one service, as operator text: <c>shell:priv-lvl=15</c> (mandatory),
/// <c>ppp:addr*10.0.0.7</c> (optional, RFC 8907 §6.1).
/// </summary>
public sealed record TacacsArgument(string Service, string Name, string Value, bool Optional = false)
{
    /// <summary>The pair as it travels (<c>priv-lvl=15</c>).</summary>
    public string Pair => $"{Name}{(Optional ? '*' : '=')}{Value}";

    public override string ToString() => $"{Service}:{Pair}";

    public static bool TryParse(string text, out TacacsArgument? argument, out string error)
    {
        argument = null;
        error = "";
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        int separator = text.IndexOfAny(['=', '*'], colon + 1);
        if (colon <= 0 || separator <= colon + 1)
        {
            error = $"'{text}' is not service:name=value (or service:name*value for an optional one), e.g. shell:priv-lvl=15";
            return false;
        }
        string service = text[..colon].Trim(), name = text[(colon + 1)..separator].Trim(), value = text[(separator + 1)..].Trim();
        if (service.Length == 0 || name.Length == 0 || service.Any(char.IsWhiteSpace) || name.Any(char.IsWhiteSpace) || (service + name + value).Any(char.IsControl))
        {
            error = $"'{text}': the service and the name must be single words, and nothing may hold control characters";
            return false;
        }
        argument = new TacacsArgument(service, name, value, text[separator] == '*');
        return true;
    }
}

/// <summary>A command set applied to a group's members: everywhere, or only on clients of <see cref="DeviceGroup"/>.</summary>
public sealed record CommandSetBinding(string CommandSet, string? DeviceGroup = null)
{
    public override string ToString() => DeviceGroup is null ? CommandSet : $"{CommandSet}@{DeviceGroup}";

    public static CommandSetBinding Parse(string text)
    {
        int at = text.IndexOf('@', StringComparison.Ordinal);
        return at < 0 ? new CommandSetBinding(text.Trim()) : new CommandSetBinding(text[..at].Trim(), text[(at + 1)..].Trim());
    }
}

/// <summary>One rule of a command set: a regular expression over the command line as the device sends it (<c>show running-config</c>).</summary>
public sealed record CommandRule(bool Permit, string Pattern)
{
    public override string ToString() => $"{(Permit ? "permit" : "deny")} {Pattern}";

    public static bool TryParse(string text, out CommandRule? rule, out string error)
    {
        rule = null;
        error = "";
        var trimmed = text.Trim();
        int space = trimmed.IndexOf(' ', StringComparison.Ordinal);
        string verb = space < 0 ? trimmed : trimmed[..space];
        string pattern = space < 0 ? "" : trimmed[(space + 1)..].Trim();
        bool? permit = verb.ToLowerInvariant() switch { "permit" => true, "deny" => false, _ => null };
        if (permit is null || pattern.Length == 0 || pattern.Any(char.IsControl))
        {
            error = $"'{text}' is not 'permit REGEX' or 'deny REGEX' (on one line, without control characters)";
            return false;
        }
        try
        {
            _ = new System.Text.RegularExpressions.Regex(pattern, System.Text.RegularExpressions.RegexOptions.NonBacktracking);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            error = $"'{pattern}' is not a regular expression Forewarn can match in linear time: {e.Message}";
            return false;
        }
        rule = new CommandRule(permit.Value, pattern);
        return true;
    }
}

/// <summary>An ordered list of rules: the first that matches decides; a command no rule matches is denied.</summary>
public sealed record CommandSet(string Name, IReadOnlyList<CommandRule> Rules);

/// <summary>BlastRADIUS policy for one client (CVE-2024-3596).</summary>
public enum MessageAuthenticatorPolicy
{
    /// <summary>Required once the client has sent one (FreeRADIUS 3.2.5's default).</summary>
    Auto,
    /// <summary>Every Access-Request must carry a valid Message-Authenticator.</summary>
    Require,
    /// <summary>Not required (it is still verified when present).</summary>
    Optional,
}

/// <summary>A NAS: a single address or a CIDR block sharing one secret. Its text form (logs, exceptions) never shows the secret.</summary>
public sealed record ClientRecord(
    string Name,
    string Address,
    string Secret,
    string? DeviceGroup = null,
    MessageAuthenticatorPolicy MessageAuthenticator = MessageAuthenticatorPolicy.Auto,
    string? Class = null,
    int AdvisoryPort = 0,
    string? AdvisorySecret = null,
    string? TacacsKey = null,
    bool TacacsUnencrypted = false)
{
    /// <summary>The TACACS+ key: <see cref="TacacsKey"/> when set, the RADIUS secret otherwise.</summary>
    public string TacacsSecret => TacacsKey ?? Secret;

    /// <summary>
    /// <see cref="AdvisorySecret"/>, when set, is held by the servers only: each NAS of the block gets
    /// its own advisory key derived from it and its address (<c>forewarn clients advisory-key</c>).
    /// Unset, the block's NASes share keys derived from the RADIUS secret.
    /// </summary>
    public bool PerNasAdvisoryKeys => AdvisorySecret is not null;

    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append(System.Globalization.CultureInfo.InvariantCulture,
            $"Name = {Name}, Address = {Address}, Secret = (hidden), DeviceGroup = {DeviceGroup}, MessageAuthenticator = {MessageAuthenticator}, Class = {Class}, AdvisoryPort = {AdvisoryPort}, PerNasAdvisoryKeys = {PerNasAdvisoryKeys}, TacacsKey = {(TacacsKey is null ? "(the secret)" : "(hidden)")}, TacacsUnencrypted = {TacacsUnencrypted}");
        return true;
    }
}

/// <summary>One accounting request as stored. <see cref="Attributes"/> is every attribute, one <c>Name = value</c> a line.</summary>
public sealed record AccountingRecord(
    long Id,
    DateTimeOffset ReceivedAt,
    string ClientName,
    string ClientAddress,
    string? UserName,
    string? SessionId,
    uint StatusType,
    string Attributes,
    string DedupKey,
    string Protocol = "radius");

public sealed record AccountingQuery(string? UserName = null, string? Client = null, DateTimeOffset? Since = null, DateTimeOffset? Until = null, int Limit = 100);
