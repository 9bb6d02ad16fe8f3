namespace Forewarn.Protocol.Radius;

/// <summary>Attribute numbers the server itself acts on. Everything else goes through the dictionary.</summary>
public static class AttributeTypes
{
    public const byte UserName = 1;
    public const byte UserPassword = 2;
    public const byte ChapPassword = 3;
    public const byte NasIpAddress = 4;
    public const byte NasPort = 5;
    public const byte ServiceType = 6;
    public const byte FramedIpAddress = 8;
    public const byte FilterId = 11;
    public const byte ReplyMessage = 18;
    public const byte State = 24;
    public const byte Class = 25;
    public const byte VendorSpecific = 26;
    public const byte SessionTimeout = 27;
    public const byte CalledStationId = 30;
    public const byte CallingStationId = 31;
    public const byte NasIdentifier = 32;
    public const byte ProxyState = 33;
    public const byte AcctStatusType = 40;
    public const byte AcctDelayTime = 41;
    public const byte AcctInputOctets = 42;
    public const byte AcctOutputOctets = 43;
    public const byte AcctSessionId = 44;
    public const byte AcctSessionTime = 46;
    public const byte AcctInputPackets = 47;
    public const byte AcctOutputPackets = 48;
    public const byte AcctTerminateCause = 49;
    public const byte EventTimestamp = 55;
    public const byte ChapChallenge = 60;
    public const byte NasPortType = 61;
    public const byte TunnelPassword = 69;
    public const byte EapMessage = 79;
    public const byte MessageAuthenticator = 80;
    public const byte ChargeableUserIdentity = 89;
    public const byte NasIpv6Address = 95;
    public const byte FramedIpv6Prefix = 97;

    /// <summary>Microsoft vendor id (RFC 2548).</summary>
    public const uint MicrosoftVendor = 311;
    public const byte MsChapResponse = 1;
    public const byte MsChapError = 2;
    public const byte MsChapMppeKeys = 12;
    public const byte MsMppeSendKey = 16;
    public const byte MsMppeRecvKey = 17;
    public const byte MsMppeEncryptionPolicy = 7;
    public const byte MsMppeEncryptionTypes = 8;
    public const byte MsChapChallenge = 11;
    public const byte MsChap2Response = 25;
    public const byte MsChap2Success = 26;
}

/// <summary>Acct-Status-Type values (RFC 2866 §5.1).</summary>
public enum AcctStatusType : uint
{
    Start = 1,
    Stop = 2,
    InterimUpdate = 3,
    AccountingOn = 7,
    AccountingOff = 8,
}
