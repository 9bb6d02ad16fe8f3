using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Forewarn.Client;
using Forewarn.Core.Store;
using Microsoft.Extensions.DependencyInjection;
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
                // Held requests leave the server silent, so the client suspects it and probes with Status-Server: not part of the burst.
                if (packet.Code == RadiusCode.StatusServer)
                    continue;
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

    [SkippableFact]
    public async Task SilentServer_IsHedgedPast_Suspected_AndUsedAgainOnlyOnceItAnswers()
    {
        await using var alternate = await TestServer.StartAsync();
        await alternate.AddUserAsync("alice", "wonderland");
        // A server that is alive as a socket but answers nothing (a hang), until it is revived: then it answers Status-Server.
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int accessRequests = 0;
        bool revived = false;
        using var stop = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            var answer = new byte[4096];
            while (!stop.IsCancellationRequested)
            {
                var received = await silent.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), stop.Token);
                if (buffer[0] == (byte)RadiusCode.AccessRequest)
                    Interlocked.Increment(ref accessRequests);
                else if (buffer[0] == (byte)RadiusCode.StatusServer && Volatile.Read(ref revived))
                {
                    var writer = new RadiusWriter(answer, RadiusCode.AccessAccept, buffer[1]);
                    writer.AddMessageAuthenticator();
                    int length = writer.Complete(Secret, buffer.AsSpan(4, 16));
                    await silent.SendToAsync(answer.AsMemory(0, length), SocketFlags.None, received.RemoteEndPoint);
                }
            }
        });
        var silentPort = ((IPEndPoint)silent.LocalEndPoint!).Port;
        var primary = new PoolServer(IPAddress.Loopback, silentPort, silentPort, "testing123", priority: 1);
        var backup = new PoolServer(IPAddress.Loopback, alternate.Auth.Port, alternate.Acct.Port, "testing123", priority: 2);
        await using var client = new ForewarnClient(
            new ClientOptions { AdvisoryPort = 0, Timeout = TimeSpan.FromSeconds(2), Retries = 3, StatusServerInterval = TimeSpan.Zero },
            [primary, backup]);
        var cleared = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Cleared += s => { if (ReferenceEquals(s, primary)) cleared.TrySetResult(); };

        // Three requests at once: none answered by its deadline (2 s before any round trip is measured), each hedged to the
        // backup and accepted there, long before T × R (8 s); three misses in a row with the server silent suspect it.
        var first = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => client.SendAsync(RadiusRequest.Pap("alice", "wonderland"))));
        Assert.All(first, r => Assert.Equal((byte)RadiusCode.AccessAccept, r[0]));
        // (the third miss suspects the server, and the request it belongs to moves rather than hedges)
        long hedges = client.Counters.Hedges;
        Assert.InRange(hedges, 2, 3);
        Assert.Equal(hedges, client.Counters.HedgesWon);
        Assert.True(primary.Suspected);
        Assert.Equal(1, client.Counters.Suspicions);

        // Suspected, it gets no more requests: they go to the backup at once. (With no round trip measured yet the
        // deadline is T, so each first request's one retransmission may have left at the moment it was hedged: let it land.)
        await Task.Delay(500);
        int before = Volatile.Read(ref accessRequests);
        for (int i = 0; i < 5; i++)
            Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("alice", "wonderland")))[0]);
        Assert.Equal(before, Volatile.Read(ref accessRequests));
        Assert.Equal(hedges, client.Counters.Hedges);

        // No timer ends the suspicion: only an answer to the client's probe (Status-Server, since it speaks no advisories).
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.True(primary.Suspected);
        Volatile.Write(ref revived, true);
        await cleared.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(primary.Suspected);
        await stop.CancelAsync();
    }

    [SkippableFact]
    public async Task OnlyServerSuspected_StillGetsTheRequest_AndAnswersIt()
    {
        // The only server goes silent long enough to be suspected, then answers: with nowhere else to go the
        // client keeps asking it (suspicion is a preference among servers, not a refusal), and nothing fails.
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var silentUntil = DateTime.UtcNow + TimeSpan.FromSeconds(2.5);
        using var stop = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            var answer = new byte[4096];
            while (!stop.IsCancellationRequested)
            {
                var received = await server.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), stop.Token);
                if (DateTime.UtcNow < silentUntil || buffer[0] != (byte)RadiusCode.AccessRequest)
                    continue;
                var writer = new RadiusWriter(answer, RadiusCode.AccessAccept, buffer[1]);
                int length = writer.Complete(Secret, buffer.AsSpan(4, 16));
                await server.SendToAsync(answer.AsMemory(0, length), SocketFlags.None, received.RemoteEndPoint);
            }
        });
        var port = ((IPEndPoint)server.LocalEndPoint!).Port;
        var only = new PoolServer(IPAddress.Loopback, port, port, "testing123");
        await using var client = new ForewarnClient(
            new ClientOptions { AdvisoryPort = 0, Timeout = TimeSpan.FromMilliseconds(500), MaxTimeout = TimeSpan.FromSeconds(1), Retries = 6, StatusServerInterval = TimeSpan.Zero },
            [only]);

        var answers = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => client.SendAsync(RadiusRequest.Pap($"user{i}", "secret"))));

        Assert.All(answers, a => Assert.Equal((byte)RadiusCode.AccessAccept, a[0]));
        Assert.True(client.Counters.Suspicions >= 1, "silent past three deadlines, the server was suspected");
        Assert.Equal(0, client.Counters.Timeouts);
        await stop.CancelAsync();
    }

    [SkippableFact]
    public async Task ThirtyPercentLoss_CostsADeadline_NotT_AndNothingFails()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice", "wonderland", AuthMethods.Pap);
        var port = server.Auth.Port;
        await using var client = new ForewarnClient(
            new ClientOptions { AdvisoryPort = 0, Timeout = TimeSpan.FromSeconds(5), Retries = 3, StatusServerInterval = TimeSpan.Zero },
            [new PoolServer(IPAddress.Loopback, port, server.Acct.Port, "testing123")]);
        // Round trips measured first: the deadline comes down from T to its floor.
        for (int i = 0; i < 20; i++)
            Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("alice", "wonderland")))[0]);

        // The server's Loss drill drops 30 % of the datagrams it receives, unread: it cannot tell.
        server.Services.GetRequiredService<Core.Health.DrillState>().Start(Core.Health.DrillKind.Loss, 120, 0.3);
        var slowest = TimeSpan.Zero;
        for (int i = 0; i < 100; i++)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("alice", "wonderland")))[0]);
            if (watch.Elapsed > slowest)
                slowest = watch.Elapsed;
        }

        long dropped = server.Counters.Dropped(DropReason.Drill);
        Assert.True(dropped >= 10, $"{dropped} dropped"); // about 30 % of the requests and of their copies
        Assert.True(client.Counters.EarlyRetransmissions >= dropped / 2, $"{client.Counters.EarlyRetransmissions} early copies for {dropped} losses");
        // A loss costs a deadline: a request is later than T only if its 8 copies within T are all lost (0.3^8).
        Assert.True(slowest < TimeSpan.FromSeconds(5), $"the slowest request took {slowest}");
        Assert.Equal(0, client.Counters.Timeouts);
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
