using Forewarn.Core.Clients;
using Forewarn.Protocol.Eap;
using Microsoft.Extensions.Logging;

namespace Forewarn.Core.Aaa.Eap;

/// <summary>
/// EAP carried in RADIUS (RFC 3579): finds the conversation an Access-Request continues by its State
/// (or begins one on an EAP-Response/Identity without State), runs one round of it, and says what
/// to answer. One round of a conversation runs at a time; a second copy arriving meanwhile is
/// dropped (a retransmission of an answered round gets the cached answer from the duplicate cache
/// before it reaches here).
/// </summary>
public sealed partial class EapService(CredentialVerifier credentials, EapSettings settings, EapConversations conversations, ILogger<EapService> logger)
{
    public EapSettings Settings => settings;
    public EapConversations Conversations => conversations;

    /// <summary>The answer to one round: the EAP packet and, for a challenge, the State to send; Drop when the request is to be dropped unanswered.</summary>
    public readonly record struct Round(EapResult Result, byte[]? State, bool Drop = false);

    public async ValueTask<Round> ProcessAsync(byte[] eap, byte[]? state, RadiusClient client, CancellationToken cancellationToken)
    {
        if (!EapPacket.TryParse(eap, out var packet, out string error))
            return Refuse(eap, $"EAP-Message: {error}");
        byte identifier = packet.Identifier;
        EapConversation? conversation;
        if (state is not null)
        {
            conversation = conversations.Find(state, client.Name);
            if (conversation is null)
                return Refuse(eap, "unknown or expired EAP conversation (State)");
        }
        else
        {
            if (packet.Code != EapCode.Response || packet.Type != EapType.Identity)
                return Refuse(eap, $"an EAP conversation must begin with an identity, not {EapType.Name(packet.Type)}");
            var machine = new EapMachine(new EapContext(client, credentials, settings), settings.Methods, inner: false);
            conversation = conversations.TryStart(client.Name, machine);
            if (conversation is null)
                return Refuse(eap, "too many EAP conversations in progress");
        }
        if (Interlocked.CompareExchange(ref conversation.Busy, 1, 0) != 0)
            return new Round(default, null, Drop: true);
        EapResult result;
        try
        {
            result = await conversation.Machine.ProcessAsync(eap, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A method's bug must cost this conversation, never the server.
            LogMethodFault(logger, conversation.Machine.Describe, client.Name, e.GetType().Name, e.Message);
            result = new EapResult(StepKind.Failure, EapPacket.Outcome(false, identifier), Reason: "internal error in the EAP method", UserName: conversation.Machine.Identity, Method: conversation.Machine.Describe);
        }
        finally
        {
            Volatile.Write(ref conversation.Busy, 0);
        }
        if (result.Kind != StepKind.Request)
        {
            conversations.End(conversation);
            return new Round(result, null);
        }
        return new Round(result, conversation.StateBytes());
    }

    private static Round Refuse(byte[] eap, string reason)
    {
        byte identifier = eap.Length > 1 ? eap[1] : (byte)0;
        return new Round(new EapResult(StepKind.Failure, EapPacket.Outcome(false, identifier), Reason: reason, Method: "EAP"), null);
    }

    [LoggerMessage(EventId = 105, Level = LogLevel.Warning, Message = "EAP method {Method} failed for a request from {Client}: {Type}: {Message}")]
    private static partial void LogMethodFault(ILogger logger, string method, string client, string type, string message);
}
