using System.Text;
using Forewarn.Core.Store;
using Forewarn.Protocol.Eap;

namespace Forewarn.Core.Aaa.Eap;

/// <summary>The outcome of one EAP response: the next request (a whole EAP packet), or success or failure.</summary>
public readonly record struct EapResult(StepKind Kind, byte[] Packet, byte[]? Msk = null, string? Reason = null, UserRecord? User = null, GroupRecord? Group = null, string? UserName = null, string? Method = null);

/// <summary>
/// The server side of one EAP conversation (RFC 3748 §2): the identity, a method proposed from the
/// server's preferences and the user's allowed methods, the peer's NAK answered with another, and the
/// method's rounds until success or failure. The same machine runs the outer conversation and, inside
/// PEAP and TTLS, the inner one.
/// </summary>
public sealed class EapMachine(EapContext context, IReadOnlyList<byte> offered, bool inner)
{
    private const int MaxRounds = 64;
    private EapMethod? _method;
    private readonly List<byte> _tried = [];
    private byte _identifier;
    private int _rounds;
    private int _methodRounds;
    private UserRecord? _user;

    public string? Identity { get; private set; }
    public string Describe => _method?.Describe ?? "EAP";

    /// <summary>Whether a method has answered at least one response: the conversation is a real one, not a bare start.</summary>
    public bool Progressed => _rounds > 1;

    /// <summary>An inner conversation begins with the server's Identity request.</summary>
    public byte[] Begin()
    {
        _identifier = (byte)Random.Shared.Next(256);
        return EapPacket.Build(EapCode.Request, _identifier, EapType.Identity, []);
    }

    /// <summary>The identifier of the request outstanding (PEAPv0 leaves it out of the inner packets it carries).</summary>
    public byte Identifier => _identifier;

    public async ValueTask<EapResult> ProcessAsync(ReadOnlyMemory<byte> packetBytes, CancellationToken cancellationToken)
    {
        if (!EapPacket.TryParse(packetBytes.Span, out var packet, out string error))
            return Failure(error);
        if (packet.Code != EapCode.Response)
            return Failure($"an EAP {packet.Code} where a response was expected");
        if (++_rounds > MaxRounds)
            return Failure($"more than {MaxRounds} rounds");
        bool first = Identity is null;
        if (!first && packet.Identifier != _identifier)
            return Failure($"response identifier {packet.Identifier} does not answer request {_identifier}");
        _identifier = packet.Identifier;
        byte type = packet.Type;
        if (first)
        {
            if (type != EapType.Identity)
                return Failure($"the conversation began with {EapType.Name(type)} instead of an identity");
            Identity = Encoding.UTF8.GetString(packet.TypeData);
            if (Identity.Length == 0 || Identity.Length > 253)
                return Failure("an empty or overlong identity");
            (_user, _) = await context.Credentials.FindAsync(context.Client.Name, Identity, cancellationToken).ConfigureAwait(false);
            return await ProposeAsync(null, cancellationToken).ConfigureAwait(false);
        }
        if (type == EapType.Identity)
            return Failure("a second identity");
        if (type == EapType.Nak)
        {
            if (_method is null || _methodRounds > 0)
                return Failure("a NAK after the method had begun");
            return await ProposeAsync(packet.TypeData.ToArray(), cancellationToken).ConfigureAwait(false);
        }
        if (_method is null || type != _method.Type)
            return Failure($"a {EapType.Name(type)} response to a {Describe} request");
        _methodRounds++;
        var step = await _method.ProcessAsync(context, packet.TypeData.ToArray(), _identifier, cancellationToken).ConfigureAwait(false);
        return ToResult(step, null);
    }

    /// <summary>The first method to try: the server's preference among what it offers and the user may use; after a NAK, the first of the peer's wishes that qualifies.</summary>
    private async ValueTask<EapResult> ProposeAsync(byte[]? wanted, CancellationToken cancellationToken)
    {
        IEnumerable<byte> candidates = wanted is null ? offered : wanted.Where(offered.Contains);
        string? refusal = null;
        foreach (byte type in candidates)
        {
            if (_tried.Contains(type) || EapMethods.Create(type, context) is not { } method)
                continue;
            // Outside a tunnel an unknown identity may still be an anonymous outer identity or a certificate's.
            bool userKnownLater = !inner && type is EapType.Peap or EapType.Ttls or EapType.Tls;
            if (!userKnownLater || _user is not null)
            {
                if (CredentialVerifier.Refusal(_user, method.Flag, method.Describe) is { } reason)
                {
                    refusal ??= reason;
                    continue;
                }
            }
            _tried.Add(type);
            _method = method;
            _methodRounds = 0;
            byte identifier = Next();
            var step = await method.StartAsync(context, Identity!, identifier, cancellationToken).ConfigureAwait(false);
            return ToResult(step, identifier);
        }
        if (wanted is not null && wanted.Length > 0 && wanted[0] == 0)
            return Failure("the peer supports none of the methods offered");
        return Failure(refusal ?? (wanted is null ? "no EAP method is available" : $"the peer asked for {string.Join(", ", wanted.Select(EapType.Name))}, none offered to it"));
    }

    private byte Next() => ++_identifier;

    /// <summary>A request goes out under <paramref name="identifier"/> when the method was told it (its first), else the next one.</summary>
    private EapResult ToResult(MethodStep step, byte? identifier) => step.Kind switch
    {
        StepKind.Request => new EapResult(StepKind.Request, EapPacket.Build(EapCode.Request, identifier ?? Next(), _method!.Type, step.TypeData ?? [])),
        StepKind.Success => new EapResult(StepKind.Success, EapPacket.Outcome(true, _identifier), step.Msk, null, step.User, step.Group, step.User?.Name ?? Identity, step.Method ?? Describe),
        _ => new EapResult(StepKind.Failure, EapPacket.Outcome(false, _identifier), null, step.Reason, step.User, null, step.User?.Name ?? Identity, Describe),
    };

    private EapResult Failure(string reason) => new(StepKind.Failure, EapPacket.Outcome(false, _identifier), null, reason, _user, null, Identity, Describe);
}
