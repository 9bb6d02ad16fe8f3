using Forewarn.Protocol.Eap;

namespace Forewarn.Core.Aaa.Eap;

/// <summary>
/// What EAP-TLS, PEAP and TTLS share (RFC 5216 §3, RFC 5281 §9, RFC 9427): the Start request, TLS
/// records reassembled from the peer's fragments (each acknowledged with an empty request) and
/// fragmented to the peer (each fragment acknowledged by an empty response), the TLS engine created
/// only when the peer's ClientHello arrives (so a conversation that never starts TLS costs little),
/// and the hooks where a method acts once the handshake is done.
/// </summary>
public abstract class TlsMethod : EapMethod
{
    private readonly List<byte> _incoming = [];
    private int _expected = -1;
    private byte[] _outgoing = [];
    private int _sent;
    private bool _completed;

    protected TlsEngine? Tls { get; private set; }
    protected string Identity { get; private set; } = "";

    /// <summary>The version in the flags' low bits: 0 for the versions Forewarn speaks.</summary>
    protected virtual byte Version => 0;

    /// <summary>EAP-TLS asks for the client's certificate; the tunnels do not.</summary>
    protected virtual bool RequestClientCertificate => false;

    public override ValueTask<MethodStep> StartAsync(EapContext context, string identity, byte identifier, CancellationToken cancellationToken)
    {
        Identity = identity;
        return ValueTask.FromResult(MethodStep.Request([(byte)(EapTlsFraming.Start | Version)]));
    }

    public override async ValueTask<MethodStep> ProcessAsync(EapContext context, ReadOnlyMemory<byte> typeData, byte identifier, CancellationToken cancellationToken)
    {
        if (!EapTlsFraming.TryRead(typeData.Span, out var fragment, out string error))
            return MethodStep.Fail($"{Describe}: {error}");
        if (fragment.Data.IsEmpty && !fragment.More && _incoming.Count == 0)
        {
            // An acknowledgement: the next fragment of ours, or the method's move.
            if (_sent < _outgoing.Length)
                return NextFragment(context);
            if (Tls is null)
                return MethodStep.Fail($"{Describe}: the peer acknowledged a request it was not sent");
            return await AfterAsync(context, await OnAcknowledgedAsync(context, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        }
        if (_sent < _outgoing.Length)
            return MethodStep.Fail($"{Describe}: the peer sent data while fragments of ours were outstanding");
        if (fragment.TotalLength >= 0 && _incoming.Count == 0)
            _expected = fragment.TotalLength;
        if (_incoming.Count + fragment.Data.Length > EapTlsFraming.MaxMessageLength || (_expected >= 0 && _incoming.Count + fragment.Data.Length > _expected))
            return MethodStep.Fail($"{Describe}: the peer's TLS message exceeds its announced or allowed length");
        _incoming.AddRange(fragment.Data);
        if (fragment.More)
            return MethodStep.Request([Version]);
        var records = _incoming.ToArray();
        _incoming.Clear();
        _incoming.Capacity = 0;
        _expected = -1;
        Tls ??= new TlsEngine(context.Settings.Tls!, RequestClientCertificate, KeyRequests);
        if (!Tls.Offer(records))
            return MethodStep.Fail($"{Describe}: {Tls.Failure ?? "TLS failed"}");
        MethodStep? decision = null;
        if (!_completed && Tls.HandshakeComplete)
        {
            _completed = true;
            decision = await OnHandshakeCompleteAsync(context, Tls.HasOutput, cancellationToken).ConfigureAwait(false);
        }
        if (decision is null && Tls.HandshakeComplete)
        {
            var data = Tls.ReadApplicationData();
            if (data.Length > 0)
                decision = await OnApplicationDataAsync(context, data, cancellationToken).ConfigureAwait(false);
        }
        return await AfterAsync(context, decision).ConfigureAwait(false);
    }

    /// <summary>A decision of the method's stands; otherwise whatever TLS has to send goes out (or an empty request asks the peer to go on).</summary>
    private ValueTask<MethodStep> AfterAsync(EapContext context, MethodStep? decision)
    {
        if (decision is { Kind: not StepKind.Request } final)
            return ValueTask.FromResult(final);
        _outgoing = Tls!.TakeOutput();
        _sent = 0;
        return ValueTask.FromResult(_outgoing.Length > 0 ? NextFragment(context) : MethodStep.Request([Version]));
    }

    private MethodStep NextFragment(EapContext context)
    {
        int size = Math.Min(context.Settings.FragmentSize, _outgoing.Length - _sent);
        bool first = _sent == 0;
        bool more = _sent + size < _outgoing.Length;
        var data = EapTlsFraming.Write(Version, _outgoing.AsSpan(_sent, size), _outgoing.Length, first, more);
        _sent += size;
        if (!more)
        {
            _outgoing = [];
            _sent = 0;
        }
        return MethodStep.Request(data);
    }

    /// <summary>The handshake has just completed; <paramref name="finishedPending"/> when the server's Finished is still to be sent (TLS 1.2).</summary>
    protected virtual ValueTask<MethodStep?> OnHandshakeCompleteAsync(EapContext context, bool finishedPending, CancellationToken cancellationToken) => ValueTask.FromResult<MethodStep?>(null);

    /// <summary>Data from the peer through the tunnel.</summary>
    protected virtual ValueTask<MethodStep?> OnApplicationDataAsync(EapContext context, byte[] data, CancellationToken cancellationToken) =>
        ValueTask.FromResult<MethodStep?>(MethodStep.Fail($"{Describe}: unexpected data in the tunnel"));

    /// <summary>The peer acknowledged the last of what was sent, with nothing more to say.</summary>
    protected abstract ValueTask<MethodStep?> OnAcknowledgedAsync(EapContext context, CancellationToken cancellationToken);

    /// <summary>The label of the method's key material with TLS 1.2 ("client EAP encryption", "ttls keying material").</summary>
    protected abstract string KeyLabel { get; }

    private const string Tls13Label = "EXPORTER_EAP_TLS_Key_Material";

    /// <summary>
    /// What TLS must export when the handshake completes: the key material, with TLS 1.3 the exporter
    /// with label EXPORTER_EAP_TLS_Key_Material and the method's type as context (RFC 9190 §2.3,
    /// RFC 9427 §2.1), with TLS 1.2 the PRF with the method's label; and whatever else the method needs.
    /// </summary>
    protected virtual IReadOnlyList<TlsEngine.KeyRequest> KeyRequests(bool tls13) =>
        [tls13 ? new TlsEngine.KeyRequest(Tls13Label, [Type], 128) : new TlsEngine.KeyRequest(KeyLabel, null, 128)];

    /// <summary>Success for <paramref name="user"/>, if the user may use this method (the tunnel is checked against the inner identity, the one authenticated), with the MSK.</summary>
    protected MethodStep Succeed(Store.UserRecord? user, Store.GroupRecord? group)
    {
        if (CredentialVerifier.Refusal(user, Flag, EapType.Name(Type)) is { } refusal)
            return MethodStep.Fail(refusal, user);
        return new MethodStep(StepKind.Success, Msk: Msk(), User: user, Group: group, Method: $"{Describe} ({Tls!.Version})");
    }

    /// <summary>The MSK: the first 64 octets of the key material.</summary>
    protected byte[] Msk() => Tls!.Key(Tls.IsTls13 ? Tls13Label : KeyLabel)[..64];
}
