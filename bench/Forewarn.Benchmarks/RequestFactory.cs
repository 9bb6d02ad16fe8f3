using System.Text;
using Forewarn.Protocol.Radius;

namespace Forewarn.Benchmarks;

internal static class RequestFactory
{
    private static readonly byte[] Authenticator = Convert.FromHexString("0f403f9473978057bd83d5cb98f4227a");

    public static byte[] PapRequest(string user, string password, byte[] secret)
    {
        var buffer = new byte[RadiusPacket.MaxLength];
        var writer = new RadiusWriter(buffer, RadiusCode.AccessRequest, 1, Authenticator);
        writer.AddMessageAuthenticator();
        writer.AddText(AttributeTypes.UserName, user);
        Span<byte> hidden = stackalloc byte[128];
        int length = RadiusCrypto.HideUserPassword(Encoding.UTF8.GetBytes(password), secret, Authenticator, hidden);
        writer.Add(AttributeTypes.UserPassword, hidden[..length]);
        writer.Add(AttributeTypes.NasIpAddress, [127, 0, 0, 1]);
        writer.AddUInt32(AttributeTypes.NasPort, 1);
        writer.AddText(AttributeTypes.CallingStationId, "00-11-22-33-44-55");
        return buffer.AsSpan(0, writer.Complete(secret)).ToArray();
    }

    public static byte[] MsChapV2Request(string user, byte[] challenge, byte[] peerChallenge, byte[] ntHash, byte[] secret)
    {
        var response = new byte[50];
        response[0] = 1;
        peerChallenge.CopyTo(response, 2);
        Forewarn.Protocol.Auth.MsChap.GenerateNtResponse(challenge, peerChallenge, Encoding.UTF8.GetBytes(user), ntHash, response.AsSpan(26, 24));
        var buffer = new byte[RadiusPacket.MaxLength];
        var writer = new RadiusWriter(buffer, RadiusCode.AccessRequest, 2, Authenticator);
        writer.AddMessageAuthenticator();
        writer.AddText(AttributeTypes.UserName, user);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChapChallenge, challenge);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChap2Response, response);
        return buffer.AsSpan(0, writer.Complete(secret)).ToArray();
    }
}
