using System.Text;
using Forewarn.Protocol.Auth;
using Forewarn.Protocol.Radius;

namespace Forewarn.Protocol.Tests;

/// <summary>
/// Allocation budgets of the hot path, counted by the runtime (not timed): once a thread has met a
/// secret, validating, verifying, decoding a password and encoding a signed answer allocate nothing.
/// </summary>
public class AllocationTests
{
    private static readonly byte[] Secret = "testing123"u8.ToArray();

    private static byte[] PapRequest(byte[] authenticator)
    {
        var buffer = new byte[RadiusPacket.MaxLength];
        var writer = new RadiusWriter(buffer, RadiusCode.AccessRequest, 7, authenticator);
        writer.AddMessageAuthenticator();
        writer.AddText(AttributeTypes.UserName, "alice");
        Span<byte> hidden = stackalloc byte[128];
        int length = RadiusCrypto.HideUserPassword("correct horse"u8, Secret, authenticator, hidden);
        writer.Add(AttributeTypes.UserPassword, hidden[..length]);
        writer.AddUInt32(AttributeTypes.NasPort, 3);
        return buffer.AsSpan(0, writer.Complete(Secret)).ToArray();
    }

    /// <summary>One request's work on the server's side of the wire, returning something so that nothing is optimised away.</summary>
    private static int ServeOnce(byte[] request, byte[] response)
    {
        if (RadiusPacket.TryParse(request, out var packet) != DropReason.None || !RadiusCrypto.VerifyMessageAuthenticator(packet, Secret))
            return -1;
        packet.TryGetAttribute(AttributeTypes.UserPassword, out var hidden);
        Span<byte> password = stackalloc byte[128];
        int passwordLength = RadiusCrypto.UnhideUserPassword(hidden, Secret, packet.Authenticator, password);
        Span<byte> chap = stackalloc byte[17];
        Chap.Response(1, password[..passwordLength], packet.Authenticator, chap[1..]);
        var writer = new RadiusWriter(response, RadiusCode.AccessAccept, packet.Identifier);
        writer.AddMessageAuthenticator();
        writer.AddUInt32(AttributeTypes.SessionTimeout, 3600);
        Span<byte> salted = stackalloc byte[34];
        int saltedLength = RadiusCrypto.SaltEncrypt(chap[1..], Secret, packet.Authenticator, 0x1234, salted);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsMppeSendKey, salted[..saltedLength]);
        int length = writer.Complete(Secret, packet.Authenticator);
        return RadiusCrypto.VerifyResponseAuthenticator(response.AsSpan(0, length), packet.Authenticator, Secret) ? length + passwordLength : -1;
    }

    [Fact]
    public void DecodeVerifyEncode_AllocateNothing()
    {
        var request = PapRequest(Encoding.ASCII.GetBytes("0123456789abcdef"));
        var response = new byte[RadiusPacket.MaxLength];
        Assert.True(ServeOnce(request, response) > 0);  // warm: JIT, this thread's digests
        long before = GC.GetAllocatedBytesForCurrentThread();
        int total = 0;
        for (int i = 0; i < 1000; i++)
            total += ServeOnce(request, response);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(total > 0);
        Assert.Equal(0, allocated);
    }
}
