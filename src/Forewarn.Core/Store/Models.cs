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
    All = Pap | Chap | MsChap | MsChapV2,
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
    bool Enabled = true);

public sealed record GroupRecord(string Name, IReadOnlyList<ReplyItem> Reply, IReadOnlyList<CheckItem> Checks);

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
    string? AdvisorySecret = null)
{
    /// <summary>
    /// <see cref="AdvisorySecret"/>, when set, is held by the servers only: each NAS of the block gets
    /// its own advisory key derived from it and its address (<c>forewarn clients advisory-key</c>).
    /// Unset, the block's NASes share keys derived from the RADIUS secret.
    /// </summary>
    public bool PerNasAdvisoryKeys => AdvisorySecret is not null;

    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append(System.Globalization.CultureInfo.InvariantCulture,
            $"Name = {Name}, Address = {Address}, Secret = (hidden), DeviceGroup = {DeviceGroup}, MessageAuthenticator = {MessageAuthenticator}, Class = {Class}, AdvisoryPort = {AdvisoryPort}, PerNasAdvisoryKeys = {PerNasAdvisoryKeys}");
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
    string DedupKey);

public sealed record AccountingQuery(string? UserName = null, string? Client = null, DateTimeOffset? Since = null, DateTimeOffset? Until = null, int Limit = 100);
