using System.Net;
using Forewarn.Client;
using Forewarn.Client.Tacacs;
using Forewarn.Core.Aaa.Tacacs;
using Forewarn.Core.Clients;
using Forewarn.Protocol.Tacacs;
using Forewarn.Server.Tacacs;

namespace Forewarn.Relay;

/// <summary>
/// TACACS+ for devices that cannot load the library: the relay answers them as a server would (its own
/// listener, keys and sessions) and forwards each session through a <see cref="TacacsPool"/> over the
/// relay's upstream servers, so the upstream servers' advisories (and their closing of connections when
/// they defer) move the relay's devices at once. A session that began on one upstream stays there
/// (its sequence continues there); a single-packet session that finds its server gone goes to the next.
/// Upstream failures reach the device as ERROR, which tells it to try its own next server.
/// </summary>
public sealed class RelayTacacsHandler(TacacsPool pool) : ITacacsHandler
{
    private sealed record Upstream(PoolServer Server, uint Session);

    public async ValueTask<TacacsBody> HandleAsync(TacacsBody body, TacacsHeader header, RadiusClient client, IPAddress address, AuthenSession session, CancellationToken cancellationToken)
    {
        try
        {
            switch (body)
            {
                case AuthenStart start when start.AuthenType == AuthenType.Ascii:
                {
                    // A conversation: pinned to one upstream server and one upstream session.
                    var (server, reply) = await pool.BeginAsync(start, header.Version, cancellationToken).ConfigureAwait(false);
                    session.Forwarding = new Upstream(server, reply.Session);
                    return reply.Body;
                }
                case AuthenContinue next when session.Forwarding is Upstream upstream:
                    return await pool.ContinueAsync(upstream.Server, upstream.Session, next, header.Sequence, header.Version, cancellationToken).ConfigureAwait(false);
                case AuthenContinue:
                    return TacacsConnection.Error(body.Type, "No upstream session");
                default:
                    return await pool.ForwardAsync(body, header.Version, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (TacacsException e)
        {
            return TacacsConnection.Error(body.Type, $"No upstream server answered: {e.Message}");
        }
    }
}
