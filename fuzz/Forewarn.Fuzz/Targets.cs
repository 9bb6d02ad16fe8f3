using System.Buffers.Binary;
using System.Security.Cryptography;
using Forewarn.Protocol.Advisory;
using Forewarn.Protocol.Eap;
using Forewarn.Protocol.Radius;
using Forewarn.Protocol.Radius.Dictionary;
using Forewarn.Protocol.Tacacs;

namespace Forewarn.Fuzz;

/// <summary>A broken promise found by a fuzz input: thrown, so that the fuzzer records the input as a crash.</summary>
public sealed class InvariantException(string message) : Exception(message);

/// <summary>
/// One target per parser of untrusted input. Each reads one input and checks what must hold for every
/// input: nothing throws; what decodes re-encodes to bytes that decode to the same; a forged advisory never
/// verifies. A target throws only on a broken promise (an <see cref="InvariantException"/>, or an exception
/// the parser let escape). The network's parsers are here; the files operators write have classes of their
/// own (<see cref="DictionaryTarget"/>, <see cref="ConfigTarget"/>).
/// </summary>
public static class Targets
{
    public static readonly IReadOnlyDictionary<string, Action<ReadOnlySpan<byte>>> All = new Dictionary<string, Action<ReadOnlySpan<byte>>>
    {
        ["radius"] = Radius,
        ["tacacs"] = Tacacs,
        ["advisory"] = Advisory,
        ["eap"] = Eap,
        ["dictionary"] = DictionaryTarget.Run,
        ["config"] = ConfigTarget.Run,
    };

    private static readonly byte[] Secret = "testing123"u8.ToArray();
    private static readonly byte[] AdvisoryKey = SHA256.HashData("forewarn-fuzz advisory key"u8);
    // A property, not a field: instrumented code must not run before SharpFuzz's Fuzzer.Run has mapped AFL's
    // shared memory (a static initialiser would run it first, and crash the fork server).
    private static RadiusDictionary Dictionary => RadiusDictionary.BuiltIn;

    internal static void Require(bool condition, string promise)
    {
        if (!condition)
            throw new InvariantException(promise);
    }

    /// <summary>
    /// A RADIUS datagram: the validation every request meets first, then what the server does with a valid
    /// one — attributes walked, decoded with the dictionary (hidden values revealed with a secret, as the
    /// accounting record and the logs do), the dedup key hashed — and each decoded value's text parsed and
    /// formatted again to the same text (what an operator reads is what a reply item written from it sends).
    /// </summary>
    public static void Radius(ReadOnlySpan<byte> data)
    {
        if (RadiusPacket.TryParse(data, out var packet) != DropReason.None)
            return;
        int walked = 0;
        foreach (var attribute in packet.Attributes)
            walked += attribute.Value.Length + 2;
        Require(walked == packet.AttributeBytes.Length, "the attributes of a valid packet cover its attribute block exactly");
        _ = Core.Aaa.AccountingHandler.DedupKey(packet, "fuzz");
        foreach (var decoded in AttributeDecoder.Decode(packet.AttributeBytes, Dictionary, Secret, packet.Authenticator))
        {
            string text = decoded.ValueText;
            if (decoded.Definition is not { } definition || decoded.Tag != 0 || text.StartsWith("0x", StringComparison.Ordinal))
                continue;
            Require(ValueCodec.TryParse(definition, text, out var again, out string error),
                $"{decoded.Name}: the text '{text}' it was formatted as parses back ({error})");
            // The wire may hold a longer form than the encoder writes (an IPv6 prefix sent with all 16 octets):
            // the text is the canonical form, so it is the text that must survive the round trip.
            string again2 = ValueCodec.Format(definition, again);
            Require(again2 == text, $"{decoded.Name}: '{text}' parses to octets formatted as '{again2}'");
        }
    }

    /// <summary>
    /// A TACACS+ packet with its body in the clear (the flag forced, so that the fuzzer reaches the body's
    /// parser rather than the MD5 pad): decoded, re-encoded, decoded again, encoded again to the same bytes.
    /// </summary>
    public static void Tacacs(ReadOnlySpan<byte> data)
    {
        if (data.Length < TacacsHeader.Size)
        {
            // Short input is the header reader's to refuse (and every input must reach instrumented code).
            Require(TacacsPacket.TryReadHeader(data, out _) != TacacsError.None, "a header shorter than 12 octets is refused");
            return;
        }
        var packet = data.ToArray();
        packet[3] |= (byte)TacacsFlags.Unencrypted;
        if (TacacsPacket.TryDecode(packet, Secret, out var header, out var body) != TacacsError.None || body is null)
            return;
        var first = new byte[TacacsHeader.Size + 65_536 * 4];
        int length = TacacsPacket.Encode(body, header.Version, header.Sequence, header.Flags, header.SessionId, Secret, first);
        Require(TacacsPacket.TryDecode(first.AsSpan(0, length), Secret, out var header2, out var body2) == TacacsError.None && body2 is not null,
            "what decoded re-encodes to a packet that decodes");
        var second = new byte[first.Length];
        int length2 = TacacsPacket.Encode(body2!, header2.Version, header2.Sequence, header2.Flags, header2.SessionId, Secret, second);
        Require(first.AsSpan(0, length).SequenceEqual(second.AsSpan(0, length2)), "decoding and encoding again changes nothing");
    }

    /// <summary>
    /// An advisory: as received (a forgery: must never verify), then signed here with the key so that the
    /// fuzzer reaches the parser behind the digest: a message that decodes re-encodes to one that decodes
    /// to the same, and any single changed octet of a signed message fails verification.
    /// </summary>
    public static void Advisory(ReadOnlySpan<byte> data)
    {
        Require(AdvisoryCodec.TryDecode(data, AdvisoryKey, out _) != AdvisoryError.None || IsSignedWithKey(data),
            "an advisory verifies only with a digest made with the key");
        int length = data.Length + AdvisoryCodec.DigestLength;
        if (data.Length < AdvisoryCodec.FixedHeaderLength || length > AdvisoryCodec.MaxLength)
            return;
        var signed = new byte[length];
        data.CopyTo(signed);
        signed[0] = (byte)'F';
        signed[1] = (byte)'W';
        signed[2] = AdvisoryMessage.CurrentVersion;
        BinaryPrimitives.WriteUInt16BigEndian(signed.AsSpan(4), (ushort)length);
        HMACSHA256.HashData(AdvisoryKey, signed.AsSpan(0, data.Length), signed.AsSpan(data.Length));
        if (AdvisoryCodec.TryDecode(signed, AdvisoryKey, out var message) != AdvisoryError.None || message is null)
            return;
        var encoded = new byte[AdvisoryCodec.MaxLength * 2];
        int n;
        try
        {
            n = AdvisoryCodec.Encode(message, AdvisoryKey, encoded);
        }
        catch (InvalidOperationException)
        {
            // Re-encoding can outgrow the limit (each alternate's TACACS+ port written out): the encoder refuses
            // it, as it would for any message too large to send. Not a path a received message takes.
            return;
        }
        Require(AdvisoryCodec.TryDecode(encoded.AsSpan(0, n), AdvisoryKey, out var again) == AdvisoryError.None && again is not null, "a decoded advisory re-encodes to one that verifies");
        var encodedAgain = new byte[encoded.Length];
        int n2 = AdvisoryCodec.Encode(again!, AdvisoryKey, encodedAgain);
        Require(encoded.AsSpan(0, n).SequenceEqual(encodedAgain.AsSpan(0, n2)), "decoding and encoding an advisory again changes nothing");
        int flip = data.Length == 0 ? 0 : data[0] % length;
        signed[flip] ^= 0x01;
        Require(AdvisoryCodec.TryDecode(signed, AdvisoryKey, out _) != AdvisoryError.None, "a signed advisory with one octet changed does not verify");
    }

    private static bool IsSignedWithKey(ReadOnlySpan<byte> data)
    {
        if (data.Length < AdvisoryCodec.DigestLength)
            return false;
        Span<byte> digest = stackalloc byte[AdvisoryCodec.DigestLength];
        HMACSHA256.HashData(AdvisoryKey, data[..^AdvisoryCodec.DigestLength], digest);
        return CryptographicOperations.FixedTimeEquals(digest, data[^AdvisoryCodec.DigestLength..]);
    }

    /// <summary>EAP as it arrives in EAP-Message: the packet, the TLS methods' framing, and TTLS's Diameter AVPs inside.</summary>
    public static void Eap(ReadOnlySpan<byte> data)
    {
        _ = DiameterAvp.TryParse(data, out _, out _);
        if (!EapPacket.TryParse(data, out var packet, out _))
            return;
        Require(packet.Bytes.Length <= data.Length, "an EAP packet lies within what was received");
        if (packet.Type is EapType.Tls or EapType.Ttls or EapType.Peap && EapTlsFraming.TryRead(packet.TypeData, out _, out _))
            _ = DiameterAvp.TryParse(packet.TypeData, out _, out _);
    }
}
