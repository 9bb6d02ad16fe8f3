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
}
