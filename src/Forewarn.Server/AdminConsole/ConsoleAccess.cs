using System.Net;
using Forewarn.Server.Health;
using Microsoft.AspNetCore.Http;

namespace Forewarn.Server.AdminConsole;

/// <summary>Who is asking: a console login (with its session), or a script holding the admin token.</summary>
public sealed record AdminPrincipal(string Name, AdminRole Role, ConsoleSession? Session)
{
    /// <summary>The name the audit log gives a request made with the admin token.</summary>
    public const string TokenName = "(token)";

    public static AdminPrincipal Of(HttpContext context) =>
        context.Items[typeof(AdminPrincipal)] as AdminPrincipal ?? throw new InvalidOperationException("the request passed no access check");
}

/// <summary>
/// The admin API's gate, one middleware in front of every endpoint:
/// <list type="number">
/// <item>the Host header must name the admin address (no DNS rebinding);</item>
/// <item>the console's page and assets, the login and the OpenAPI document are open; everything else needs a
/// caller: the bearer token (scripts, the command line: an admin) or a console session cookie;</item>
/// <item>a change (any method but GET and HEAD) made with a session must carry the session's CSRF token
/// in <c>X-CSRF-Token</c>, and only an admin may make one (an operator reads);</item>
/// <item>every change is written to the audit log, before its answer leaves (the response's OnStarting).</item>
/// </list>
/// A bearer token that is present but wrong is refused even when a cookie is there too: a script's
/// mistake should not pass as a browser's session.
/// </summary>
internal sealed class ConsoleAccess(AdminAccess tokens, ConsoleSessions sessions, AdminAccounts accounts, AuditLog audit)
{
    public async Task InvokeAsync(HttpContext context, RequestDelegate next, IReadOnlyCollection<string> hosts)
    {
        if (AdminAccess.CheckHost(context, hosts) is { } misdirected)
        {
            await RefuseAsync(context, misdirected.Status, misdirected.Message).ConfigureAwait(false);
            return;
        }
        var path = context.Request.Path;
        if (IsOpen(context.Request.Method, path))
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        AdminPrincipal who;
        if (AdminAccess.HasBearer(context))
        {
            if (tokens.CheckToken(context) is { } refused)
            {
                await RefuseAsync(context, refused.Status, refused.Message).ConfigureAwait(false);
                return;
            }
            who = new AdminPrincipal(AdminPrincipal.TokenName, AdminRole.Admin, null);
        }
        else if (sessions.Find(context.Request.Cookies[ConsoleSessions.CookieName]) is { } session)
        {
            // The account as the file holds it now: removed, or its password changed, the session ends;
            // its role is the file's (a demotion takes effect at the next request).
            AdminAccount? account;
            try
            {
                account = accounts.Find(session.Admin);
            }
            catch (InvalidDataException e)
            {
                await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, e.Message).ConfigureAwait(false);
                return;
            }
            if (account is null || account.PasswordHash != session.PasswordHash)
            {
                sessions.End(session.Id);
                await RefuseAsync(context, StatusCodes.Status401Unauthorized, "this session has ended: the account was removed or its password changed; log in again").ConfigureAwait(false);
                return;
            }
            who = new AdminPrincipal(session.Admin, account.Role, session);
        }
        else
        {
            await RefuseAsync(context, StatusCodes.Status401Unauthorized,
                "log in (POST /api/v1/login, or the console's page) or present the admin token (Authorization: Bearer ...; admin.token in the data directory)").ConfigureAwait(false);
            return;
        }
        context.Items[typeof(AdminPrincipal)] = who;
        if (HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method))
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        var from = context.Connection.RemoteIpAddress;
        string action = $"{context.Request.Method} {path}";
        if (who.Session is { } s && !ConsoleSessions.CsrfMatches(s, context.Request.Headers[ConsoleSessions.CsrfHeader]))
        {
            audit.Write(who.Name, who.Role, from, action, null, StatusCodes.Status403Forbidden, "no valid CSRF token");
            await RefuseAsync(context, StatusCodes.Status403Forbidden, $"a change needs this session's CSRF token in the {ConsoleSessions.CsrfHeader} header").ConfigureAwait(false);
            return;
        }
        if (who.Role != AdminRole.Admin && path != "/api/v1/logout")
        {
            audit.Write(who.Name, who.Role, from, action, null, StatusCodes.Status403Forbidden, "operators read only");
            await RefuseAsync(context, StatusCodes.Status403Forbidden, "an operator account may read, not change: ask an admin").ConfigureAwait(false);
            return;
        }
        // Written before the answer leaves; an endpoint that throws is audited as a 500 (its answer never starts).
        bool audited = false;
        void Audit(int status)
        {
            if (audited)
                return;
            audited = true;
            // The endpoint may name what it changed (a user, a client) and any detail worth keeping.
            audit.Write(who.Name, who.Role, from, action, context.Items[AuditTarget] as string, status, context.Items[AuditDetail] as string);
        }
        context.Response.OnStarting(() =>
        {
            Audit(context.Response.StatusCode);
            return Task.CompletedTask;
        });
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Audit(StatusCodes.Status500InternalServerError);
            throw;
        }
    }

    /// <summary>Keys an endpoint sets in HttpContext.Items for its audit line.</summary>
    public const string AuditTarget = "forewarn.audit.target", AuditDetail = "forewarn.audit.detail";

    private static bool IsOpen(string method, PathString path) =>
        ConsoleAssets.IsAsset(path)
        || (HttpMethods.IsPost(method) && path == "/api/v1/login")
        || (HttpMethods.IsGet(method) && path == ConsoleApi.OpenApiPath);

    internal static Task RefuseAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new { error = message }, context.RequestAborted);
    }

    /// <summary>The address the request came from, for the audit log and the login guard.</summary>
    public static IPAddress? From(HttpContext context) => context.Connection.RemoteIpAddress;
}
