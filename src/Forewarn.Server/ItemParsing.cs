using Forewarn.Core.Store;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Server;

/// <summary>Parses --reply and --check values, checking each against the dictionary so that mistakes surface now, not at login.</summary>
public static class ItemParsing
{
    public static bool TryParseReplies(IEnumerable<string> texts, RadiusDictionary dictionary, out List<ReplyItem> items, out string error)
    {
        items = [];
        error = "";
        foreach (var text in texts)
        {
            int eq = text.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                error = $"--reply expects Name=Value, got '{text}'.";
                return false;
            }
            var item = new ReplyItem(text[..eq].Trim(), text[(eq + 1)..].Trim());
            if (item.Value.Contains('\t', StringComparison.Ordinal) || item.Value.Contains('\n', StringComparison.Ordinal))
            {
                error = "reply values may not contain tabs or newlines.";
                return false;
            }
            if (!AttributeValue.TryParse(dictionary, item.Attribute, item.Value, out _, out error))
                return false;
            items.Add(item);
        }
        return true;
    }

    public static bool TryParseChecks(IEnumerable<string> texts, out List<CheckItem> items, out string error)
    {
        items = [];
        error = "";
        foreach (var text in texts)
        {
            int ne = text.IndexOf("!=", StringComparison.Ordinal);
            int eq = text.IndexOf("==", StringComparison.Ordinal);
            int at = ne > 0 ? ne : eq;
            if (at <= 0)
            {
                error = $"--check expects Name==Value or Name!=Value, got '{text}'.";
                return false;
            }
            items.Add(new CheckItem(text[..at].Trim(), ne > 0 ? CheckOperator.NotEqual : CheckOperator.Equal, text[(at + 2)..].Trim()));
        }
        return true;
    }

    /// <summary>--tacacs-arg values: <c>service:name=value</c> (or <c>*</c> for an optional one).</summary>
    public static bool TryParseArguments(IEnumerable<string> texts, out List<TacacsArgument> arguments, out string error)
    {
        arguments = [];
        error = "";
        foreach (var text in texts)
        {
            if (!TacacsArgument.TryParse(text, out var argument, out error))
            {
                error = "--tacacs-arg: " + error + ".";
                return false;
            }
            arguments.Add(argument!);
        }
        return true;
    }

    /// <summary>A user name as the NAS sends it: not empty, no control characters.</summary>
    public static bool TryUserName(string name, out string error)
    {
        error = name.Trim().Length == 0 ? "the user name may not be empty."
            : name.Any(char.IsControl) ? "the user name may not contain control characters." : "";
        return error.Length == 0;
    }

    /// <summary>A method list (pap, chap, …, eap, all) naming at least one method; <paramref name="what"/> names the field in the error.</summary>
    public static bool TryMethods(string text, string what, out AuthMethods methods, out string error)
    {
        error = "";
        try
        {
            methods = Forewarn.Core.Aaa.Credentials.ParseMethods(text);
        }
        catch (FormatException e)
        {
            methods = AuthMethods.None;
            error = e.Message;
            return false;
        }
        if (methods == AuthMethods.None)
            error = $"{what} names no method.";
        return methods != AuthMethods.None;
    }
}
