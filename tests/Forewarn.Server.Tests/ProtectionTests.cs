using System.Text;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;

namespace Forewarn.Server.Tests;

/// <summary>Duplicate detection, BlastRADIUS rules, unknown clients and malformed input, over real UDP.</summary>
public sealed class ProtectionTests : IAsyncLifetime
{
    private const string Secret = "testing123";
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        await _server.AddUserAsync("bob", "bobpass");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static RadiusPacket Parse(byte[] response)
    {
        Assert.Equal(DropReason.None, RadiusPacket.TryParse(response, out var packet));
        return packet;
    }

    [SkippableFact]
    public async Task EveryResponse_CarriesMessageAuthenticatorFirst_AndVerifies()
    {
        using var peer = new UdpPeer();
        foreach (var password in new[] { "bobpass", "nope" })
        {
            var request = UdpPeer.AccessRequest(1, "bob", password, Secret, messageAuthenticator: false);
            var response = await peer.ExchangeAsync(_server.Auth, request);
            Assert.NotNull(response);
            var packet = Parse(response);
            Assert.Equal(password == "bobpass" ? RadiusCode.AccessAccept : RadiusCode.AccessReject, packet.Code);
            Assert.Equal(AttributeTypes.MessageAuthenticator, response[20]);
            Assert.True(RadiusCrypto.VerifyResponseAuthenticator(response, request.AsSpan(4, 16), Encoding.UTF8.GetBytes(Secret)));
            Assert.True(RadiusCrypto.VerifyMessageAuthenticator(packet, Encoding.UTF8.GetBytes(Secret), request.AsSpan(4, 16)));
        }
    }

    [SkippableFact]
    public async Task Retransmission_GetsTheCachedResponse_AndIsProcessedOnce()
    {
        using var peer = new UdpPeer();
        var request = UdpPeer.AccessRequest(9, "bob", "bobpass", Secret);
        var first = await peer.ExchangeAsync(_server.Auth, request);
        var second = await peer.ExchangeAsync(_server.Auth, request);
        Assert.NotNull(first);
        Assert.Equal(first, second);
        Assert.Equal(1, _server.Counters.AccessAccepts);
        Assert.Equal(1, _server.Counters.DuplicatesAnswered);
    }

    [SkippableFact]
    public async Task ProxyStateWithoutMessageAuthenticator_IsAlwaysDropped()
    {
        using var peer = new UdpPeer();
        var request = UdpPeer.AccessRequest(2, "bob", "bobpass", Secret, messageAuthenticator: false,
            extra: (ref RadiusWriter w) => w.Add(AttributeTypes.ProxyState, "hop1"u8));
        Assert.Null(await peer.ExchangeAsync(_server.Auth, request, 500));
        Assert.Equal(1, _server.Counters.Dropped(DropReason.ProxyStateWithoutMessageAuthenticator));

        // With a Message-Authenticator it is served, and Proxy-State comes back unchanged.
        var signed = UdpPeer.AccessRequest(3, "bob", "bobpass", Secret, messageAuthenticator: true,
            extra: (ref RadiusWriter w) => w.Add(AttributeTypes.ProxyState, "hop1"u8));
        var response = await peer.ExchangeAsync(_server.Auth, signed);
        Assert.NotNull(response);
        Assert.True(Parse(response).TryGetAttribute(AttributeTypes.ProxyState, out var state));
        Assert.Equal("hop1"u8.ToArray(), state.ToArray());
    }

    [SkippableFact]
    public async Task AutoPolicy_LearnsMessageAuthenticator_ThenRequiresIt()
    {
        using var peer = new UdpPeer();
        Assert.NotNull(await peer.ExchangeAsync(_server.Auth, UdpPeer.AccessRequest(1, "bob", "bobpass", Secret, messageAuthenticator: false)));
        Assert.NotNull(await peer.ExchangeAsync(_server.Auth, UdpPeer.AccessRequest(2, "bob", "bobpass", Secret, messageAuthenticator: true)));
        // Learned: from now on a request without it is dropped.
        Assert.Null(await peer.ExchangeAsync(_server.Auth, UdpPeer.AccessRequest(3, "bob", "bobpass", Secret, messageAuthenticator: false), 500));
        Assert.Equal(1, _server.Counters.Dropped(DropReason.MissingMessageAuthenticator));
    }

    [SkippableFact]
    public async Task RequirePolicy_DropsWithout_AndBadMessageAuthenticatorIsDropped()
    {
        await _server.AddClientAsync(new ClientRecord("strict", "127.0.0.2", "strict-secret", MessageAuthenticator: MessageAuthenticatorPolicy.Require));
        using var peer = new UdpPeer("127.0.0.2");
        Assert.Null(await peer.ExchangeAsync(_server.Auth, UdpPeer.AccessRequest(1, "bob", "bobpass", "strict-secret", messageAuthenticator: false), 500));
        Assert.Equal(1, _server.Counters.Dropped(DropReason.MissingMessageAuthenticator));

        // Signed with the wrong secret: the Message-Authenticator does not verify.
        Assert.Null(await peer.ExchangeAsync(_server.Auth, UdpPeer.AccessRequest(2, "bob", "bobpass", "other-secret", messageAuthenticator: true), 500));
        Assert.Equal(1, _server.Counters.Dropped(DropReason.BadMessageAuthenticator));

        var response = await peer.ExchangeAsync(_server.Auth, UdpPeer.AccessRequest(3, "bob", "bobpass", "strict-secret", messageAuthenticator: true));
        Assert.Equal(RadiusCode.AccessAccept, Parse(response!).Code);
    }

    [SkippableFact]
    public async Task UnknownSource_IsDroppedAndCounted()
    {
        using var peer = new UdpPeer("127.0.0.77");
        Assert.Null(await peer.ExchangeAsync(_server.Auth, UdpPeer.AccessRequest(1, "bob", "bobpass", Secret), 500));
        Assert.Equal(1, _server.Counters.Dropped(DropReason.UnknownClient));
    }

    [SkippableFact]
    public async Task CidrClient_MatchesItsBlock_WithDeviceGroupCheck()
    {
        await _server.AddClientAsync(new ClientRecord("lab", "127.0.10.0/24", "lab-secret", DeviceGroup: "lab-switches"));
        await _server.AddUserAsync("labonly", "pw", checks: [new CheckItem("Device-Group", CheckOperator.Equal, "lab-switches")]);
        using var lab = new UdpPeer("127.0.10.42");
        Assert.Equal(RadiusCode.AccessAccept, Parse((await lab.ExchangeAsync(_server.Auth, UdpPeer.AccessRequest(1, "labonly", "pw", "lab-secret")))!).Code);
        using var other = new UdpPeer();
        Assert.Equal(RadiusCode.AccessReject, Parse((await other.ExchangeAsync(_server.Auth, UdpPeer.AccessRequest(1, "labonly", "pw", Secret)))!).Code);
    }

    [SkippableFact]
    public async Task AccountingWithBadAuthenticator_IsDropped_AndNothingStored()
    {
        using var peer = new UdpPeer();
        var buffer = new byte[4096];
        var writer = new RadiusWriter(buffer, RadiusCode.AccountingRequest, 5);
        writer.AddText(AttributeTypes.UserName, "bob");
        writer.AddUInt32(AttributeTypes.AcctStatusType, 1);
        writer.AddText(AttributeTypes.AcctSessionId, "forged");
        int length = writer.Complete("not-the-secret"u8);
        Assert.Null(await peer.ExchangeAsync(_server.Acct, buffer[..length], 500));
        Assert.Equal(1, _server.Counters.Dropped(DropReason.BadRequestAuthenticator));
        Assert.Empty(await _server.Store.QueryAsync(new AccountingQuery(UserName: "bob")));
    }

    [SkippableFact]
    public async Task AccessRequestOnTheAccountingPort_IsDropped()
    {
        using var peer = new UdpPeer();
        Assert.Null(await peer.ExchangeAsync(_server.Acct, UdpPeer.AccessRequest(1, "bob", "bobpass", Secret), 500));
        Assert.Equal(1, _server.Counters.Dropped(DropReason.UnexpectedCode));
    }

    [SkippableFact]
    public async Task MalformedDatagrams_AreCountedDrops_AndTheServerKeepsAnswering()
    {
        using var peer = new UdpPeer();
        var random = new Random(2865);
        var cases = new List<byte[]>
        {
            Array.Empty<byte>(),
            new byte[] { 1 },
            Convert.FromHexString("01ff000001010101010101010101010101010101"),        // length field 0
            Convert.FromHexString("01ffffff01010101010101010101010101010101"),        // length field 65535
            Convert.FromHexString("010100160101010101010101010101010101010101"),      // attribute runs past the end
            Convert.FromHexString("01010016010101010101010101010101010101010100"),    // attribute length 0
            Convert.FromHexString("63010014010101010101010101010101010101010101"),    // unknown code
            new byte[5000],                                                           // over 4096 octets
        };
        foreach (var datagram in cases)
            Assert.Null(await peer.ExchangeAsync(_server.Auth, datagram, 20));
        Assert.Equal(cases.Count, _server.Counters.TotalDropped);  // the server's own Status-Server checks are answered, not dropped

        // Random attribute bytes behind a plausible header: dropped, or (when they happen to be valid
        // RADIUS) answered with a verifiable Access-Reject; never a crash, never an unanswered valid packet.
        for (int i = 0; i < 150; i++)
        {
            var noise = new byte[random.Next(20, 300)];
            random.NextBytes(noise);
            noise[0] = 1;
            noise[2] = (byte)(noise.Length >> 8);
            noise[3] = (byte)noise.Length;
            var answer = await peer.ExchangeAsync(_server.Auth, noise, 20);
            if (answer is not null)
                Assert.Equal(RadiusCode.AccessReject, Parse(answer).Code);
        }
        var response = await peer.ExchangeAsync(_server.Auth, UdpPeer.AccessRequest(77, "bob", "bobpass", Secret));
        Assert.Equal(RadiusCode.AccessAccept, Parse(response!).Code);
        var c = _server.Counters;
        Assert.Equal(c.Received, c.TotalDropped + c.AccessAccepts + c.AccessRejects + c.StatusResponses);
        Assert.Equal(0, c.Dropped(DropReason.InternalError));
    }
}
