using Forewarn.Core.Store;

namespace Forewarn.Storage.Sqlite;

/// <summary>Reply and check items as stored: one item a line, fields separated by tabs (values may hold neither).</summary>
internal static class ItemText
{
    public static string Format(IReadOnlyList<ReplyItem> items) =>
        string.Concat(items.Select(i => $"{i.Attribute}\t{i.Value}\n"));

    public static string Format(IReadOnlyList<CheckItem> items) =>
        string.Concat(items.Select(i => $"{i.Attribute}\t{(i.Operator == CheckOperator.Equal ? "==" : "!=")}\t{i.Value}\n"));

    public static IReadOnlyList<ReplyItem> ParseReply(string text)
    {
        if (text.Length == 0)
            return [];
        var items = new List<ReplyItem>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split('\t');
            if (parts.Length == 2)
                items.Add(new ReplyItem(parts[0], parts[1]));
        }
        return items;
    }

    public static IReadOnlyList<CheckItem> ParseChecks(string text)
    {
        if (text.Length == 0)
            return [];
        var items = new List<CheckItem>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split('\t');
            if (parts.Length == 3)
                items.Add(new CheckItem(parts[0], parts[1] == "!=" ? CheckOperator.NotEqual : CheckOperator.Equal, parts[2]));
        }
        return items;
    }

    public static string Format(IReadOnlyList<TacacsArgument>? items) =>
        items is null ? "" : string.Concat(items.Select(i => $"{i.Service}\t{i.Name}\t{(i.Optional ? '*' : '=')}\t{i.Value}\n"));

    public static IReadOnlyList<TacacsArgument> ParseArguments(string text) =>
        [.. Lines(text, 4).Select(p => new TacacsArgument(p[0], p[1], p[3], p[2] == "*"))];

    public static string Format(IReadOnlyList<CommandSetBinding>? items) =>
        items is null ? "" : string.Concat(items.Select(i => $"{i.CommandSet}\t{i.DeviceGroup}\n"));

    public static IReadOnlyList<CommandSetBinding> ParseBindings(string text) =>
        [.. Lines(text, 2).Select(p => new CommandSetBinding(p[0], p[1].Length == 0 ? null : p[1]))];

    public static string Format(IReadOnlyList<CommandRule> rules) =>
        string.Concat(rules.Select(r => $"{(r.Permit ? "permit" : "deny")}\t{r.Pattern}\n"));

    public static IReadOnlyList<CommandRule> ParseRules(string text) =>
        [.. Lines(text, 2).Select(p => new CommandRule(p[0] == "permit", p[1]))];

    private static IEnumerable<string[]> Lines(string text, int fields) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).Where(p => p.Length == fields);
}
