namespace Forewarn.Protocol.Radius.Dictionary;

/// <summary>Data types of RFC 8044 plus the FreeRADIUS dictionary types seen in vendor files.</summary>
public enum RadiusDataType
{
    Text,
    Octets,
    Ipv4Address,
    Ipv4Prefix,
    Ipv6Address,
    Ipv6Prefix,
    Integer,
    Integer64,
    Date,
    InterfaceId,
    Byte,
    Short,
    Signed,
    Ether,
    ComboIp,
    Tlv,
    Vsa,
    Extended,
    LongExtended,
    Evs,
    AscendBinary,
}

/// <summary>How a value is hidden on the wire (FreeRADIUS's <c>encrypt=</c> flag).</summary>
public enum AttributeEncryption
{
    None = 0,
    /// <summary>RFC 2865 §5.2 (User-Password).</summary>
    UserPassword = 1,
    /// <summary>RFC 2868 §3.5 salt encryption (Tunnel-Password, MS-MPPE keys).</summary>
    TunnelPassword = 2,
    /// <summary>Ascend's Send-Secret scheme.</summary>
    Ascend = 3,
}

/// <summary>One ATTRIBUTE line of a dictionary.</summary>
public sealed record AttributeDefinition(
    string Name,
    uint VendorId,
    uint Number,
    RadiusDataType Type,
    bool HasTag = false,
    AttributeEncryption Encryption = AttributeEncryption.None,
    bool Concat = false,
    bool Array = false,
    int FixedLength = 0)
{
    /// <summary>For dotted numbers (TLV members, extended attributes): the full path, e.g. 241.1.</summary>
    public IReadOnlyList<uint> Path { get; init; } = [Number];

    /// <summary>Named values (VALUE lines) by number and by name.</summary>
    public Dictionary<ulong, string> ValueNames { get; } = [];
    public Dictionary<string, ulong> ValuesByName { get; } = new(StringComparer.OrdinalIgnoreCase);

    public bool IsNested => Path.Count > 1;
}

/// <summary>One VENDOR line: the vendor id and the width of its type and length fields (format=t,l).</summary>
public sealed record VendorDefinition(string Name, uint Id, int TypeWidth = 1, int LengthWidth = 1, bool Continuation = false);
