using Forewarn.Core.Aaa;
using Forewarn.Core.Clients;
using Forewarn.Core.Deferrals;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius.Dictionary;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.AdminConsole;

public sealed record LoginRequest(string Name, string Password);
public sealed record SessionView(string Name, string Role, string? Csrf);
public sealed record ErrorView(string Error);

public sealed record HistoryView(IReadOnlyList<HealthPoint> Points, double Failover, double ConnectNew, double ConnectReturning);

public sealed record LogPage(long Next, IReadOnlyList<AuthEvent> Events);
public sealed record ReasonCount(string Reason, int Count);
public sealed record RateRow(string Name, int Requests, int Accepts, int Rejects, double PerMinute);
public sealed record LogSummary(double Minutes, int Events, IReadOnlyList<ReasonCount> Failures, IReadOnlyList<RateRow> ByClient, IReadOnlyList<RateRow> ByDeviceGroup);

public sealed record UserView(string Name, string Methods, string Stored, string? Group, IReadOnlyList<string> Reply, IReadOnlyList<string> Check, bool Enabled);
/// <summary>A user as the console sends it. On a change, what is left out (null) is kept; a password is needed to create or to change methods that need another stored form.</summary>
public sealed record UserInput(string? Name, string? Password, string? Methods, string? Group, IReadOnlyList<string>? Reply, IReadOnlyList<string>? Check, bool? Enabled);

public sealed record GroupView(string Name, IReadOnlyList<string> Reply, IReadOnlyList<string> Check, IReadOnlyList<string> CommandSets, int Members);
/// <summary>A group as the console sends it; CommandSets are 'set' or 'set@device-group', in order. What is left out is kept.</summary>
public sealed record GroupInput(IReadOnlyList<string>? Reply, IReadOnlyList<string>? Check, IReadOnlyList<string>? CommandSets = null);

public sealed record CommandSetView(string Name, IReadOnlyList<string> Rules);
/// <summary>Rules as 'permit REGEX' or 'deny REGEX', in order: the first that matches decides, no match denies.</summary>
public sealed record CommandSetInput(IReadOnlyList<string> Rules);

public sealed record ClientView(string Name, string Address, string? DeviceGroup, string MessageAuthenticator, string? Class, int AdvisoryPort, bool PerNasAdvisoryKeys, bool OwnTacacsKey);
/// <summary>A client as the console sends it. On a change, a secret left out is kept.</summary>
public sealed record ClientInput(string? Name, string? Address, string? Secret, string? DeviceGroup, string? MessageAuthenticator, string? Class, int? AdvisoryPort);

public sealed record NasView(string Address, string Client, string? DeviceGroup, string State, double RequestsPerSecond, double? RoundTripMs, double SecondsSinceSeen);
public sealed record DeviceGroupView(string Name, IReadOnlyList<string> Clients, int ActiveNases, double RequestsPerSecond);

public sealed record AccountingView(long Id, DateTimeOffset ReceivedAt, string Client, string? User, string? SessionId, string Status, string Protocol, string Attributes);
public sealed record SessionRow(string Client, string? User, string SessionId, DateTimeOffset Started, DateTimeOffset LastSeen, string Status, bool Active);

public sealed record AdminView(string Name, string Role, DateTimeOffset Created);

/// <summary>
/// The console's REST API, version 1, under <c>/api/v1</c>: what the page uses and what scripts may use
/// with the admin token. Its OpenAPI document is <see cref="OpenApiPath"/>. Reads are open to every
/// account; changes to admins (the gate in <see cref="ConsoleAccess"/> enforces both, and the CSRF token).
/// Input is checked the way the command line checks it (the same parsers, the same dictionary), and a
/// mistake is a 400 with one sentence.
/// </summary>
internal static class ConsoleApi
{
    public const string OpenApiPath = "/api/v1/openapi.json";

    public static void Map(WebApplication app, Func<Health.ServerStatus> status)
    {
        var api = app.MapGroup("/api/v1");
        MapSession(api);
        api.MapGet("/status", () => TypedResults.Ok(status())).WithSummary("The server's health, counters, listeners and advisory state (what `forewarn status` shows)");
        api.MapGet("/health/history", (HealthMonitor monitor, double? seconds) =>
        {
            var zones = monitor.Current.Zones;
            var zone = zones.Count > 0 ? zones[0] : null;
            var points = monitor.History(DateTimeOffset.UtcNow.AddSeconds(-Math.Clamp(Finite(seconds, 300), 1, 600)), TimeSpan.FromMilliseconds(Finite(seconds, 300) > 120 ? 500 : 100));
            return TypedResults.Ok(new HistoryView(points, zone?.Thresholds.Failover ?? 0, zone?.Thresholds.ConnectNew ?? 0, zone?.Thresholds.ConnectReturning ?? 0));
        }).WithSummary("Score, sustained score, forecast and zone of the default class, up to the last 10 minutes");
        MapLog(api);
        MapUsers(api);
        MapGroups(api);
        MapCommandSets(api);
        MapClients(api);
        MapAccounting(api);
        api.MapGet("/audit", (AuditLog audit, int? limit) => TypedResults.Ok(audit.Recent(Math.Clamp(limit ?? 200, 1, 1000))))
            .WithSummary("The newest audit entries: every change and login, who, from where, and how it ended");
        api.MapGet("/admins", (AdminAccounts accounts) => TypedResults.Ok(accounts.All().Select(a => new AdminView(a.Name, Role(a.Role), a.Created)).ToList()))
            .WithSummary("Console accounts (names and roles; passwords are kept hashed and never shown)");
    }

    private static string Role(AdminRole role) => role.ToString().ToLowerInvariant();

    private static void Audit(HttpContext context, string? target, string? detail = null)
    {
        context.Items[ConsoleAccess.AuditTarget] = target;
        if (detail is not null)
            context.Items[ConsoleAccess.AuditDetail] = detail;
    }

    private static BadRequest<ErrorView> Bad(string error) => TypedResults.BadRequest(new ErrorView(error));

    /// <summary>The lines of a list field that say something: a JSON null or a blank line is skipped, not a 500.</summary>
    private static IEnumerable<string> NonBlank(IEnumerable<string?>? lines) => (lines ?? []).Where(l => l is not null && l.Trim().Length > 0)!;

    /// <summary>A number from the query, or the default when it is absent or not finite (NaN, infinity).</summary>
    private static double Finite(double? value, double otherwise) => value is { } v && double.IsFinite(v) ? v : otherwise;

    // ---- session --------------------------------------------------------------------------

    private static void MapSession(RouteGroupBuilder api)
    {
        api.MapPost("/login", async Task<Results<Ok<SessionView>, BadRequest<ErrorView>, UnauthorizedHttpResult, JsonHttpResult<ErrorView>>> (
            LoginRequest request, HttpContext context, AdminAccounts accounts, ConsoleSessions sessions, LoginGuard guard, AuditLog audit) =>
        {
            var from = ConsoleAccess.From(context);
            // Only a name an account could have, and a password of sane length, reach the guard, the audit log and PBKDF2.
            if (request?.Name is not { Length: > 0 } name || AdminAccounts.ValidateName(name) is not null
                || request.Password is not { Length: > 0 and <= 1024 } password)
                return Bad("a login needs an administrator's name and a password (at most 1,024 characters).");
            if (!await guard.Verifying.WaitAsync(TimeSpan.FromSeconds(15), context.RequestAborted).ConfigureAwait(false))
                return TypedResults.Json(new ErrorView("too many logins at once: try again in a moment"), statusCode: StatusCodes.Status503ServiceUnavailable);
            AdminAccount? account;
            string? refusal;
            TimeSpan pause = TimeSpan.Zero;
            try
            {
                refusal = guard.Refusal(name, from);
                // PBKDF2 at 600,000 iterations: off the request thread's hands, as any slow work.
                account = refusal is null ? await Task.Run(() => accounts.Verify(name, password)).ConfigureAwait(false) : null;
                if (account is not null)
                    guard.Succeeded(account.Name);
                else if (refusal is null)
                    pause = guard.Failed(name, from);
            }
            catch (InvalidDataException e)
            {
                return TypedResults.Json(new ErrorView(e.Message), statusCode: StatusCodes.Status503ServiceUnavailable);
            }
            finally
            {
                guard.Verifying.Release();
            }
            if (refusal is not null)
            {
                audit.Write(name, null, from, "login", null, StatusCodes.Status429TooManyRequests, refusal);
                return TypedResults.Json(new ErrorView(refusal), statusCode: StatusCodes.Status429TooManyRequests);
            }
            if (account is null)
            {
                audit.Write(name, null, from, "login", null, StatusCodes.Status401Unauthorized, "wrong name or password");
                await Task.Delay(pause, context.RequestAborted).ConfigureAwait(false);
                return TypedResults.Unauthorized();
            }
            var session = sessions.Start(account, from);
            context.Response.Cookies.Append(ConsoleSessions.CookieName, session.Id, new CookieOptions
            {
                HttpOnly = true,
                SameSite = SameSiteMode.Strict,
                Secure = context.Request.IsHttps,
                Path = "/",
                IsEssential = true,
            });
            audit.Write(account.Name, account.Role, from, "login", null, StatusCodes.Status200OK);
            return TypedResults.Ok(new SessionView(account.Name, Role(account.Role), session.Csrf));
        }).WithSummary("Log in to the console: sets an HttpOnly, SameSite=Strict session cookie and returns the CSRF token changes must carry");

        api.MapGet("/session", (HttpContext context) =>
        {
            var who = AdminPrincipal.Of(context);
            return TypedResults.Ok(new SessionView(who.Name, Role(who.Role), who.Session?.Csrf));
        }).WithSummary("Who is logged in, with the session's CSRF token");

        api.MapPost("/logout", (HttpContext context, ConsoleSessions sessions) =>
        {
            if (AdminPrincipal.Of(context).Session is { } session)
                sessions.End(session.Id);
            context.Response.Cookies.Delete(ConsoleSessions.CookieName);
            return TypedResults.NoContent();
        }).WithSummary("End the console session");
    }

    // ---- the authentication log -----------------------------------------------------------

    private static void MapLog(RouteGroupBuilder api)
    {
        api.MapGet("/log", (AuthLog log, long? after, int? limit, string? user, string? client, string? result, string? protocol, string? reason) =>
        {
            int take = Math.Clamp(limit ?? 500, 1, 5000);
            long first = after ?? 0;
            var found = new List<AuthEvent>(Math.Min(take, 256));
            // Newest first, until the page is full or the walk reaches what the caller has seen.
            long next = log.Visit(e =>
            {
                if (e.Sequence <= first)
                    return false;
                if ((user is not { Length: > 0 } || e.User?.Contains(user, StringComparison.OrdinalIgnoreCase) == true)
                    && (client is not { Length: > 0 } || e.Client.Contains(client, StringComparison.OrdinalIgnoreCase))
                    && (result is not { Length: > 0 } || string.Equals(e.Result.ToString(), result, StringComparison.OrdinalIgnoreCase))
                    && (protocol is not { Length: > 0 } || string.Equals(e.Protocol, protocol, StringComparison.OrdinalIgnoreCase))
                    && (reason is not { Length: > 0 } || e.Reason?.Contains(reason, StringComparison.OrdinalIgnoreCase) == true))
                    found.Add(e);
                return found.Count < take;
            }, out _);
            found.Reverse();
            return TypedResults.Ok(new LogPage(next, found));
        }).WithSummary("Authentications after the sequence number 'after' (oldest first; the newest 'limit'), filtered by user, client, result (accept|reject), protocol (radius|tacacs) or reason");

        api.MapGet("/log/summary", (AuthLog log, double? minutes) =>
        {
            double span = Math.Clamp(Finite(minutes, 5), 0.1, 60);
            // Counted in one pass under the log's lock: a busy server keeps 20,000 events, none copied.
            int count = 0;
            var failures = new Dictionary<string, int>(StringComparer.Ordinal);
            var byClient = new Dictionary<string, (int Accepts, int Rejects)>(StringComparer.Ordinal);
            var byGroup = new Dictionary<string, (int Accepts, int Rejects)>(StringComparer.Ordinal);
            static void Add(Dictionary<string, (int Accepts, int Rejects)> rows, string key, bool accept)
            {
                var row = rows.GetValueOrDefault(key);
                rows[key] = accept ? (row.Accepts + 1, row.Rejects) : (row.Accepts, row.Rejects + 1);
            }
            var now = DateTimeOffset.UtcNow;
            var since = now.AddMinutes(-span);
            var oldest = now;
            log.Visit(e =>
            {
                if (e.At < since)
                    return false;
                count++;
                oldest = e.At;
                bool accept = e.Result == AuthResult.Accept;
                if (!accept)
                    failures[e.Reason ?? "(none)"] = failures.GetValueOrDefault(e.Reason ?? "(none)") + 1;
                Add(byClient, e.Client, accept);
                Add(byGroup, e.DeviceGroup ?? "(none)", accept);
                return true;
            }, out bool reachedTheSpansStart);
            // A busy server has forgotten part of the span: the rates are over what the log still holds.
            if (!reachedTheSpansStart && count == log.Capacity)
                span = Math.Max((now - oldest).TotalMinutes, 1.0 / 60);
            static List<RateRow> Rates(Dictionary<string, (int Accepts, int Rejects)> rows, double span) =>
                [.. rows.Select(r => new RateRow(r.Key, r.Value.Accepts + r.Value.Rejects, r.Value.Accepts, r.Value.Rejects, (r.Value.Accepts + r.Value.Rejects) / span))
                    .OrderByDescending(r => r.Requests).Take(100)];
            return TypedResults.Ok(new LogSummary(span, count, [.. failures.Select(f => new ReasonCount(f.Key, f.Value)).OrderByDescending(r => r.Count)],
                Rates(byClient, span), Rates(byGroup, span)));
        }).WithSummary("Failures grouped by reason, and authentications per client and per device group, over the last minutes (default 5)");

        api.MapGet("/nases", (ClientRegistry registry, TimeProvider time) =>
        {
            long now = time.GetTimestamp();
            return TypedResults.Ok(registry.All.Select(c => new NasView(c.Address.ToString(), c.Client.Name, c.Client.DeviceGroup, c.State.ToString().ToLowerInvariant(),
                    Math.Round(c.SmoothedRate, 2), double.IsNaN(c.RoundTripMs) ? null : c.RoundTripMs, Math.Round(time.GetElapsedTime(c.LastSeen, now).TotalSeconds, 1)))
                .OrderBy(n => n.Client, StringComparer.Ordinal).ThenBy(n => n.Address, StringComparer.Ordinal).Take(5000).ToList());
        }).WithSummary("Every NAS address seen: its client, state (active, deferred, invited), request rate and measured round trip");
    }

    // ---- users ------------------------------------------------------------------------------

    private static UserView View(UserRecord u) => new(u.Name, Credentials.FormatMethods(u.Methods), Credentials.DescribeStorage(u.Credential), u.Group,
        [.. u.Reply.Select(r => r.ToString())], [.. u.Checks.Select(c => c.ToString())], u.Enabled);

    private static void MapUsers(RouteGroupBuilder api)
    {
        api.MapGet("/users", async (IForewarnStore store, string? search, int? limit, CancellationToken ct) =>
        {
            var users = await store.ListUsersAsync(ct).ConfigureAwait(false);
            return TypedResults.Ok(users.Where(u => search is not { Length: > 0 } || u.Name.Contains(search, StringComparison.OrdinalIgnoreCase) || u.Group?.Contains(search, StringComparison.OrdinalIgnoreCase) == true)
                .Take(Math.Clamp(limit ?? 1000, 1, 100_000)).Select(View).ToList());
        }).WithSummary("Users, optionally those whose name or group contains 'search'");

        api.MapGet("/users/{name}", async Task<Results<Ok<UserView>, NotFound<ErrorView>>> (string name, IForewarnStore store, CancellationToken ct) =>
            await store.FindUserAsync(name, ct).ConfigureAwait(false) is { } user ? TypedResults.Ok(View(user)) : TypedResults.NotFound(new ErrorView($"no user '{name}'.")))
            .WithSummary("One user");

        api.MapPost("/users", async Task<Results<Created<UserView>, BadRequest<ErrorView>, Conflict<ErrorView>>> (UserInput input, HttpContext context, IServiceProvider services, CancellationToken ct) =>
        {
            Audit(context, input.Name);
            if (input.Password is not { Length: > 0 })
                return Bad("a new user needs a password.");
            if (!TryBuildUser(services, input.Name ?? "", input, null, out var user, out var error))
                return Bad(error);
            var store = services.GetRequiredService<IForewarnStore>();
            if (!await store.AddUserAsync(user!, ct).ConfigureAwait(false))
                return TypedResults.Conflict(new ErrorView($"user '{user!.Name}' exists already."));
            return TypedResults.Created($"/api/v1/users/{Uri.EscapeDataString(user!.Name)}", View(user));
        }).WithSummary("Add a user (the password is stored in the least revealing form its methods allow)");

        api.MapPut("/users/{name}", async Task<Results<Ok<UserView>, BadRequest<ErrorView>, NotFound<ErrorView>, Conflict<ErrorView>>> (string name, UserInput input, HttpContext context, IServiceProvider services, CancellationToken ct) =>
        {
            Audit(context, name, input.Password is { Length: > 0 } ? "password changed" : null);
            var store = services.GetRequiredService<IForewarnStore>();
            if (await store.FindUserAsync(name, ct).ConfigureAwait(false) is not { } existing)
                return TypedResults.NotFound(new ErrorView($"no user '{name}'."));
            if (!TryBuildUser(services, name, input, existing, out var user, out var error))
                return Bad(error);
            if (!await store.UpdateUserAsync(user!, ct).ConfigureAwait(false))
                return TypedResults.Conflict(new ErrorView($"user '{name}' is not in Forewarn's own table (a user from a FreeRADIUS site's radcheck is changed there)."));
            return TypedResults.Ok(View(user!));
        }).WithSummary("Change a user: what is left out is kept");

        api.MapDelete("/users/{name}", async Task<Results<NoContent, NotFound<ErrorView>>> (string name, HttpContext context, IForewarnStore store, CancellationToken ct) =>
        {
            Audit(context, name);
            return await store.RemoveUserAsync(name, ct).ConfigureAwait(false) ? TypedResults.NoContent() : TypedResults.NotFound(new ErrorView($"no user '{name}'."));
        }).WithSummary("Remove a user");
    }

    /// <summary>A user from the console's input, checked as `forewarn users add` checks it; <paramref name="existing"/> supplies what is left out.</summary>
    private static bool TryBuildUser(IServiceProvider services, string name, UserInput input, UserRecord? existing, out UserRecord? user, out string error)
    {
        user = null;
        if (!ItemParsing.TryUserName(name, out error))
            return false;
        var methods = existing?.Methods ?? AuthMethods.All;
        if (input.Methods is { Length: > 0 } text && !ItemParsing.TryMethods(text, "methods", out methods, out error))
            return false;
        var dictionary = services.GetRequiredService<RadiusDictionary>();
        IReadOnlyList<ReplyItem> replies = existing?.Reply ?? [];
        IReadOnlyList<CheckItem> checks = existing?.Checks ?? [];
        if (input.Reply is not null)
        {
            if (!ItemParsing.TryParseReplies(NonBlank(input.Reply), dictionary, out var parsed, out error))
                return false;
            replies = parsed;
        }
        if (input.Check is not null)
        {
            if (!ItemParsing.TryParseChecks(NonBlank(input.Check), out var parsed, out error))
                return false;
            checks = parsed;
        }
        Credential credential;
        if (input.Password is { Length: > 0 } password)
        {
            var options = services.GetRequiredService<ForewarnOptions>();
            credential = Credentials.Create(password, methods, services.GetRequiredService<PasswordSealer>(), options.PasswordIterations);
        }
        else if (existing is not null && (methods == existing.Methods || Credentials.Create("x", methods, services.GetRequiredService<PasswordSealer>(), 1) is var probe
            && Credentials.DescribeStorage(probe) == Credentials.DescribeStorage(existing.Credential)))
        {
            credential = existing.Credential;
        }
        else
        {
            error = "these methods need the password stored in another form: give the password too.";
            return false;
        }
        string? group = input.Group is null ? existing?.Group : input.Group.Trim().Length == 0 ? null : input.Group.Trim();
        user = new UserRecord(name, methods, credential, group, replies, checks, input.Enabled ?? existing?.Enabled ?? true,
            existing?.EnableHash, existing?.Arguments);
        error = "";
        return true;
    }

    // ---- groups -----------------------------------------------------------------------------

    private static void MapGroups(RouteGroupBuilder api)
    {
        api.MapGet("/groups", async (IForewarnStore store, CancellationToken ct) =>
        {
            var groups = await store.ListGroupsAsync(ct).ConfigureAwait(false);
            var members = (await store.ListUsersAsync(ct).ConfigureAwait(false)).Where(u => u.Group is not null).GroupBy(u => u.Group!).ToDictionary(g => g.Key, g => g.Count());
            return TypedResults.Ok(groups.Select(g => new GroupView(g.Name, [.. g.Reply.Select(r => r.ToString())], [.. g.Checks.Select(c => c.ToString())],
                [.. (g.CommandSets ?? []).Select(c => c.ToString() ?? "")], members.GetValueOrDefault(g.Name))).ToList());
        }).WithSummary("Groups with their reply and check items, TACACS+ command sets and member count");

        api.MapPut("/groups/{name}", async Task<Results<Ok, BadRequest<ErrorView>>> (string name, GroupInput input, HttpContext context, IForewarnStore store, RadiusDictionary dictionary, CancellationToken ct) =>
        {
            Audit(context, name);
            if (name.Trim().Length == 0 || name.Any(char.IsControl))
                return Bad("the group name may not be empty or contain control characters.");
            var existing = await store.FindGroupAsync(name, ct).ConfigureAwait(false);
            IReadOnlyList<ReplyItem> replies = existing?.Reply ?? [];
            IReadOnlyList<CheckItem> checks = existing?.Checks ?? [];
            if (input.Reply is not null)
            {
                if (!ItemParsing.TryParseReplies(NonBlank(input.Reply), dictionary, out var parsed, out var error))
                    return Bad(error);
                replies = parsed;
            }
            if (input.Check is not null)
            {
                if (!ItemParsing.TryParseChecks(NonBlank(input.Check), out var parsed, out var error))
                    return Bad(error);
                checks = parsed;
            }
            IReadOnlyList<CommandSetBinding>? bindings = existing?.CommandSets;
            if (input.CommandSets is not null)
            {
                var names = NonBlank(input.CommandSets).Select(CommandSetBinding.Parse).ToList();
                if (names.FirstOrDefault(b => b.CommandSet.Length == 0 || b.DeviceGroup is { Length: 0 }) is { } empty)
                    return Bad($"'{empty}' is not 'set' or 'set@device-group'.");
                bindings = names;
            }
            // The enable secret and service arguments are kept: the command line sets them (a secret is not typed into a page).
            await store.SetGroupAsync((existing ?? new GroupRecord(name, [], [])) with { Reply = replies, Checks = checks, CommandSets = bindings }, ct).ConfigureAwait(false);
            return TypedResults.Ok();
        }).WithSummary("Add a group or change its reply and check items and TACACS+ command sets (its enable secret and service arguments are kept)");

        api.MapDelete("/groups/{name}", async Task<Results<NoContent, NotFound<ErrorView>>> (string name, HttpContext context, IForewarnStore store, CancellationToken ct) =>
        {
            Audit(context, name);
            return await store.RemoveGroupAsync(name, ct).ConfigureAwait(false) ? TypedResults.NoContent() : TypedResults.NotFound(new ErrorView($"no group '{name}'."));
        }).WithSummary("Remove a group (its members keep naming it and get nothing from it)");
    }

    // ---- TACACS+ command sets ----------------------------------------------------------------

    private static void MapCommandSets(RouteGroupBuilder api)
    {
        api.MapGet("/command-sets", async (IForewarnStore store, CancellationToken ct) =>
            TypedResults.Ok((await store.ListCommandSetsAsync(ct).ConfigureAwait(false)).Select(c => new CommandSetView(c.Name, [.. c.Rules.Select(r => r.ToString())])).ToList()))
            .WithSummary("TACACS+ command sets: ordered permit/deny rules over the command line");

        api.MapPut("/command-sets/{name}", async Task<Results<Ok<CommandSetView>, BadRequest<ErrorView>>> (string name, CommandSetInput input, HttpContext context, IForewarnStore store, CancellationToken ct) =>
        {
            Audit(context, name);
            if (name.Trim().Length == 0 || name.Contains('@', StringComparison.Ordinal) || name.Any(char.IsControl))
                return Bad("a command set's name may not be empty or hold '@' or control characters.");
            var rules = new List<CommandRule>();
            foreach (var text in NonBlank(input.Rules))
            {
                if (!CommandRule.TryParse(text, out var rule, out var error))
                    return Bad(error + ".");
                rules.Add(rule!);
            }
            await store.SetCommandSetAsync(new CommandSet(name.Trim(), rules), ct).ConfigureAwait(false);
            return TypedResults.Ok(new CommandSetView(name.Trim(), [.. rules.Select(r => r.ToString())]));
        }).WithSummary("Create or replace a command set; a running server applies it within a second");

        api.MapDelete("/command-sets/{name}", async Task<Results<NoContent, NotFound<ErrorView>>> (string name, HttpContext context, IForewarnStore store, CancellationToken ct) =>
        {
            Audit(context, name);
            return await store.RemoveCommandSetAsync(name, ct).ConfigureAwait(false) ? TypedResults.NoContent() : TypedResults.NotFound(new ErrorView($"no command set '{name}'."));
        }).WithSummary("Remove a command set (groups naming it then deny what it permitted)");
    }

    // ---- clients and device groups ------------------------------------------------------------

    private static ClientView View(ClientRecord c) => new(c.Name, c.Address, c.DeviceGroup, c.MessageAuthenticator.ToString().ToLowerInvariant(), c.Class, c.AdvisoryPort,
        c.PerNasAdvisoryKeys, c.TacacsKey is not null);

    private static void MapClients(RouteGroupBuilder api)
    {
        api.MapGet("/clients", async (IForewarnStore store, string? search, CancellationToken ct) =>
            TypedResults.Ok((await store.ListClientsAsync(ct).ConfigureAwait(false))
                .Where(c => search is not { Length: > 0 } || c.Name.Contains(search, StringComparison.OrdinalIgnoreCase) || c.Address.Contains(search, StringComparison.OrdinalIgnoreCase)
                    || c.DeviceGroup?.Contains(search, StringComparison.OrdinalIgnoreCase) == true)
                .Select(View).ToList()))
            .WithSummary("Clients (NASes and blocks of them); secrets are never shown");

        api.MapPost("/clients", async Task<Results<Created<ClientView>, BadRequest<ErrorView>, Conflict<ErrorView>>> (ClientInput input, HttpContext context, IForewarnStore store, CancellationToken ct) =>
        {
            Audit(context, input.Name);
            if (input.Secret is not { Length: > 0 })
                return Bad("a new client needs its shared secret.");
            if (!TryBuildClient(input.Name ?? "", input, null, out var client, out var error))
                return Bad(error);
            if (!await store.AddClientAsync(client!, ct).ConfigureAwait(false))
                return TypedResults.Conflict(new ErrorView($"a client named '{client!.Name}' or with address {client.Address} exists already."));
            return TypedResults.Created($"/api/v1/clients/{Uri.EscapeDataString(client!.Name)}", View(client));
        }).WithSummary("Add a client; a running server takes it within a second");

        api.MapPut("/clients/{name}", async Task<Results<Ok<ClientView>, BadRequest<ErrorView>, NotFound<ErrorView>, Conflict<ErrorView>>> (string name, ClientInput input, HttpContext context, IForewarnStore store, CancellationToken ct) =>
        {
            Audit(context, name, input.Secret is { Length: > 0 } ? "secret changed" : null);
            var existing = (await store.ListClientsAsync(ct).ConfigureAwait(false)).FirstOrDefault(c => c.Name == name);
            if (existing is null)
                return TypedResults.NotFound(new ErrorView($"no client '{name}'."));
            if (!TryBuildClient(name, input, existing, out var client, out var error))
                return Bad(error);
            try
            {
                if (!await store.UpdateClientAsync(client!, ct).ConfigureAwait(false))
                    return TypedResults.NotFound(new ErrorView($"client '{name}' is not in Forewarn's own table (a FreeRADIUS site's nas row is changed there)."));
            }
            catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 19 } or Npgsql.PostgresException { SqlState: "23505" })
            {
                // SQLITE_CONSTRAINT, unique_violation: the address is another client's.
                return TypedResults.Conflict(new ErrorView($"another client has address {client!.Address} already."));
            }
            return TypedResults.Ok(View(client!));
        }).WithSummary("Change a client (address, device group, policy, secret); what is left out is kept");

        api.MapDelete("/clients/{name}", async Task<Results<NoContent, NotFound<ErrorView>>> (string name, HttpContext context, IForewarnStore store, CancellationToken ct) =>
        {
            Audit(context, name);
            return await store.RemoveClientAsync(name, ct).ConfigureAwait(false) ? TypedResults.NoContent() : TypedResults.NotFound(new ErrorView($"no client '{name}'."));
        }).WithSummary("Remove a client");

        api.MapGet("/device-groups", async (IForewarnStore store, ClientRegistry registry, CancellationToken ct) =>
        {
            var clients = await store.ListClientsAsync(ct).ConfigureAwait(false);
            var seen = registry.All.ToList();
            return TypedResults.Ok(clients.Where(c => c.DeviceGroup is not null).GroupBy(c => c.DeviceGroup!)
                .Select(g => new DeviceGroupView(g.Key, [.. g.Select(c => c.Name)],
                    seen.Count(n => n.Client.DeviceGroup == g.Key), Math.Round(seen.Where(n => n.Client.DeviceGroup == g.Key).Sum(n => n.SmoothedRate), 2)))
                .OrderBy(d => d.Name, StringComparer.Ordinal).ToList());
        }).WithSummary("Device groups (a client's group), their clients, the NASes seen and their request rate");
    }

    private static bool TryBuildClient(string name, ClientInput input, ClientRecord? existing, out ClientRecord? client, out string error)
    {
        client = null;
        if (name.Trim().Length == 0 || name.Any(char.IsControl))
        {
            error = "the client's name may not be empty or contain control characters.";
            return false;
        }
        var address = input.Address?.Trim() ?? existing?.Address ?? "";
        if (!RadiusClient.IsValidAddress(address))
        {
            error = $"'{address}' is neither an IP address nor a CIDR block.";
            return false;
        }
        var policy = existing?.MessageAuthenticator ?? MessageAuthenticatorPolicy.Auto;
        if (input.MessageAuthenticator is { Length: > 0 } text && !Enum.TryParse(text, ignoreCase: true, out policy))
        {
            error = $"message authenticator policy '{text}' is none of auto, require, optional.";
            return false;
        }
        if (input.AdvisoryPort is < 0 or > 65535)
        {
            error = "the advisory port must be between 0 and 65535.";
            return false;
        }
        static string? Blank(string? s) => s is null ? null : s.Trim().Length == 0 ? "" : s.Trim();
        var group = Blank(input.DeviceGroup);
        var clientClass = Blank(input.Class);
        client = new ClientRecord(name, address, input.Secret is { Length: > 0 } s ? s : existing!.Secret,
            group is null ? existing?.DeviceGroup : group.Length == 0 ? null : group, policy,
            clientClass is null ? existing?.Class : clientClass.Length == 0 ? null : clientClass,
            input.AdvisoryPort ?? existing?.AdvisoryPort ?? 0, existing?.AdvisorySecret, existing?.TacacsKey, existing?.TacacsUnencrypted ?? false);
        error = "";
        return true;
    }

    // ---- accounting -------------------------------------------------------------------------

    private static string StatusName(uint status) => status switch
    {
        1 => "Start",
        2 => "Stop",
        3 => "Interim-Update",
        7 => "Accounting-On",
        8 => "Accounting-Off",
        _ => status.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static void MapAccounting(RouteGroupBuilder api)
    {
        api.MapGet("/accounting", async (IForewarnStore store, string? user, string? client, DateTimeOffset? since, int? limit, CancellationToken ct) =>
        {
            var records = await store.QueryAsync(new AccountingQuery(user is { Length: > 0 } ? user : null, client is { Length: > 0 } ? client : null, since, null,
                Math.Clamp(limit ?? 100, 1, 10_000)), ct).ConfigureAwait(false);
            return TypedResults.Ok(records.Select(r => new AccountingView(r.Id, r.ReceivedAt, r.ClientName, r.UserName, r.SessionId, StatusName(r.StatusType), r.Protocol, r.Attributes)).ToList());
        }).WithSummary("Accounting records, newest first, by user, client and time");

        api.MapGet("/accounting/sessions", async (IForewarnStore store, string? user, bool? active, int? scan, CancellationToken ct) =>
        {
            // Sessions as the newest records show them: a session is active while its last record is a
            // Start or an Interim-Update (an Accounting-On/Off closes its client's sessions).
            var records = await store.QueryAsync(new AccountingQuery(user is { Length: > 0 } ? user : null, Limit: Math.Clamp(scan ?? 5000, 1, 100_000)), ct).ConfigureAwait(false);
            var closedAt = records.Where(r => r.StatusType is 7 or 8).GroupBy(r => r.ClientName).ToDictionary(g => g.Key, g => g.Max(r => r.ReceivedAt));
            var sessions = records.Where(r => r.SessionId is not null && r.StatusType is 1 or 2 or 3)
                .GroupBy(r => (r.ClientName, r.SessionId!))
                .Select(g =>
                {
                    var last = g.MaxBy(r => r.Id)!;
                    bool open = last.StatusType != 2 && !(closedAt.TryGetValue(last.ClientName, out var off) && off >= last.ReceivedAt);
                    return new SessionRow(last.ClientName, last.UserName, last.SessionId!, g.Min(r => r.ReceivedAt), last.ReceivedAt, StatusName(last.StatusType), open);
                })
                .Where(s => active is null || s.Active == active)
                .OrderByDescending(s => s.LastSeen).ToList();
            return TypedResults.Ok(sessions);
        }).WithSummary("Sessions from the newest records ('scan' of them, default 5,000): active ones (last record Start or Interim-Update) and recent ones");
    }
}
