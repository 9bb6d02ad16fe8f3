using System.Net;
using System.Text;
using Forewarn.Protocol.Auth;
using Forewarn.Protocol.Radius;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Protocol.Tests;

/// <summary>Worked examples from the RFCs: decoded fields asserted, then a byte-exact re-encode.</summary>
public class RfcExampleTests
{
    private static readonly byte[] Secret = "xyzzy5461"u8.ToArray();

    private static readonly byte[] Rfc2865_7_1_Request = Paths.Hex(
        "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a" +
        "01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8 01 10 05 06 00 00 00 03");

    private static readonly byte[] Rfc2865_7_1_Response = Paths.Hex(
        "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2" +
        "06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03");

    [Fact]
    public void Rfc2865_7_1_AccessRequest_DecodesAndUnhidesPassword()
    {
        Assert.Equal(DropReason.None, RadiusPacket.TryParse(Rfc2865_7_1_Request, out var packet));
        Assert.Equal(RadiusCode.AccessRequest, packet.Code);
        Assert.Equal(0, packet.Identifier);
        Assert.Equal(56, packet.Length);
        var attributes = AttributeDecoder.Decode(packet.AttributeBytes, RadiusDictionary.BuiltIn, Secret, packet.Authenticator);
        Assert.Equal(["User-Name = nemo", "User-Password = arctangent", "NAS-IP-Address = 192.168.1.16", "NAS-Port = 3"],
            attributes.Select(a => a.ToString()));
    }

    [Fact]
    public void Rfc2865_7_1_AccessRequest_ReencodesByteExact()
    {
        var buffer = new byte[4096];
        var request = Rfc2865_7_1_Request;
        var writer = new RadiusWriter(buffer, RadiusCode.AccessRequest, 0, request.AsSpan(4, 16));
        writer.AddText(AttributeTypes.UserName, "nemo");
        Span<byte> hidden = stackalloc byte[16];
        RadiusCrypto.HideUserPassword("arctangent"u8, Secret, request.AsSpan(4, 16), hidden);
        writer.Add(AttributeTypes.UserPassword, hidden);
        writer.Add(AttributeTypes.NasIpAddress, IPAddress.Parse("192.168.1.16").GetAddressBytes());
        writer.AddUInt32(AttributeTypes.NasPort, 3);
        int length = writer.Complete(Secret);
        Assert.Equal(Convert.ToHexString(request), Convert.ToHexString(buffer, 0, length));
    }

    [Fact]
    public void Rfc2865_7_1_AccessAccept_ReencodesByteExact()
    {
        var buffer = new byte[4096];
        var dictionary = RadiusDictionary.BuiltIn;
        var writer = new RadiusWriter(buffer, RadiusCode.AccessAccept, 0);
        foreach (var (name, value) in new[] { ("Service-Type", "Login-User"), ("Login-Service", "Telnet"), ("Login-IP-Host", "192.168.1.3") })
        {
            Assert.True(AttributeValue.TryParse(dictionary, name, value, out var attribute, out var error), error);
            attribute!.WriteTo(ref writer, dictionary, Secret, Rfc2865_7_1_Request.AsSpan(4, 16));
        }
        int length = writer.Complete(Secret, Rfc2865_7_1_Request.AsSpan(4, 16));
        Assert.Equal(Convert.ToHexString(Rfc2865_7_1_Response), Convert.ToHexString(buffer, 0, length));
        Assert.True(RadiusCrypto.VerifyResponseAuthenticator(Rfc2865_7_1_Response, Rfc2865_7_1_Request.AsSpan(4, 16), Secret));
    }

    [Fact]
    public void Rfc2865_7_2_ChapRequest_DecodesAndReencodes()
    {
        var request = Paths.Hex(
            "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e 0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9 75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75" +
            "04 06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00 02 07 06 00 00 00 01");
        Assert.Equal(DropReason.None, RadiusPacket.TryParse(request, out var packet));
        var attributes = AttributeDecoder.Decode(packet.AttributeBytes, RadiusDictionary.BuiltIn);
        Assert.Equal(["User-Name = flopsy", "CHAP-Password = 0x16e97557c316185895f293ff63440772" + "75", "NAS-IP-Address = 192.168.1.16",
            "NAS-Port = 20", "Service-Type = Framed-User", "Framed-Protocol = PPP"], attributes.Select(a => a.ToString()));

        var buffer = new byte[4096];
        var writer = new RadiusWriter(buffer, RadiusCode.AccessRequest, 1, packet.Authenticator);
        foreach (var attribute in attributes)
            new AttributeValue(attribute.Definition!, attribute.Value).WriteTo(ref writer, RadiusDictionary.BuiltIn, Secret, packet.Authenticator);
        Assert.Equal(Convert.ToHexString(request), Convert.ToHexString(buffer, 0, writer.Complete(Secret)));
    }

    private static readonly byte[] Rfc5997_6_StatusServer = Paths.Hex(
        "0c da 00 26 8a 54 f4 68 6f b3 94 c5 28 66 e3 02 18 5d 06 23 50 12 5a 66 5e 2e 1e 84 11 f3 e2 43 82 20 97 c8 4f a3");

    [Fact]
    public void Rfc5997_6_StatusServer_MessageAuthenticatorVerifiesAndReencodes()
    {
        Assert.Equal(DropReason.None, RadiusPacket.TryParse(Rfc5997_6_StatusServer, out var packet));
        Assert.Equal(RadiusCode.StatusServer, packet.Code);
        Assert.Equal(0xda, packet.Identifier);
        Assert.True(RadiusCrypto.VerifyMessageAuthenticator(packet, Secret));
        Assert.False(RadiusCrypto.VerifyMessageAuthenticator(packet, "wrong"u8));

        var buffer = new byte[4096];
        var writer = new RadiusWriter(buffer, RadiusCode.StatusServer, 0xda, packet.Authenticator);
        writer.AddMessageAuthenticator();
        Assert.Equal(Convert.ToHexString(Rfc5997_6_StatusServer), Convert.ToHexString(buffer, 0, writer.Complete(Secret)));
    }

    /// <summary>RFC 2759 §9.2: the MS-CHAPv2 sample computations.</summary>
    [Fact]
    public void Rfc2759_9_2_MsChapV2Vectors()
    {
        var authenticatorChallenge = Paths.Hex("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28");
        var peerChallenge = Paths.Hex("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E");
        var userName = "User"u8.ToArray();

        var challenge = new byte[8];
        MsChap.ChallengeHash(peerChallenge, authenticatorChallenge, userName, challenge);
        Assert.Equal("D02E4386BCE91226", Convert.ToHexString(challenge));

        var hash = new byte[16];
        MsChap.NtPasswordHash("clientPass", hash);
        Assert.Equal("44EBBA8D5312B8D611474411F56989AE", Convert.ToHexString(hash));

        var hashHash = new byte[16];
        MsChap.HashNtPasswordHash(hash, hashHash);
        Assert.Equal("41C00C584BD2D91C4017A2A12FA59F3F", Convert.ToHexString(hashHash));

        var response = new byte[24];
        MsChap.GenerateNtResponse(authenticatorChallenge, peerChallenge, userName, hash, response);
        Assert.Equal("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF", Convert.ToHexString(response));

        Assert.Equal("S=407A5589115FD0D6209F510FE9C04566932CDA56",
            MsChap.GenerateAuthenticatorResponse(hash, response, peerChallenge, authenticatorChallenge, userName));
    }

    /// <summary>RFC 2865 §5.2 hiding of a password longer than one block, and the 128-octet limit.</summary>
    [Fact]
    public void Rfc2865_5_2_UserPasswordRoundTripsToTheLimit()
    {
        var authenticator = Enumerable.Range(0, 16).Select(i => (byte)i).ToArray();
        for (int length = 0; length <= 128; length++)
        {
            var password = Encoding.ASCII.GetBytes(new string('p', length));
            var hidden = new byte[128];
            int hiddenLength = RadiusCrypto.HideUserPassword(password, Secret, authenticator, hidden);
            Assert.Equal(Math.Max(16, (length + 15) / 16 * 16), hiddenLength);
            var plain = new byte[128];
            int plainLength = RadiusCrypto.UnhideUserPassword(hidden.AsSpan(0, hiddenLength), Secret, authenticator, plain);
            Assert.Equal(password, plain.AsSpan(0, plainLength).ToArray());
        }
        Assert.Throws<ArgumentException>(() => RadiusCrypto.HideUserPassword(new byte[129], Secret, authenticator, new byte[256]));
    }
}
