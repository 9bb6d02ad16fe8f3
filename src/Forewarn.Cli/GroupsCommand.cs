using System.CommandLine;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Cli;

internal static class GroupsCommand
{
    public static Command Create()
    {
        var command = new Command("groups", "Manage user groups (shared reply and check items)");
        var name = new Argument<string>("name");
        var reply = new Option<string[]>("--reply") { Description = "Reply attribute 'Name=Value' (repeatable)" };
        var check = new Option<string[]>("--check") { Description = "Check item 'Name==Value' (repeatable)" };
        var set = new Command("set", "Create or replace a group") { name, reply, check };
        set.SetAction(async (result, cancellationToken) =>
        {
            if (!ItemParsing.TryParseReplies(result.GetValue(reply) ?? [], RadiusDictionary.BuiltIn, out var replies, out var error)
                || !ItemParsing.TryParseChecks(result.GetValue(check) ?? [], out var checks, out error))
                return CommonOptions.Fail(error);
            using var store = CommonOptions.OpenStore(result);
            await store.SetGroupAsync(new GroupRecord(result.GetValue(name)!, replies, checks), cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"Set group {result.GetValue(name)}.");
            return 0;
        });
        var list = new Command("list", "List groups");
        list.SetAction(async (result, cancellationToken) =>
        {
            using var store = CommonOptions.OpenStore(result);
            foreach (var group in await store.ListGroupsAsync(cancellationToken).ConfigureAwait(false))
                Console.WriteLine($"{group.Name}\treply=[{string.Join("; ", group.Reply)}]\tcheck=[{string.Join("; ", group.Checks)}]");
            return 0;
        });
        command.Subcommands.Add(set);
        command.Subcommands.Add(list);
        return command;
    }
}
