using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Forewarn.Client;
using Forewarn.Protocol.Radius;
using Xunit;

namespace Forewarn.Server.Tests;

/// <summary>The client library's request handling, seen from real UDP peers.</summary>
[Collection("Serial")]
public sealed class ClientLibraryTests
{
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("testing123");

    [SkippableFact]
    public async Task TwoThousandOutstandingRequests_EachAnswerMatchedToItsRequest()
    {
        const int count = 2000;
        // A server that holds every request until all 2,000 are outstanding, then answers them in reverse
        // order, each with a Reply-Message naming the user it was asked about. Loopback drops datagrams
        // beyond a socket's buffer, so requests or answers lost in the burst come again as retransmissions,
        // and those are answered as they come.
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var held = new ConcurrentDictionary<string, (EndPoint Source, byte[] Request)>();
        var outstanding = new ConcurrentDictionary<(EndPoint, byte), string>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var answer = new byte[4096];
        async Task AnswerAsync(string user, EndPoint source, byte[] request)
        {
            var writer = new RadiusWriter(answer, RadiusCode.AccessAccept, request[1]);
            writer.AddText(AttributeTypes.ReplyMessage, "for " + user);
            int length = writer.Complete(Secret, request.AsSpan(4, 16));
            await server.SendToAsync(answer.AsMemory(0, length), SocketFlags.None, source);
        }
        var serving = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            bool burstSent = false;
            while (!stop.IsCancellationRequested)
            {
                var received = await server.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), stop.Token);
                var request = buffer.AsSpan(0, received.ReceivedBytes).ToArray();
                Assert.Equal(DropReason.None, RadiusPacket.TryParse(request, out var packet));
                Assert.True(packet.TryGetAttribute(AttributeTypes.UserName, out var name));
                var user = Encoding.UTF8.GetString(name);
                // No two outstanding requests share source port and Identifier (no server could tell them apart).
                var owner = outstanding.GetOrAdd((received.RemoteEndPoint, packet.Identifier), user);
                Assert.True(owner == user, $"{user} was sent with the Identifier of {owner}, which is still outstanding");
                if (burstSent)
                {
                    await AnswerAsync(user, received.RemoteEndPoint, request);
                    continue;
                }
                held.TryAdd(user, (received.RemoteEndPoint, request));
                if (held.Count < count)
                    continue;
                foreach (var (heldUser, (source, heldRequest)) in held.OrderByDescending(h => h.Key, StringComparer.Ordinal))
                    await AnswerAsync(heldUser, source, heldRequest);
                burstSent = true;
            }
        });

        var endpoint = (IPEndPoint)server.LocalEndPoint!;
        await using var client = new ForewarnClient(
            new ClientOptions { AdvisoryPort = 0, Timeout = TimeSpan.FromSeconds(2), MaxTimeout = TimeSpan.FromSeconds(2), Retries = 20, StatusServerInterval = TimeSpan.Zero },
            [new PoolServer(IPAddress.Loopback, endpoint.Port, endpoint.Port, "testing123")]);
        var requests = Enumerable.Range(0, count).Select(async i =>
        {
            var user = $"user{i:D4}";
            var response = await client.SendAsync(RadiusRequest.Pap(user, "secret"));
            Assert.Equal(DropReason.None, RadiusPacket.TryParse(response, out var packet));
            Assert.True(packet.TryGetAttribute(AttributeTypes.ReplyMessage, out var message));
            return (user, reply: Encoding.UTF8.GetString(message));
        }).ToList();
        var all = Task.WhenAll(requests);
        if (await Task.WhenAny(all, serving) == serving)
            await serving; // the server's assertions failed: say which
        var answers = await all;
        await stop.CancelAsync();

        Assert.All(answers, a => Assert.Equal("for " + a.user, a.reply));
        Assert.True(client.SourcePortCount >= count / 256, $"{count} outstanding requests need at least {count / 256 + 1} source ports; the client opened {client.SourcePortCount}");
        Assert.Equal(count, client.Counters.Answered);
        Assert.Equal(0, client.Counters.InvalidAnswers);
    }

    [SkippableFact]
    public async Task Retransmission_IsAnsweredFromTheServersDuplicateCache()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice", "wonderland");
        // A link that loses the server's first answer: the client must retransmit, and the server must
        // recognise the retransmission as the same request.
        await using var link = new LossyLink(server.Auth, dropAnswers: 1);
        await using var client = new ForewarnClient(
            new ClientOptions { AdvisoryPort = 0, Timeout = TimeSpan.FromMilliseconds(300), Retries = 3, StatusServerInterval = TimeSpan.Zero },
            [new PoolServer(IPAddress.Loopback, link.Endpoint.Port, link.Endpoint.Port, "testing123")]);

        var response = await client.SendAsync(RadiusRequest.Pap("alice", "wonderland"));

        Assert.Equal((byte)RadiusCode.AccessAccept, response[0]);
        Assert.True(link.Requests.Count >= 2, "the first answer was lost, so the request went twice");
        Assert.All(link.Requests, r => Assert.Equal(link.Requests[0], r)); // byte for byte: same Identifier and authenticator
        Assert.Equal(1, server.Counters.AccessAccepts);
        Assert.True(server.Counters.DuplicatesAnswered >= 1);
        Assert.True(client.Counters.Retransmissions >= 1);
    }

    /// <summary>A UDP relay between one client and one server that drops the first answers it carries.</summary>
    private sealed class LossyLink : IAsyncDisposable
    {
        private readonly Socket _front = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly Socket _back = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _up, _down;
        private EndPoint? _client;
        private int _toDrop;

        public List<string> Requests { get; } = [];
        public IPEndPoint Endpoint => (IPEndPoint)_front.LocalEndPoint!;

        public LossyLink(IPEndPoint server, int dropAnswers)
        {
            _toDrop = dropAnswers;
            _front.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _back.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _up = Task.Run(async () =>
            {
                var buffer = new byte[4096];
                while (!_stop.IsCancellationRequested)
                {
                    var received = await _front.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                    _client = received.RemoteEndPoint;
                    lock (Requests)
                        Requests.Add(Convert.ToHexString(buffer, 0, received.ReceivedBytes));
                    await _back.SendToAsync(buffer.AsMemory(0, received.ReceivedBytes), SocketFlags.None, server);
                }
            });
            _down = Task.Run(async () =>
            {
                var buffer = new byte[4096];
                while (!_stop.IsCancellationRequested)
                {
                    var received = await _back.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                    if (Interlocked.Decrement(ref _toDrop) >= 0)
                        continue;
                    await _front.SendToAsync(buffer.AsMemory(0, received.ReceivedBytes), SocketFlags.None, _client!);
                }
            });
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await Task.WhenAll(_up, _down);
            }
            catch (OperationCanceledException)
            {
            }
            _front.Dispose();
            _back.Dispose();
        }
    }
}
