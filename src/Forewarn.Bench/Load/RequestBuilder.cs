using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;
using Forewarn.Protocol.Auth;
using Forewarn.Protocol.Radius;

namespace Forewarn.Bench.Load;

/// <summary>
/// Writes one request of a load run into a caller's buffer without allocating: user names, the password
/// and its NT hash are prepared once; authenticators and challenges come from a per-socket generator.
/// One instance per socket (not thread-safe: its socket's lock guards it).
/// </summary>
internal sealed class RequestBuilder
{
    private readonly LoadOptions _options;
    private readonly byte[][] _userNames;
    private readonly byte[] _password;
    private readonly byte[] _ntHash = new byte[16];
    private readonly byte[] _nasAddress;
    private readonly Random _random;
    private readonly int _lane;
    // Per identifier: the accounting session it runs and where in it the next request is.
    private readonly uint[] _session = new uint[256];
    private readonly byte[] _sessionStep = new byte[256];
    private int _nextUser;
    // Different in every run, so that one run's sessions are not the previous run's: a store that
    // deduplicates accounting would otherwise see retransmissions and skip the work.
    private static readonly uint RunId = (uint)System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue);

    public RequestBuilder(LoadOptions options, int lane, System.Net.IPAddress source)
    {
        _options = options;
        _lane = lane;
        _userNames = new byte[options.Users][];
        for (int i = 0; i < options.Users; i++)
            _userNames[i] = Encoding.UTF8.GetBytes(options.UserName(i));
        _password = Encoding.UTF8.GetBytes(options.Password);
        MsChap.NtPasswordHash(options.Password, _ntHash);
        _nasAddress = source.GetAddressBytes().Length == 4 ? source.GetAddressBytes() : [127, 0, 0, 1];
        _random = new Random(lane * 7919 + 17);
        _nextUser = lane % options.Users;
    }

    /// <summary>Writes the request for <paramref name="identifier"/>; returns its length. Its authenticator is at bytes 4..20.</summary>
    public int Build(Span<byte> buffer, byte identifier)
    {
        var kind = _options.Kind;
        var code = kind switch
        {
            LoadKind.Accounting => RadiusCode.AccountingRequest,
            LoadKind.Status => RadiusCode.StatusServer,
            _ => RadiusCode.AccessRequest,
        };
        Span<byte> authenticator = stackalloc byte[16];
        if (code != RadiusCode.AccountingRequest)
            _random.NextBytes(authenticator);
        var writer = new RadiusWriter(buffer, code, identifier, authenticator);
        if (code == RadiusCode.StatusServer || (code == RadiusCode.AccessRequest && _options.MessageAuthenticator))
            writer.AddMessageAuthenticator();
        if (code == RadiusCode.StatusServer)
            return writer.Complete(_options.Secret);

        var user = _userNames[_nextUser];
        _nextUser = (_nextUser + 1) % _userNames.Length;
        writer.Add(AttributeTypes.UserName, user);
        switch (kind)
        {
            case LoadKind.Pap:
                Span<byte> hidden = stackalloc byte[128];
                int length = RadiusCrypto.HideUserPassword(_password, _options.Secret, authenticator, hidden);
                writer.Add(AttributeTypes.UserPassword, hidden[..length]);
                break;
            case LoadKind.Chap:
                Span<byte> chap = stackalloc byte[17];
                chap[0] = identifier;
                Chap.Response(identifier, _password, authenticator, chap[1..]);
                writer.Add(AttributeTypes.ChapPassword, chap);
                break;
            case LoadKind.MsChapV2:
                AddMsChapV2(ref writer, user);
                break;
            case LoadKind.Accounting:
                AddAccounting(ref writer, identifier);
                break;
        }
        writer.Add(AttributeTypes.NasIpAddress, _nasAddress);
        writer.AddUInt32(AttributeTypes.NasPort, identifier);
        return writer.Complete(_options.Secret);
    }

    private void AddMsChapV2(ref RadiusWriter writer, ReadOnlySpan<byte> user)
    {
        Span<byte> challenge = stackalloc byte[16];
        _random.NextBytes(challenge);
        Span<byte> response = stackalloc byte[50];
        response.Clear();
        response[0] = 1;
        _random.NextBytes(response.Slice(2, 16));
        MsChap.GenerateNtResponse(challenge, response.Slice(2, 16), user, _ntHash, response.Slice(26, 24));
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChapChallenge, challenge);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChap2Response, response);
    }

    /// <summary>Each identifier runs sessions in turn: Start, Interim-Update, Stop, then a new session.</summary>
    private void AddAccounting(ref RadiusWriter writer, byte identifier)
    {
        byte step = _sessionStep[identifier];
        if (step == 0)
            _session[identifier]++;
        _sessionStep[identifier] = (byte)((step + 1) % 3);
        var status = step switch { 0 => AcctStatusType.Start, 1 => AcctStatusType.InterimUpdate, _ => AcctStatusType.Stop };
        writer.AddUInt32(AttributeTypes.AcctStatusType, (uint)status);
        Span<byte> sessionId = stackalloc byte[32];
        Utf8.TryWrite(sessionId, $"{RunId:x8}{_lane:x4}{identifier:x2}{_session[identifier]:x8}", out int written);
        writer.Add(AttributeTypes.AcctSessionId, sessionId[..written]);
        if (status != AcctStatusType.Start)
        {
            uint seconds = step * 60u;
            writer.AddUInt32(AttributeTypes.AcctSessionTime, seconds);
            writer.AddUInt32(AttributeTypes.AcctInputOctets, seconds * 1500);
            writer.AddUInt32(AttributeTypes.AcctOutputOctets, seconds * 9000);
        }
        if (status == AcctStatusType.Stop)
            writer.AddUInt32(AttributeTypes.AcctTerminateCause, 1);
        Span<byte> framed = [10, (byte)_lane, identifier, 1];
        writer.Add(AttributeTypes.FramedIpAddress, framed);
    }

    /// <summary>The response codes that answer this kind of request ("accepted" ones first).</summary>
    public static bool IsAnswer(LoadKind kind, RadiusCode code, out bool accepted)
    {
        accepted = code is RadiusCode.AccessAccept or RadiusCode.AccountingResponse;
        return kind switch
        {
            LoadKind.Accounting => code == RadiusCode.AccountingResponse,
            LoadKind.Status => code is RadiusCode.AccessAccept or RadiusCode.AccountingResponse,
            _ => code is RadiusCode.AccessAccept or RadiusCode.AccessReject or RadiusCode.AccessChallenge,
        };
    }

    internal static uint ReadUInt32(ReadOnlySpan<byte> value) => BinaryPrimitives.ReadUInt32BigEndian(value);
}
