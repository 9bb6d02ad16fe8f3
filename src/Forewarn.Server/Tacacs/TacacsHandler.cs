using System.Net;
using Forewarn.Core.Aaa.Tacacs;
using Forewarn.Core.Clients;
using Forewarn.Protocol.Tacacs;

namespace Forewarn.Server.Tacacs;

/// <summary>
/// What answers a TACACS+ packet that passed the connection's checks (key, sequence, session): the AAA
/// handlers in the server, the forwarding handler in the relay. <paramref name="session"/> is the
/// authentication session's state, kept across its packets.
/// </summary>
public interface ITacacsHandler
{
    ValueTask<TacacsBody> HandleAsync(TacacsBody body, TacacsHeader header, RadiusClient client, IPAddress address, AuthenSession session, CancellationToken cancellationToken);
}

/// <summary>The server's handler: authentication and authorization against the store, durable accounting.</summary>
public sealed class AaaTacacsHandler(TacacsAuthenticator authenticator, TacacsAuthorizer authorizer, TacacsAccountant accountant) : ITacacsHandler
{
    public async ValueTask<TacacsBody> HandleAsync(TacacsBody body, TacacsHeader header, RadiusClient client, IPAddress address, AuthenSession session, CancellationToken cancellationToken) =>
        body switch
        {
            AuthenStart start => await authenticator.StartAsync(start, client, session, cancellationToken).ConfigureAwait(false),
            AuthenContinue next => await authenticator.ContinueAsync(next, client, session, cancellationToken).ConfigureAwait(false),
            AuthorRequest request => await authorizer.AuthorizeAsync(request, client, cancellationToken).ConfigureAwait(false),
            AcctRequest request => await accountant.AccountAsync(request, client, address.ToString(), cancellationToken).ConfigureAwait(false),
            // A reply type from the device: the codec decodes by sequence parity, so this cannot be reached.
            _ => TacacsConnection.Error(body.Type, "Unexpected packet"),
        };
}
