using Forewarn.Core.Store;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Cli;

/// <summary>Parses --reply and --check values, checking each against the dictionary so that mistakes surface now, not at login.</summary>
internal static class ItemParsing
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

    /// <summary>
    /// A TACACS+ enable secret from --enable-secret-file or $FOREWARN_ENABLE_SECRET (never typed on the
    /// command line), hashed with PBKDF2; null hash when neither is given.
    /// </summary>
    public static bool TryEnableHash(string? file, int iterations, out string? hash, out string error)
    {
        hash = null;
        if (!CommonOptions.TryReadSecret(null, file, "FOREWARN_ENABLE_SECRET", out var secret, out error))
            return false;
        if (secret is null)
            return true;
        if (secret.Length == 0)
        {
            error = "the enable secret may not be empty.";
            return false;
        }
        hash = Forewarn.Core.Aaa.PasswordHasher.Hash(secret, iterations);
        return true;
    }
}
