using CsCheck;
using Forewarn.Protocol.Radius;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Protocol.Tests;

/// <summary>Robustness and round-trip properties over random packets.</summary>
public class PropertyTests
{
    private static readonly byte[] Secret = "testing123"u8.ToArray();

    [Fact]
    public void Decode_NeverThrows_OnArbitraryBytes()
    {
        Gen.Byte.Array[0, 300].Sample(bytes =>
        {
            var reason = RadiusPacket.TryParse(bytes, out var packet);
            if (reason != DropReason.None)
                return;
            foreach (var attribute in packet.Attributes)
                _ = attribute.Value.Length;
            _ = AttributeDecoder.Decode(packet.AttributeBytes, RadiusDictionary.BuiltIn, Secret, packet.Authenticator);
            packet.TryGetVendorAttribute(311, 26, out _);
            RadiusCrypto.VerifyMessageAuthenticator(packet, Secret, new byte[16]);
        }, iter: 20_000);
    }

    /// <summary>Packets that look like RADIUS (valid header, a plausible length) but have random attribute bytes.</summary>
    [Fact]
    public void Decode_NeverThrows_OnPlausibleHeaders()
    {
        var gen = Gen.Select(Gen.Byte[1, 13], Gen.Byte, Gen.Byte.Array[0, 200]);
        gen.Sample((code, id, body) =>
        {
            var bytes = new byte[20 + body.Length];
            bytes[0] = code;
            bytes[1] = id;
            bytes[2] = (byte)(bytes.Length >> 8);
            bytes[3] = (byte)bytes.Length;
            body.CopyTo(bytes, 20);
            if (RadiusPacket.TryParse(bytes, out var packet) == DropReason.None)
                _ = AttributeDecoder.Decode(packet.AttributeBytes, RadiusDictionary.BuiltIn, Secret, packet.Authenticator);
        }, iter: 20_000);
    }

    private static readonly Gen<(byte Type, byte[] Value)[]> Attributes =
        Gen.Select(Gen.Byte[1, 255].Where(t => t is not AttributeTypes.MessageAuthenticator and not AttributeTypes.EapMessage), Gen.Byte.Array[0, 253]).Array[0, 12];

    [Fact]
    public void EncodeThenDecode_IsIdentity_ForValidPackets()
    {
        Gen.Select(Gen.Byte, Attributes, Gen.Bool).Sample((id, attributes, signed) =>
        {
            var buffer = new byte[RadiusPacket.MaxLength];
            var writer = new RadiusWriter(buffer, RadiusCode.AccountingRequest, id);
            if (signed)
                writer.AddMessageAuthenticator();
            int size = 20 + (signed ? 18 : 0);
            foreach (var (type, value) in attributes)
            {
                if (size + 2 + value.Length > RadiusPacket.MaxLength)
                    break;
                writer.Add(type, value);
                size += 2 + value.Length;
            }
            int length = writer.Complete(Secret);
            Assert.Equal(DropReason.None, RadiusPacket.TryParse(buffer.AsSpan(0, length), out var packet));
            Assert.True(RadiusCrypto.VerifyRequestAuthenticator(packet.Bytes, Secret));
            Assert.Equal(signed, RadiusCrypto.VerifyMessageAuthenticator(packet, Secret));
            int i = signed ? -1 : 0;
            foreach (var attribute in packet.Attributes)
            {
                if (i >= 0)
                {
                    Assert.Equal(attributes[i].Type, attribute.Type);
                    Assert.Equal(attributes[i].Value, attribute.Value.ToArray());
                }
                i++;
            }
            // Re-encoding the decoded attributes gives the same octets.
            var again = new byte[RadiusPacket.MaxLength];
            var rewriter = new RadiusWriter(again, RadiusCode.AccountingRequest, id);
            foreach (var attribute in packet.Attributes)
            {
                if (attribute.Type == AttributeTypes.MessageAuthenticator)
                    rewriter.AddMessageAuthenticator();
                else
                    rewriter.Add(attribute.Type, attribute.Value);
            }
            Assert.Equal(buffer.AsSpan(0, length).ToArray(), again.AsSpan(0, rewriter.Complete(Secret)).ToArray());
        }, iter: 2_000);
    }

    [Fact]
    public void FlippingAnyOctet_BreaksTheAuthenticators()
    {
        Gen.Select(Attributes, Gen.Int[0, 10_000]).Sample((attributes, position) =>
        {
            var buffer = new byte[RadiusPacket.MaxLength];
            var writer = new RadiusWriter(buffer, RadiusCode.AccountingRequest, 7);
            writer.AddMessageAuthenticator();
            foreach (var (type, value) in attributes.Take(8))
                writer.Add(type, value.AsSpan(0, Math.Min(value.Length, 200)));
            int length = writer.Complete(Secret);
            int at = position % length;
            if (at is 2 or 3)
                return; // a changed Length field is a validation failure, covered elsewhere
            buffer[at] ^= 0x01;
            if (RadiusPacket.TryParse(buffer.AsSpan(0, length), out var packet) != DropReason.None)
                return;
            Assert.False(RadiusCrypto.VerifyRequestAuthenticator(packet.Bytes, Secret) && RadiusCrypto.VerifyMessageAuthenticator(packet, Secret));
        }, iter: 2_000);
    }
}
