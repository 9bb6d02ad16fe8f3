using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;
using Forewarn.Core.Clients;
using Forewarn.Core.Store;
using Forewarn.Protocol.Tacacs;
using Microsoft.Extensions.Logging;

namespace Forewarn.Core.Aaa.Tacacs;

/// <summary>
/// One command rule, ready to match: its regular expression is non-backtracking (matching is linear in
/// the command's length whatever the pattern, so no command text can make a rule slow), built on first
/// use or by the background warm-up, and skipped without running when the pattern is anchored on a
/// literal prefix (<c>^show </c>) that the command does not start with — which keeps a set of a thousand
/// such rules to a thousand string comparisons and the regular expressions of the few that can match.
/// </summary>
public sealed class CompiledRule(bool permit, string pattern)
{
    private Regex? _regex;

    public bool Permit { get; } = permit;
    public string Pattern { get; } = pattern;
    /// <summary>Text every command this rule matches starts with; null when the pattern promises none.</summary>
    public string? Prefix { get; } = LiteralPrefix(pattern);

    public bool Matches(string command) =>
        (Prefix is null || command.StartsWith(Prefix, StringComparison.Ordinal)) && Regex().IsMatch(command);

    public Regex Regex() => _regex ??= new Regex(Pattern, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);

    /// <summary>
    /// The literal text after a leading <c>^</c>, up to the first character with a meaning; none for a
    /// pattern with an alternation anywhere (<c>^show|^dir</c> matches commands not starting with "show").
    /// A literal followed by a quantifier (<c>^ab?</c>) is not required, so it is left out.
    /// </summary>
    internal static string? LiteralPrefix(string pattern)
    {
        if (pattern.Length < 2 || pattern[0] != '^' || HasTopLevelAlternation(pattern))
            return null;
        const string meta = "\\.^$|?*+()[]{}#";
        int end = 1;
        while (end < pattern.Length && !meta.Contains(pattern[end], StringComparison.Ordinal))
            end++;
        if (end < pattern.Length && pattern[end] is '?' or '*' or '{')
            end--;
        return end > 1 ? pattern[1..end] : null;
    }

    /// <summary>A <c>|</c> outside every group and character class: the pattern is then several patterns, each with its own start.</summary>
    private static bool HasTopLevelAlternation(string pattern)
    {
        int depth = 0;
        bool inClass = false;
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '\\')
                i++;
            else if (inClass)
                inClass = c != ']';
            else if (c == '[')
                inClass = true;
            else if (c == '(')
                depth++;
            else if (c == ')')
                depth--;
            else if (c == '|' && depth <= 0)
                return true;
        }
        return false;
    }
}

/// <summary>
/// Command sets as the authorizer uses them, kept until users, groups or command sets change (the user
/// cache's version moves and <see cref="Invalidate"/> is called). A set is loaded through the slow-work
/// pool; its rules' regular expressions are then built in the background, off the request path.
/// </summary>
public sealed class CommandSets(ICommandSetStore store, SlowWork slow)
{
    public sealed record Compiled(string Name, CompiledRule[] Rules);

    private ConcurrentDictionary<string, Compiled?> _sets = new(StringComparer.Ordinal);

    public void Invalidate() => _sets = new(StringComparer.Ordinal);

    public ValueTask<Compiled?> FindAsync(string client, string name)
    {
        var sets = _sets;
        return sets.TryGetValue(name, out var set) ? ValueTask.FromResult(set) : new ValueTask<Compiled?>(LoadAsync(sets, client, name));
    }

    private async Task<Compiled?> LoadAsync(ConcurrentDictionary<string, Compiled?> sets, string client, string name)
    {
        var set = await slow.RunAsync(client, () => store.FindCommandSetAsync(name)).ConfigureAwait(false);
        var compiled = set is null ? null : new Compiled(set.Name, [.. set.Rules.Select(r => new CompiledRule(r.Permit, r.Pattern))]);
        if (sets.Count < 10_000)
            sets[name] = compiled;
        if (compiled is not null)
            _ = Task.Run(() => Warm(compiled));
        return compiled;
    }

    private static void Warm(Compiled set)
    {
        foreach (var rule in set.Rules)
        {
            // Built and run once, so that the first real command pays for neither.
            rule.Regex().IsMatch(rule.Prefix ?? "");
        }
    }
}

/// <summary>
/// TACACS+ authorization (RFC 8907 §6). A command (<c>service=shell</c> with <c>cmd=</c>) is matched, as
/// <c>cmd</c> followed by its <c>cmd-arg</c>s, against the command sets of the user's group that apply to
/// the client's device group, in order: the first rule that matches decides, and a command no rule matches
/// is denied. A service request (an exec shell starting, ppp) passes with the arguments configured for that
/// service on the group and then the user (the user's win): PASS_ADD when they only add to what the device
/// asked, PASS_REPL when one replaces a value the device proposed. A service other than shell with nothing
/// configured fails.
/// </summary>
public sealed partial class TacacsAuthorizer(CredentialVerifier credentials, CommandSets sets, TimeProvider time, ILogger<TacacsAuthorizer> logger)
{
    private readonly Logging.LogLimiter _denials = new(time, TimeSpan.FromSeconds(10));

    public async ValueTask<AuthorResponse> AuthorizeAsync(AuthorRequest request, RadiusClient client, CancellationToken cancellationToken)
    {
        string? userName = request.User.Length > 0 ? Encoding.UTF8.GetString(request.User) : null;
        var arguments = request.Arguments.Select(a => Encoding.UTF8.GetString(a)).ToList();
        string? service = Value(arguments, "service");
        if (service is null)
            return Fail(client, userName, null, "no service argument", "Authorization failed");
        var (user, group) = await credentials.FindAsync(client.Name, userName, cancellationToken).ConfigureAwait(false);
        if (user is null || !user.Enabled)
            return Fail(client, userName, service, user is null ? "unknown user" : "user disabled", "Authorization failed");

        if (Value(arguments, "cmd") is { Length: > 0 } cmd && service == "shell")
        {
            string command = CommandLine(cmd, arguments);
            var (permitted, by) = await DecideAsync(client, group, command).ConfigureAwait(false);
            if (!permitted)
                return Fail(client, userName, service, $"command '{Logging.LogText.Escape(command)}' denied ({by})", "Command authorization failed");
            if (logger.IsEnabled(LogLevel.Debug))
            {
                string escapedUser = Logging.LogText.Escape(userName!), escapedCommand = Logging.LogText.Escape(command);
                LogPermitted(logger, escapedUser, client.Name, escapedCommand, by);
            }
            return new AuthorResponse(AuthorStatus.PassAdd, [], [], []);
        }

        var configured = Configured(service, group?.Arguments, user.Arguments);
        if (configured.Count == 0 && service != "shell")
            return Fail(client, userName, service, $"service '{Logging.LogText.Escape(service)}' is not configured for the user or its group", "Authorization failed");
        return Reply(arguments, configured);
    }

    /// <summary>The command as an operator writes it: <c>show running-config</c> (the trailing <c>&lt;cr&gt;</c> is the device's end marker).</summary>
    internal static string CommandLine(string cmd, IReadOnlyList<string> arguments)
    {
        var line = new StringBuilder(cmd);
        foreach (var argument in arguments)
        {
            if (Split(argument) is ("cmd-arg", var value) && value != "<cr>")
                line.Append(' ').Append(value);
        }
        return line.ToString();
    }

    private async ValueTask<(bool Permitted, string By)> DecideAsync(RadiusClient client, GroupRecord? group, string command)
    {
        foreach (var binding in group?.CommandSets ?? [])
        {
            if (binding.DeviceGroup is { } deviceGroup && !string.Equals(deviceGroup, client.DeviceGroup, StringComparison.Ordinal))
                continue;
            if (await sets.FindAsync(client.Name, binding.CommandSet).ConfigureAwait(false) is not { } set)
                continue;
            for (int i = 0; i < set.Rules.Length; i++)
            {
                if (set.Rules[i].Matches(command))
                    return (set.Rules[i].Permit, $"command set {set.Name}, rule {i + 1}");
            }
        }
        return (false, group?.CommandSets is { Count: > 0 } ? "no rule matched" : "no command set applies");
    }

    /// <summary>The arguments for <paramref name="service"/>: the group's, then the user's replacing any of the same name.</summary>
    private static List<TacacsArgument> Configured(string service, IReadOnlyList<TacacsArgument>? group, IReadOnlyList<TacacsArgument>? user)
    {
        var result = new List<TacacsArgument>();
        foreach (var argument in (group ?? []).Concat(user ?? []))
        {
            if (!string.Equals(argument.Service, service, StringComparison.Ordinal))
                continue;
            result.RemoveAll(a => a.Name == argument.Name);
            result.Add(argument);
        }
        return result;
    }

    /// <summary>RFC 8907 §6.2: PASS_ADD adds to the request's arguments; PASS_REPL replaces them, when a configured value differs from one the device proposed.</summary>
    private static AuthorResponse Reply(List<string> requested, List<TacacsArgument> configured)
    {
        bool replaces = false;
        var replaced = new List<string>(requested);
        var added = new List<string>();
        foreach (var argument in configured)
        {
            int at = replaced.FindIndex(r => Split(r).Name == argument.Name);
            if (at < 0)
            {
                added.Add(argument.Pair);
                replaced.Add(argument.Pair);
            }
            else if (replaced[at] != argument.Pair)
            {
                replaced[at] = argument.Pair;
                replaces = true;
            }
        }
        return replaces
            ? new AuthorResponse(AuthorStatus.PassReplace, [], [], [.. replaced.Select(Encoding.UTF8.GetBytes)])
            : new AuthorResponse(AuthorStatus.PassAdd, [], [], [.. added.Select(Encoding.UTF8.GetBytes)]);
    }

    private static string? Value(IReadOnlyList<string> arguments, string name)
    {
        foreach (var argument in arguments)
        {
            if (Split(argument) is var (n, v) && n == name)
                return v;
        }
        return null;
    }

    /// <summary>An argument's name and value (RFC 8907 §6.1: <c>name=value</c> mandatory, <c>name*value</c> optional).</summary>
    internal static (string Name, string Value) Split(string argument)
    {
        int at = argument.IndexOfAny(['=', '*']);
        return at < 0 ? (argument, "") : (argument[..at], argument[(at + 1)..]);
    }

    private AuthorResponse Fail(RadiusClient client, string? userName, string? service, string reason, string message)
    {
        if (logger.IsEnabled(LogLevel.Information) && _denials.ShouldLog(reason, out long others))
        {
            string escapedUser = userName is null ? "(none)" : Logging.LogText.Escape(userName), escapedService = service is null ? "(none)" : Logging.LogText.Escape(service);
            LogDenied(logger, escapedUser, client.Name, escapedService, reason, others);
        }
        return new AuthorResponse(AuthorStatus.Fail, Encoding.UTF8.GetBytes(message), [], []);
    }

    [LoggerMessage(EventId = 112, Level = LogLevel.Debug, Message = "TACACS+ command permitted for {User} from {Client}: {Command} ({By})")]
    private static partial void LogPermitted(ILogger logger, string user, string client, string command, string by);

    [LoggerMessage(EventId = 113, Level = LogLevel.Information, Message = "TACACS+ authorization failed for {User} from {Client} (service {Service}): {Reason}; {Others} more for this reason in the 10 s before (not logged one by one)")]
    private static partial void LogDenied(ILogger logger, string user, string client, string service, string reason, long others);
}
