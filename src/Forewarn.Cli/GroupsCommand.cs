using System.CommandLine;
using Forewarn.Server;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Cli;

internal static class GroupsCommand
{
    public static Command Create()
    {
        var command = new Command("groups", "Manage user groups (shared reply and check items; TACACS+ command sets, service arguments and enable secret)");
        var name = new Argument<string>("name");
        var reply = new Option<string[]>("--reply") { Description = "Reply attribute 'Name=Value' (repeatable)" };
        var check = new Option<string[]>("--check") { Description = "Check item 'Name==Value' (repeatable)" };
        var commandSets = new Option<string[]>("--command-set") { Description = "TACACS+ command set SET, or SET@DEVICE-GROUP for that device group's clients only (repeatable; tried in order)" };
        var arguments = new Option<string[]>("--tacacs-arg") { Description = "TACACS+ service argument service:name=value (repeatable), e.g. shell:priv-lvl=15" };
        var enableSecretFile = new Option<string?>("--enable-secret-file") { Description = "TACACS+: a file whose first line is the members' enable secret (or $FOREWARN_ENABLE_SECRET)" };
        var set = new Command("set", "Create or replace a group") { name, reply, check, commandSets, arguments, enableSecretFile };
        set.SetAction(async (result, cancellationToken) =>
        {
            if (!ItemParsing.TryParseReplies(result.GetValue(reply) ?? [], RadiusDictionary.BuiltIn, out var replies, out var error)
                || !ItemParsing.TryParseChecks(result.GetValue(check) ?? [], out var checks, out error)
                || !ItemParsing.TryParseArguments(result.GetValue(arguments) ?? [], out var tacacs, out error)
                || !CommonOptions.TryPasswordIterations(result, null, out int iterations, out error)
                || !CommonOptions.TryEnableHash(result.GetValue(enableSecretFile), iterations, out var enableHash, out error))
                return CommonOptions.Fail(error);
            var bindings = (result.GetValue(commandSets) ?? []).Select(CommandSetBinding.Parse).ToList();
            if (bindings.FirstOrDefault(b => b.CommandSet.Length == 0 || b.DeviceGroup is { Length: 0 }) is { } bad)
                return CommonOptions.Fail($"--command-set expects SET or SET@DEVICE-GROUP, got '{bad}'.");
            using var store = CommonOptions.OpenStore(result);
            var known = (await store.ListCommandSetsAsync(cancellationToken).ConfigureAwait(false)).Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
            if (bindings.FirstOrDefault(b => !known.Contains(b.CommandSet)) is { } missing)
                return CommonOptions.Fail($"no command set '{missing.CommandSet}' (create it first with 'forewarn command-sets set {missing.CommandSet} --rule ...').");
            await store.SetGroupAsync(new GroupRecord(result.GetValue(name)!, replies, checks, enableHash, tacacs, bindings), cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"Set group {result.GetValue(name)}.");
            return 0;
        });
        var list = new Command("list", "List groups");
        list.SetAction(async (result, cancellationToken) =>
        {
            using var store = CommonOptions.OpenStore(result);
            foreach (var group in await store.ListGroupsAsync(cancellationToken).ConfigureAwait(false))
                Console.WriteLine($"{group.Name}\treply=[{string.Join("; ", group.Reply)}]\tcheck=[{string.Join("; ", group.Checks)}]" +
                    $"\tcommand-sets=[{string.Join("; ", group.CommandSets ?? [])}]\ttacacs=[{string.Join("; ", group.Arguments ?? [])}]\tenable={(group.EnableHash is null ? "no" : "yes")}");
            return 0;
        });
        command.Subcommands.Add(set);
        command.Subcommands.Add(list);
        return command;
    }

    /// <summary>`forewarn command-sets`: named, ordered permit/deny rules that groups apply to TACACS+ command authorization.</summary>
    public static Command CreateCommandSets()
    {
        var command = new Command("command-sets", "Manage TACACS+ command sets (ordered permit/deny rules; the first match decides, no match denies)");
        var name = new Argument<string>("name");
        var rules = new Option<string[]>("--rule") { Description = "'permit REGEX' or 'deny REGEX' over the command line as sent (e.g. 'permit ^show '), repeatable, in order", Required = true };
        var set = new Command("set", "Create or replace a command set") { name, rules };
        set.SetAction(async (result, cancellationToken) =>
        {
            var parsed = new List<CommandRule>();
            foreach (var text in result.GetValue(rules) ?? [])
            {
                if (!CommandRule.TryParse(text, out var rule, out var error))
                    return CommonOptions.Fail("--rule: " + error + ".");
                parsed.Add(rule!);
            }
            var setName = result.GetValue(name)!.Trim();
            if (setName.Length == 0 || setName.Contains('@', StringComparison.Ordinal) || setName.Any(char.IsControl))
                return CommonOptions.Fail("a command set's name may not be empty or hold '@' or control characters.");
            using var store = CommonOptions.OpenStore(result);
            await store.SetCommandSetAsync(new CommandSet(setName, parsed), cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"Set command set {setName} ({parsed.Count} rules). A running server applies it within a second.");
            return 0;
        });
        var list = new Command("list", "List command sets");
        list.SetAction(async (result, cancellationToken) =>
        {
            using var store = CommonOptions.OpenStore(result);
            foreach (var commandSet in await store.ListCommandSetsAsync(cancellationToken).ConfigureAwait(false))
            {
                Console.WriteLine(commandSet.Name);
                foreach (var rule in commandSet.Rules)
                    Console.WriteLine($"  {rule}");
            }
            return 0;
        });
        var removeName = new Argument<string>("name");
        var remove = new Command("remove", "Remove a command set") { removeName };
        remove.SetAction(async (result, cancellationToken) =>
        {
            using var store = CommonOptions.OpenStore(result);
            if (!await store.RemoveCommandSetAsync(result.GetValue(removeName)!, cancellationToken).ConfigureAwait(false))
                return CommonOptions.Fail($"no command set '{result.GetValue(removeName)}'.");
            Console.WriteLine($"Removed command set {result.GetValue(removeName)}; groups naming it now deny what it permitted.");
            return 0;
        });
        command.Subcommands.Add(set);
        command.Subcommands.Add(list);
        command.Subcommands.Add(remove);
        return command;
    }
}
