using System.Text;
using Forewarn.Protocol.Radius;

namespace Forewarn.Client;

/// <summary>
/// A request as the application describes it: code and attributes, with the User-Password in the
/// clear. The client encodes it afresh for each server it tries (each has its own secret, and the
/// password is hidden under each attempt's authenticator).
/// </summary>
public sealed class RadiusRequest(RadiusCode code)
{
    private readonly List<(byte Type, byte[] Value)> _attributes = [];

    public RadiusCode Code { get; } = code;
    public string? UserPassword { get; set; }
    public IReadOnlyList<(byte Type, byte[] Value)> Attributes => _attributes;

    public RadiusRequest Add(byte type, byte[] value)
    {
        _attributes.Add((type, value));
        return this;
    }

    public RadiusRequest Add(byte type, string text) => Add(type, Encoding.UTF8.GetBytes(text));

    public RadiusRequest Add(byte type, uint value) =>
        Add(type, [(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);

    public static RadiusRequest Pap(string user, string password) =>
        new RadiusRequest(RadiusCode.AccessRequest) { UserPassword = password }.Add(AttributeTypes.UserName, user);

    /// <summary>Encodes with Message-Authenticator first (BlastRADIUS); returns the length.</summary>
    internal int Encode(Span<byte> buffer, byte identifier, ReadOnlySpan<byte> authenticator, ReadOnlySpan<byte> secret)
    {
        var writer = new RadiusWriter(buffer, Code, identifier, authenticator);
        if (Code is RadiusCode.AccessRequest or RadiusCode.StatusServer)
            writer.AddMessageAuthenticator();
        foreach (var (type, value) in _attributes)
            writer.Add(type, value);
        if (UserPassword is not null)
        {
            Span<byte> hidden = stackalloc byte[128];
            int length = RadiusCrypto.HideUserPassword(Encoding.UTF8.GetBytes(UserPassword), secret, authenticator, hidden);
            writer.Add(AttributeTypes.UserPassword, hidden[..length]);
        }
        return writer.Complete(secret);
    }
}
