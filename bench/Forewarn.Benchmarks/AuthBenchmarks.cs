using BenchmarkDotNet.Attributes;
using Forewarn.Core.Aaa;
using Forewarn.Core.Clients;
using Forewarn.Core.Store;
using Forewarn.Protocol.Auth;
using Forewarn.Protocol.Radius;
using Forewarn.Protocol.Radius.Dictionary;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forewarn.Benchmarks;

/// <summary>Credential checks and a full Access-Request through the handler (store in memory, no sockets).</summary>
[MemoryDiagnoser]
public class AuthBenchmarks : IDisposable
{
    private static readonly byte[] Secret = "testing123"u8.ToArray();
    private readonly byte[] _response = new byte[RadiusPacket.MaxLength];
    private readonly byte[] _ntHash = new byte[16];
    private readonly byte[] _challenge = Convert.FromHexString("5B5D7C7D7B3F2F3E3C2C602132262628");
    private readonly byte[] _peerChallenge = Convert.FromHexString("21402324255E262A28295F2B3A337C7E");
    private readonly byte[] _chapPassword = new byte[17];
    private AccessHandler _handler = null!;
    private SlowWork _slow = null!;
    private RadiusClient _client = null!;
    private byte[] _papRequest = null!;
    private byte[] _papHashedRequest = null!;
    private byte[] _msChapV2Request = null!;

    [GlobalSetup]
    public void Setup()
    {
        MsChap.NtPasswordHash("clientPass", _ntHash);
        _chapPassword[0] = 1;
        Chap.Response(1, "clientPass"u8, _challenge, _chapPassword.AsSpan(1));
        var sealer = new PasswordSealer(new byte[32]);
        var users = new MemoryUsers();
        users.Add(new UserRecord("alice", AuthMethods.All, Credentials.Create("clientPass", AuthMethods.All, sealer), null,
            [new ReplyItem("Session-Timeout", "3600"), new ReplyItem("Framed-IP-Address", "10.0.0.7")], []));
        users.Add(new UserRecord("bob", AuthMethods.Pap, Credentials.Create("clientPass", AuthMethods.Pap, sealer, 1000), null, [], []));
        users.Add(new UserRecord("User", AuthMethods.MsChapV2, Credentials.Create("clientPass", AuthMethods.MsChapV2, sealer), null, [], []));
        _slow = new SlowWork(new SlowWorkOptions { Threads = 1 }, TimeProvider.System);
        _handler = new AccessHandler(new CredentialVerifier(users, new PasswordHasher(), sealer, _slow), new ReplyCompiler(RadiusDictionary.BuiltIn), TimeProvider.System, NullLogger<AccessHandler>.Instance);
        _client = new RadiusClient(new ClientRecord("bench", "127.0.0.1", "testing123"));
        _papRequest = RequestFactory.PapRequest("alice", "clientPass", Secret);
        _papHashedRequest = RequestFactory.PapRequest("bob", "clientPass", Secret);
        _msChapV2Request = RequestFactory.MsChapV2Request("User", _challenge, _peerChallenge, _ntHash, Secret);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _slow.Dispose();
        GC.SuppressFinalize(this);
    }

    [Benchmark]
    public bool ChapVerify() => Chap.Verify(_chapPassword, "clientPass"u8, _challenge);

    [Benchmark]
    public void MsChapV2NtResponse()
    {
        Span<byte> response = stackalloc byte[24];
        MsChap.GenerateNtResponse(_challenge, _peerChallenge, "User"u8, _ntHash, response);
    }

    [Benchmark]
    public ValueTask<Handled> AccessRequestPap() => _handler.HandleAsync(_papRequest, _client, _response, CancellationToken.None);

    /// <summary>PAP against a salted PBKDF2 hash, after the first success has been remembered.</summary>
    [Benchmark]
    public ValueTask<Handled> AccessRequestPapHashed() => _handler.HandleAsync(_papHashedRequest, _client, _response, CancellationToken.None);

    [Benchmark]
    public ValueTask<Handled> AccessRequestMsChapV2() => _handler.HandleAsync(_msChapV2Request, _client, _response, CancellationToken.None);

    /// <summary>Every user in memory: the handler's inline path, as for a cached user in the server.</summary>
    private sealed class MemoryUsers : IUserStore, IUserCache
    {
        private readonly Dictionary<string, UserRecord> _users = new(StringComparer.Ordinal);

        public bool TryFindCachedUser(string name, out UserRecord? user)
        {
            user = _users.GetValueOrDefault(name);
            return true;
        }

        public bool TryFindCachedGroup(string name, out GroupRecord? group)
        {
            group = null;
            return true;
        }

        public void Add(UserRecord user) => _users[user.Name] = user;
        public ValueTask<UserRecord?> FindUserAsync(string name, CancellationToken cancellationToken = default) => ValueTask.FromResult(_users.GetValueOrDefault(name));
        public ValueTask<GroupRecord?> FindGroupAsync(string name, CancellationToken cancellationToken = default) => ValueTask.FromResult<GroupRecord?>(null);
        public Task<bool> AddUserAsync(UserRecord user, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<bool> UpdateUserAsync(UserRecord user, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<bool> RemoveUserAsync(string name, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<IReadOnlyList<UserRecord>> ListUsersAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task SetGroupAsync(GroupRecord group, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<bool> RemoveGroupAsync(string name, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<IReadOnlyList<GroupRecord>> ListGroupsAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<bool> PingAsync(CancellationToken cancellationToken = default) => Task.FromResult(true);
    }
}

/// <summary>The cost of one PBKDF2-HMAC-SHA256 derivation (a PAP verification nothing remembers) at the iteration counts operators choose.</summary>
public class PasswordHashBenchmarks
{
    private readonly byte[] _salt = new byte[16];
    private readonly byte[] _hash = new byte[32];

    [Params(20_000, PasswordHasher.DefaultIterations, 210_000, 600_000)]
    public int Iterations { get; set; }

    [Benchmark]
    public void Pbkdf2Sha256() =>
        System.Security.Cryptography.Rfc2898DeriveBytes.Pbkdf2("correct horse battery"u8, _salt, _hash, Iterations, System.Security.Cryptography.HashAlgorithmName.SHA256);
}
