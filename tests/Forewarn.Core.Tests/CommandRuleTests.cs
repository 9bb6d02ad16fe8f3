using Forewarn.Core.Aaa.Tacacs;
using Forewarn.Core.Store;

namespace Forewarn.Core.Tests;

/// <summary>Command rules: the literal-prefix shortcut never changes what a rule matches.</summary>
public class CommandRuleTests
{
    [Theory]
    [InlineData("^show ", "show ")]
    [InlineData("^configure terminal$", "configure terminal")]
    [InlineData("^cmd12( |$)", "cmd12")]
    [InlineData("^ab?c", "a")]
    [InlineData("^ab*", "a")]
    [InlineData("^ab{2}", "a")]
    [InlineData("^show|^dir", null)]
    [InlineData("^show (run|start)", "show ")]
    [InlineData("^a[|]b|c", null)]
    [InlineData("^a[|]b", "a")]
    [InlineData("show", null)]
    [InlineData("^(?i)show", null)]
    [InlineData("^.*", null)]
    [InlineData("^\\w+", null)]
    public void LiteralPrefix_IsOnlyWhatEveryMatchStartsWith(string pattern, string? prefix) =>
        Assert.Equal(prefix, CompiledRule.LiteralPrefix(pattern));

    [Fact]
    public void Matches_AgreesWithTheRegularExpression_OnEveryCommand()
    {
        string[] patterns = ["^show ", "^configure terminal$", "^ab?c", "^show|^dir", "^show (run|ver)", "^a[|]b|^c", "running", "^(?i)SHOW", "^cmd1( |$)", "^ping [0-9.]+$", "^x{2,}"];
        string[] commands = ["show running-config", "show", "configure terminal", "configure terminal now", "ac", "abc", "abbc", "dir flash:", "SHOW version",
            "cmd1", "cmd1 x", "cmd10", "ping 10.0.0.1", "ping host", "xx", "x", ""];
        foreach (var pattern in patterns)
        {
            var rule = new CompiledRule(true, pattern);
            var reference = new System.Text.RegularExpressions.Regex(pattern);
            foreach (var command in commands)
                Assert.True(reference.IsMatch(command) == rule.Matches(command), $"'{pattern}' on '{command}'");
        }
    }

    [Theory]
    [InlineData("permit ^show ", true)]
    [InlineData("deny .*", true)]
    [InlineData("allow .*", false)]
    [InlineData("permit", false)]
    [InlineData("permit (a", false)]
    [InlineData("permit (a)\\1", false)] // a backreference cannot be matched in linear time: refused when the rule is written
    public void Rules_AreCheckedWhenWritten(string text, bool valid) =>
        Assert.Equal(valid, CommandRule.TryParse(text, out _, out _));
}
