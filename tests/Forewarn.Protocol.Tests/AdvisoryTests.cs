using System.Net;
using CsCheck;
using Forewarn.Protocol.Advisory;
using Microsoft.Extensions.Time.Testing;

namespace Forewarn.Protocol.Tests;

/// <summary>The advisory protocol (docs/protocol.md): vectors, tamper resistance, freshness, addressing, rotation.</summary>
public class AdvisoryTests
{
    private static readonly byte[] Key0 = Convert.FromHexString("2a82de14722574d1cd371fa76b160d220321b322ebdc6684711cddfb1717a5d3");

    private const string FailoverVector =
        "46570101005c00010006448831ae20000000019ac29c1400001e047f000001047f00010a0108047f0000020714c8" +
        "0108047f000003071496030200b476c79aee36a05c9c02e5531644c8857c958c2e7d04f4215c80e4409a15c48d31";
    private const string AckVector =
        "46570104004e00000006448831ae21f40000019ac29c14140000047f00010a047f00000102080006448831ae2000" +
        "1e8ee43f2f6dbb94386e8344bcddaa23dda38a5a5e8789f2c81cd081d1a4e943";
    private const string InviteVector =
        "46570102006000000006448831ae20010000019ac29cfe6000000600000000000000000000000000000001060000" +
        "000000000000000000000000000105020714ab2d8f3c5317d0e2a9db5c633555a1f0020ea8bfe56e28f068c7fa8c3d" +
        "cfd685";

    private static readonly AdvisoryMessage Failover = new()
    {
        Type = AdvisoryType.Failover,
        Reason = AdvisoryReason.Overload,
        Sequence = 1764201600000000,
        Timestamp = 1764201600000,
        RetryAfter = 30,
        Server = IPAddress.Parse("127.0.0.1"),
        Client = IPAddress.Parse("127.0.1.10"),
        Alternates = [new Alternate(IPAddress.Parse("127.0.0.2"), 1812, 200), new Alternate(IPAddress.Parse("127.0.0.3"), 1812, 150)],
        Score = 180,
    };

    private static string Encode(AdvisoryMessage message, byte[] key)
    {
        var buffer = new byte[AdvisoryCodec.MaxLength];
        return Convert.ToHexStringLower(buffer, 0, AdvisoryCodec.Encode(message, key, buffer));
    }

    [Fact]
    public void KeyDerivation_Vector() => Assert.Equal(Key0, AdvisoryKeys.Derive("testing123"u8, 0));

    [Fact]
    public void Vectors_EncodeByteExact_AndDecodeBack()
    {
        Assert.Equal(FailoverVector, Encode(Failover, Key0));
        Assert.Equal(AdvisoryError.None, AdvisoryCodec.TryDecode(Convert.FromHexString(FailoverVector), Key0, out var decoded));
        Assert.Equal(Failover.Alternates, decoded!.Alternates);
        Assert.Equal(Failover with { Alternates = decoded.Alternates }, decoded);

        var ack = new AdvisoryMessage { Type = AdvisoryType.Ack, Sequence = 1764201600000500, Timestamp = 1764201600020, Server = IPAddress.Parse("127.0.1.10"), Client = IPAddress.Parse("127.0.0.1"), AckedSequence = 1764201600000000 };
        Assert.Equal(AckVector, Encode(ack, Key0));
        var invite = new AdvisoryMessage { Type = AdvisoryType.Invite, Sequence = 1764201600000001, Timestamp = 1764201660000, Server = IPAddress.IPv6Loopback, Client = IPAddress.IPv6Loopback, ServicePort = 1812 };
        Assert.Equal(InviteVector, Encode(invite, Key0));
        Assert.Equal(AdvisoryError.None, AdvisoryCodec.TryDecode(Convert.FromHexString(InviteVector), Key0, out var decodedInvite));
        Assert.Equal(1812, decodedInvite!.ServicePort);
    }

    /// <summary>TACACS+ ports ride in TLVs of their own: a receiver that knows them reads them back; the vectors above (without them) are unchanged.</summary>
    [Fact]
    public void TacacsPorts_RoundTrip_InTheirOwnTlvs()
    {
        var message = Failover with
        {
            Alternates = [new Alternate(IPAddress.Parse("127.0.0.2"), 1812, 200, 49), new Alternate(IPAddress.Parse("::2"), 1812, 150, 4949), new Alternate(IPAddress.Parse("127.0.0.3"), 1812, 100)],
            TacacsPort = 49,
        };
        var buffer = new byte[AdvisoryCodec.MaxLength];
        int length = AdvisoryCodec.Encode(message, Key0, buffer);
        Assert.Equal(AdvisoryError.None, AdvisoryCodec.TryDecode(buffer.AsSpan(0, length), Key0, out var decoded));
        Assert.Equal(message.Alternates, decoded!.Alternates);
        Assert.Equal(49, decoded.TacacsPort);
        Assert.Equal(FailoverVector, Encode(Failover, Key0));
    }

    /// <summary>A survivor's PeerDown names the silent server; without that name it is malformed. Peer health carries a slice of its sender's clients.</summary>
    [Fact]
    public void PeerDown_NamesItsSubject_AndPeerHealth_CarriesClients()
    {
        var down = Failover with { Type = AdvisoryType.PeerDown, Reason = AdvisoryReason.PeerSilent, Server = IPAddress.Parse("127.0.0.2"), Subject = IPAddress.Parse("127.0.0.1") };
        var buffer = new byte[AdvisoryCodec.MaxLength];
        int length = AdvisoryCodec.Encode(down, Key0, buffer);
        Assert.Equal(AdvisoryError.None, AdvisoryCodec.TryDecode(buffer.AsSpan(0, length), Key0, out var decoded));
        Assert.Equal(IPAddress.Parse("127.0.0.1"), decoded!.Subject);
        Assert.Equal(AdvisoryType.PeerDown, decoded.Type);

        length = AdvisoryCodec.Encode(down with { Subject = null }, Key0, buffer);
        Assert.Equal(AdvisoryError.Malformed, AdvisoryCodec.TryDecode(buffer.AsSpan(0, length), Key0, out _));

        IPAddress[] clients = [.. Enumerable.Range(0, 100).Select(i => IPAddress.Parse($"127.3.0.{i}")), IPAddress.Parse("2001:db8::7")];
        var health = new AdvisoryMessage { Type = AdvisoryType.PeerHealth, Sequence = 1, Timestamp = 1, Server = IPAddress.Loopback, Client = IPAddress.Loopback, Score = 1000, Clients = clients };
        length = AdvisoryCodec.Encode(health, Key0, buffer);
        Assert.True(length <= AdvisoryCodec.MaxLength);
        Assert.Equal(AdvisoryError.None, AdvisoryCodec.TryDecode(buffer.AsSpan(0, length), Key0, out var decodedHealth));
        Assert.Equal(clients, decodedHealth!.Clients);
    }

    [Fact]
    public void ChangingAnyOctet_IsRejected()
    {
        var original = Convert.FromHexString(FailoverVector);
        for (int i = 0; i < original.Length; i++)
        {
            for (int bit = 0; bit < 8; bit++)
            {
                var tampered = (byte[])original.Clone();
                tampered[i] ^= (byte)(1 << bit);
                Assert.NotEqual(AdvisoryError.None, AdvisoryCodec.TryDecode(tampered, Key0, out _));
            }
        }
        Assert.Equal(AdvisoryError.BadDigest, AdvisoryCodec.TryDecode(original, AdvisoryKeys.Derive("other"u8, 0), out _));
    }

    [Fact]
    public void RandomMessages_RoundTrip_AndRandomBytesNeverDecode()
    {
        var address = Gen.Bool.Select(Gen.Byte.Array[4], Gen.Byte.Array[16], (v4, a, b) => new IPAddress(v4 ? a : b));
        var messages = Gen.Select(Gen.Int[1, 6], Gen.ULong, Gen.Long[0, long.MaxValue / 2], address, address,
            Gen.Select(address, Gen.UShort, Gen.Byte, (a, p, w) => new Alternate(a, p, w)).Array[0, 8],
            (type, sequence, timestamp, server, client, alternates) => new AdvisoryMessage
            {
                Type = (AdvisoryType)type, Sequence = sequence, Timestamp = timestamp, Server = server, Client = client, Alternates = alternates,
            });
        messages.Sample(message =>
        {
            var buffer = new byte[AdvisoryCodec.MaxLength];
            int length = AdvisoryCodec.Encode(message, Key0, buffer);
            Assert.Equal(AdvisoryError.None, AdvisoryCodec.TryDecode(buffer.AsSpan(0, length), Key0, out var decoded));
            Assert.Equal(message.Alternates, decoded!.Alternates);
            Assert.Equal(message with { Alternates = decoded.Alternates }, decoded);
        }, iter: 2000);
        Gen.Byte.Array[0, 300].Sample(bytes => Assert.NotEqual(AdvisoryError.None, AdvisoryCodec.TryDecode(bytes, Key0, out _)), iter: 5000);
    }

    private static (FakeTimeProvider Time, AdvisoryReceiver Receiver) Receiver()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1764201600000));
        return (time, new AdvisoryReceiver(time, AdvisoryReceiver.DefaultWindow));
    }

    private static readonly IPAddress ServerAddress = IPAddress.Parse("127.0.0.1");
    private static readonly IPAddress ClientAddress = IPAddress.Parse("127.0.1.10");

    private static AdvisoryReceiver.Verdict Check(AdvisoryReceiver receiver, byte[] data, out AdvisoryError error, IPAddress? source = null, IPAddress? self = null) =>
        receiver.Check(data, source ?? ServerAddress, self ?? ClientAddress, id => id == 0 ? Key0 : null, out _, out error);

    [Fact]
    public void Replay_IsRejected_RetransmissionIsRecognised()
    {
        var (_, receiver) = Receiver();
        var data = Convert.FromHexString(FailoverVector);
        Assert.Equal(AdvisoryReceiver.Verdict.Accept, Check(receiver, data, out _));
        Assert.Equal(AdvisoryReceiver.Verdict.Retransmission, Check(receiver, data, out _));
        // A newer message, then the old one again: a replay.
        var newer = Convert.FromHexString(Encode(Failover with { Sequence = Failover.Sequence + 1, Timestamp = Failover.Timestamp + 5 }, Key0));
        Assert.Equal(AdvisoryReceiver.Verdict.Accept, Check(receiver, newer, out _));
        Assert.Equal(AdvisoryReceiver.Verdict.Reject, Check(receiver, data, out var error));
        Assert.Equal(AdvisoryError.Replayed, error);
        // An old sequence with a new timestamp (a forger cannot sign it, but the order rule stands alone too).
        var reordered = Convert.FromHexString(Encode(Failover with { Timestamp = Failover.Timestamp + 9 }, Key0));
        Assert.Equal(AdvisoryReceiver.Verdict.Reject, Check(receiver, reordered, out error));
        Assert.Equal(AdvisoryError.Replayed, error);
    }

    [Fact]
    public void Expired_AndFromTheFuture_AreRejected()
    {
        var (time, receiver) = Receiver();
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(AdvisoryReceiver.Verdict.Reject, Check(receiver, Convert.FromHexString(FailoverVector), out var error));
        Assert.Equal(AdvisoryError.Expired, error);
        var (_, receiver2) = Receiver();
        var future = Convert.FromHexString(Encode(Failover with { Timestamp = Failover.Timestamp + 31_000 }, Key0));
        Assert.Equal(AdvisoryReceiver.Verdict.Reject, Check(receiver2, future, out error));
        Assert.Equal(AdvisoryError.Expired, error);
    }

    [Fact]
    public void Misaddressed_IsRejected()
    {
        var (_, receiver) = Receiver();
        var data = Convert.FromHexString(FailoverVector);
        Assert.Equal(AdvisoryReceiver.Verdict.Reject, Check(receiver, data, out var error, source: IPAddress.Parse("127.0.0.9")));
        Assert.Equal(AdvisoryError.MisaddressedServer, error);
        Assert.Equal(AdvisoryReceiver.Verdict.Reject, Check(receiver, data, out error, self: IPAddress.Parse("127.0.1.11")));
        Assert.Equal(AdvisoryError.MisaddressedClient, error);
    }

    [Fact]
    public void Rotation_TwoKeyIdsVerify_UnknownIdIsRejected()
    {
        var keys = AdvisoryKeys.FromSecrets(new Dictionary<byte, string> { [1] = "old secret", [2] = "new secret" }, currentId: 2);
        var (_, receiver) = Receiver();
        byte[] Signed(byte id, ulong sequence)
        {
            keys.TryGet(id, out var key);
            return Convert.FromHexString(Encode(Failover with { KeyId = id, Sequence = sequence }, key));
        }
        byte[]? KeyFor(byte id) => keys.TryGet(id, out var key) ? key : null;
        Assert.Equal(AdvisoryReceiver.Verdict.Accept, receiver.Check(Signed(1, 10), ServerAddress, ClientAddress, KeyFor, out _, out _));
        Assert.Equal(AdvisoryReceiver.Verdict.Accept, receiver.Check(Signed(2, 11), ServerAddress, ClientAddress, KeyFor, out _, out _));
        var unknown = Convert.FromHexString(Encode(Failover with { KeyId = 3, Sequence = 12 }, Key0));
        Assert.Equal(AdvisoryReceiver.Verdict.Reject, receiver.Check(unknown, ServerAddress, ClientAddress, KeyFor, out _, out var error));
        Assert.Equal(AdvisoryError.UnknownKey, error);
    }

    [Fact]
    public void HundredThousandSenders_AreForgottenOnceTheirMessagesExpire()
    {
        var (time, receiver) = Receiver();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var buffer = new byte[AdvisoryCodec.MaxLength];
        byte[] From(IPAddress server, ulong sequence, long timestamp) =>
            buffer[..AdvisoryCodec.Encode(Failover with { Server = server, Sequence = sequence, Timestamp = timestamp }, Key0, buffer)];
        IPAddress Sender(int i) => new([10, (byte)(i >> 16), (byte)(i >> 8), (byte)i]);
        var first = From(Sender(0), 5, now);
        for (int i = 0; i < 100_000; i++)
            Assert.Equal(AdvisoryReceiver.Verdict.Accept, receiver.Check(i == 0 ? first : From(Sender(i), 5, now), Sender(i), ClientAddress, _ => Key0, out _, out _));
        Assert.Equal(100_000, receiver.Senders);

        // One window later every one of those messages is expired: their senders need not be remembered.
        time.Advance(AdvisoryReceiver.DefaultWindow + TimeSpan.FromSeconds(1));
        long later = time.GetUtcNow().ToUnixTimeMilliseconds();
        Assert.Equal(AdvisoryReceiver.Verdict.Accept, receiver.Check(From(Sender(200_000), 1, later), Sender(200_000), ClientAddress, _ => Key0, out _, out _));
        Assert.Equal(1, receiver.Senders);
        // ...and what they sent cannot be replayed: it has expired.
        Assert.Equal(AdvisoryReceiver.Verdict.Reject, receiver.Check(first, Sender(0), ClientAddress, _ => Key0, out _, out var error));
        Assert.Equal(AdvisoryError.Expired, error);
    }

    [Fact]
    public void SenderRestartedWithItsClockSteppedBack_IsBelievedAgainWithinOneWindow()
    {
        // A NAS (no storage: its epoch is its clock) restarts with the clock 10 s behind: its sequence is lower.
        var (time, receiver) = Receiver();
        var sender = new AdvisorySequence(time);
        var before = Encode(Failover with { Sequence = sender.Next(), Timestamp = time.GetUtcNow().ToUnixTimeMilliseconds() }, Key0);
        Assert.Equal(AdvisoryReceiver.Verdict.Accept, Check(receiver, Convert.FromHexString(before), out _));
        var skewed = new FakeTimeProvider(time.GetUtcNow() - TimeSpan.FromSeconds(10));
        var restarted = new AdvisorySequence(skewed);
        string Next() => Encode(Failover with { Sequence = restarted.Next(), Timestamp = skewed.GetUtcNow().ToUnixTimeMilliseconds() }, Key0);

        Assert.Equal(AdvisoryReceiver.Verdict.Reject, Check(receiver, Convert.FromHexString(Next()), out var error));
        Assert.Equal(AdvisoryError.Replayed, error);
        // Once its last message from before the restart has expired, nothing of it can be replayed, and it is believed.
        time.Advance(AdvisoryReceiver.DefaultWindow + TimeSpan.FromSeconds(1));
        skewed.Advance(AdvisoryReceiver.DefaultWindow + TimeSpan.FromSeconds(1));
        Assert.Equal(AdvisoryReceiver.Verdict.Accept, Check(receiver, Convert.FromHexString(Next()), out _));
        Assert.Equal(AdvisoryReceiver.Verdict.Reject, Check(receiver, Convert.FromHexString(before), out error));
        Assert.Equal(AdvisoryError.Expired, error);
    }

    [Fact]
    public void SequencesOfALaterEpoch_AreAboveEveryEarlierOne_WhateverTheClock()
    {
        var early = new AdvisorySequence(1_764_201_600);
        ulong last = 0;
        for (int i = 0; i < 1000; i++)
            last = early.Next();
        Assert.True(new AdvisorySequence(1_764_201_601).Next() > last);
    }
}
