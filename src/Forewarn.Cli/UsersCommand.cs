using System.CommandLine;
using Forewarn.Server;
using Forewarn.Core.Aaa;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Cli;

internal static class UsersCommand
{
    public static Command Create()
    {
        var command = new Command("users", "Manage users");
        command.Subcommands.Add(Add());
        command.Subcommands.Add(Import());
        command.Subcommands.Add(Passwd());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Remove());
        command.Subcommands.Add(Tacacs());
        return command;
    }

    /// <summary>`users tacacs NAME`: change a user's TACACS+ enable secret (or clear it) and service arguments without touching the password.</summary>
    private static Command Tacacs()
    {
        var name = new Argument<string>("name");
        var clear = new Option<bool>("--clear-enable-secret") { Description = "Remove the user's own enable secret (the group's then applies)" };
        var command = new Command("tacacs", "Change a user's TACACS+ enable secret (--enable-secret-file or $FOREWARN_ENABLE_SECRET) and service arguments (--tacacs-arg, replacing the user's)")
        {
            name, EnableSecretFile, clear, TacacsArguments, Iterations,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            using var store = CommonOptions.OpenStore(result);
            var user = await store.FindUserAsync(result.GetValue(name)!, cancellationToken).ConfigureAwait(false);
            if (user is null)
                return CommonOptions.Fail($"no user '{result.GetValue(name)}'.");
            if (!CommonOptions.TryPasswordIterations(result, result.GetValue(Iterations), out int iterations, out var error)
                || !CommonOptions.TryEnableHash(result.GetValue(EnableSecretFile), iterations, out var enableHash, out error)
                || !ItemParsing.TryParseArguments(result.GetValue(TacacsArguments) ?? [], out var arguments, out error))
                return CommonOptions.Fail(error);
            var updated = user with
            {
                EnableHash = result.GetValue(clear) ? null : enableHash ?? user.EnableHash,
                Arguments = result.GetValue(TacacsArguments) is { Length: > 0 } ? arguments : user.Arguments,
            };
            await store.UpdateUserAsync(updated, cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"Changed TACACS+ settings of {user.Name}: enable secret {(updated.EnableHash is null ? "none (the group's applies)" : "set")}, arguments [{string.Join("; ", updated.Arguments ?? [])}].");
            return 0;
        });
        return command;
    }

    private static readonly Option<string?> Password = new("--password") { Description = "The password ('-' reads it from standard input)" };
    private static readonly Option<string> Methods = new("--methods") { Description = "Comma-separated: pap, chap, mschap, mschapv2, eap-md5, eap-gtc, eap-mschapv2, peap, ttls, eap-tls; eap (all EAP) or all (the default)", DefaultValueFactory = _ => "all" };
    private static readonly Option<string?> Group = new("--group") { Description = "Group whose reply and check items apply too" };
    private static readonly Option<string[]> Reply = new("--reply") { Description = "Reply attribute 'Name=Value' (repeatable), e.g. Session-Timeout=3600" };
    private static readonly Option<string[]> Check = new("--check") { Description = "Check item 'Name==Value' or 'Name!=Value' (repeatable); Device-Group names the client's group" };
    private static readonly Option<string?> EnableSecretFile = new("--enable-secret-file") { Description = "TACACS+: a file whose first line is the user's enable secret (or $FOREWARN_ENABLE_SECRET); without one, the group's applies" };
    private static readonly Option<string[]> TacacsArguments = new("--tacacs-arg") { Description = "TACACS+ service argument service:name=value (repeatable), e.g. shell:priv-lvl=15; replaces the group's of the same name" };
    private static readonly Option<int?> Iterations = new("--iterations") { Description = $"PBKDF2 iterations for PAP-only users (default: Forewarn:PasswordIterations in forewarn.json, else {PasswordHasher.DefaultIterations})" };

    private static Command Add()
    {
        var name = new Argument<string>("name") { Description = "User name, exactly as the NAS sends it" };
        var command = new Command("add", "Add a user") { name, Password, Methods, Group, Reply, Check, EnableSecretFile, TacacsArguments, Iterations };
        command.SetAction(async (result, cancellationToken) =>
        {
            var password = CommonOptions.ReadPassword(result.GetValue(Password));
            if (string.IsNullOrEmpty(password))
                return CommonOptions.Fail("--password is required.");
            if (!TryBuild(result, result.GetValue(name)!, password, out var user, out var error))
                return CommonOptions.Fail(error);
            using var store = CommonOptions.OpenStore(result);
            if (!await store.AddUserAsync(user!, cancellationToken).ConfigureAwait(false))
                return CommonOptions.Fail($"user '{user!.Name}' already exists (use 'users passwd' or remove it first).");
            Console.WriteLine($"Added user {user!.Name} ({Credentials.FormatMethods(user.Methods)}; stored as {Credentials.DescribeStorage(user.Credential)}).");
            return 0;
        });
        return command;
    }

    /// <summary>Many users at once: one "name password" per line (tab or space between; '#' starts a comment); existing users are replaced.</summary>
    private static Command Import()
    {
        var file = new Argument<string>("file") { Description = "Lines of 'name password' ('-' reads standard input)" };
        var command = new Command("import", "Add or replace many users from a file of 'name password' lines") { file, Methods, Group, Reply, Check, Iterations };
        command.SetAction(async (result, cancellationToken) =>
        {
            var path = result.GetValue(file)!;
            if (path != "-" && !File.Exists(path))
                return CommonOptions.Fail($"'{path}' does not exist.");
            var lines = path == "-" ? Console.In.ReadToEnd().Split('\n') : await File.ReadAllLinesAsync(path, cancellationToken).ConfigureAwait(false);
            // Every line is checked before anything is written, and all are written in one transaction:
            // a mistake on line 3 leaves the store as it was, not with lines 1 and 2 imported.
            var users = new List<UserRecord>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < lines.Length; i++)
            {
                var line = lines[i].Trim();
                if (line.Length == 0 || line.StartsWith('#'))
                    continue;
                int space = line.IndexOfAny([' ', '\t']);
                if (space <= 0)
                    return CommonOptions.Fail($"{path}:{i + 1}: expected 'name password'; nothing was imported.");
                if (!TryBuild(result, line[..space], line[(space + 1)..].Trim(), out var user, out var error))
                    return CommonOptions.Fail($"{path}:{i + 1}: {error}; nothing was imported.");
                if (!seen.Add(user!.Name))
                    return CommonOptions.Fail($"{path}:{i + 1}: user '{user.Name}' appears twice; nothing was imported.");
                users.Add(user);
            }
            using var store = CommonOptions.OpenStore(result);
            var (added, replaced) = await store.ImportUsersAsync(users, cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"Imported {added + replaced} users ({added} added, {replaced} replaced).");
            return 0;
        });
        return command;
    }

    private static Command Passwd()
    {
        var name = new Argument<string>("name");
        var methods = new Option<string?>("--methods") { Description = "New method list (default: keep the user's)" };
        var command = new Command("passwd", "Change a user's password (and optionally methods)") { name, Password, methods, Iterations };
        command.SetAction(async (result, cancellationToken) =>
        {
            var password = CommonOptions.ReadPassword(result.GetValue(Password));
            if (string.IsNullOrEmpty(password))
                return CommonOptions.Fail("--password is required.");
            using var store = CommonOptions.OpenStore(result);
            var user = await store.FindUserAsync(result.GetValue(name)!, cancellationToken).ConfigureAwait(false);
            if (user is null)
                return CommonOptions.Fail($"no user '{result.GetValue(name)}'.");
            var newMethods = user.Methods;
            if (result.GetValue(methods) is { } text)
            {
                try
                {
                    newMethods = Credentials.ParseMethods(text);
                }
                catch (FormatException e)
                {
                    return CommonOptions.Fail(e.Message);
                }
            }
            if (!CommonOptions.TryPasswordIterations(result, result.GetValue(Iterations), out int iterations, out var error))
                return CommonOptions.Fail(error);
            var credential = Credentials.Create(password, newMethods, CommonOptions.OpenSealer(result), iterations);
            await store.UpdateUserAsync(user with { Methods = newMethods, Credential = credential }, cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"Changed password of {user.Name} ({Credentials.FormatMethods(newMethods)}; stored as {Credentials.DescribeStorage(credential)}).");
            return 0;
        });
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List users");
        command.SetAction(async (result, cancellationToken) =>
        {
            using var store = CommonOptions.OpenStore(result);
            var users = await store.ListUsersAsync(cancellationToken).ConfigureAwait(false);
            foreach (var user in users)
            {
                Console.WriteLine($"{user.Name}\tmethods={Credentials.FormatMethods(user.Methods)}\tstored={Credentials.DescribeStorage(user.Credential)}"
                    + (user.Group is null ? "" : $"\tgroup={user.Group}")
                    + (user.Reply.Count == 0 ? "" : $"\treply=[{string.Join("; ", user.Reply)}]")
                    + (user.Checks.Count == 0 ? "" : $"\tcheck=[{string.Join("; ", user.Checks)}]"));
            }
            Console.Error.WriteLine($"{users.Count} users");
            return 0;
        });
        return command;
    }

    private static Command Remove()
    {
        var name = new Argument<string>("name");
        var command = new Command("remove", "Remove a user") { name };
        command.SetAction(async (result, cancellationToken) =>
        {
            using var store = CommonOptions.OpenStore(result);
            if (!await store.RemoveUserAsync(result.GetValue(name)!, cancellationToken).ConfigureAwait(false))
                return CommonOptions.Fail($"no user '{result.GetValue(name)}'.");
            Console.WriteLine($"Removed user {result.GetValue(name)}.");
            return 0;
        });
        return command;
    }

    private static bool TryBuild(ParseResult result, string name, string password, out UserRecord? user, out string error)
    {
        user = null;
        if (!ItemParsing.TryUserName(name, out error) || !ItemParsing.TryMethods(result.GetValue(Methods)!, "--methods", out var methods, out error))
            return false;
        if (!ItemParsing.TryParseReplies(result.GetValue(Reply) ?? [], RadiusDictionary.BuiltIn, out var replies, out error)
            || !ItemParsing.TryParseChecks(result.GetValue(Check) ?? [], out var checks, out error))
            return false;
        if (!CommonOptions.TryPasswordIterations(result, result.GetValue(Iterations), out int iterations, out error))
            return false;
        if (!ItemParsing.TryParseArguments(result.GetValue(TacacsArguments) ?? [], out var arguments, out error)
            || !CommonOptions.TryEnableHash(result.GetValue(EnableSecretFile), iterations, out var enableHash, out error))
            return false;
        var credential = Credentials.Create(password, methods, CommonOptions.OpenSealer(result), iterations);
        user = new UserRecord(name, methods, credential, result.GetValue(Group), replies, checks, EnableHash: enableHash, Arguments: arguments);
        return true;
    }
}
