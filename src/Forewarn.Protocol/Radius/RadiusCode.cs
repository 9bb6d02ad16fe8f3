namespace Forewarn.Protocol.Radius;

/// <summary>RADIUS packet codes (RFC 2865 §3, RFC 2866 §3, RFC 5176 §3, RFC 5997 §2).</summary>
public enum RadiusCode : byte
{
    AccessRequest = 1,
    AccessAccept = 2,
    AccessReject = 3,
    AccountingRequest = 4,
    AccountingResponse = 5,
    AccessChallenge = 11,
    StatusServer = 12,
    StatusClient = 13,
    DisconnectRequest = 40,
    DisconnectAck = 41,
    DisconnectNak = 42,
    CoaRequest = 43,
    CoaAck = 44,
    CoaNak = 45,
}

public static class RadiusCodes
{
    public static bool IsKnown(byte code) => code is 1 or 2 or 3 or 4 or 5 or 11 or 12 or 13 or (>= 40 and <= 45);

    /// <summary>Requests whose Request Authenticator is an MD5 over the packet (RFC 2866 §3, RFC 5176 §3.5), not a nonce.</summary>
    public static bool HasComputedRequestAuthenticator(RadiusCode code) =>
        code is RadiusCode.AccountingRequest or RadiusCode.CoaRequest or RadiusCode.DisconnectRequest;

    public static bool IsRequest(RadiusCode code) =>
        code is RadiusCode.AccessRequest or RadiusCode.AccountingRequest or RadiusCode.StatusServer
            or RadiusCode.CoaRequest or RadiusCode.DisconnectRequest or RadiusCode.StatusClient;
}
