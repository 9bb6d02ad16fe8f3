using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Forewarn.Server;

/// <summary>
/// Settings written in the wrong shape: a section or a list where one value belongs, which the configuration
/// binder refuses with a message that names no setting ("Cannot create instance of type 'System.String'"),
/// and one value where a list or a section belongs ("Listen": "0.0.0.0"), which it ignores without a word.
/// </summary>
public static class ConfigurationShape
{
    /// <summary>Throws a <see cref="StartupException"/> naming each setting in the wrong shape for the options class its section is bound to.</summary>
    public static void Check(IConfiguration configuration, params (string Section, Type Options)[] sections)
    {
        var errors = sections.SelectMany(s => Mismatches(configuration.GetSection(s.Section), s.Options)).ToList();
        if (errors.Count > 0)
            throw new StartupException("invalid configuration: " + string.Join(" ", errors));
    }

    private static IEnumerable<string> Mismatches(IConfigurationSection section, Type type)
    {
        bool hasChildren = section.GetChildren().Any();
        if (IsValue(type))
        {
            if (hasChildren)
                yield return $"{section.Path} takes one value, not a section or a list.";
            yield break;
        }
        var element = ElementType(type);
        if (!hasChildren)
        {
            if (!string.IsNullOrEmpty(section.Value))
                yield return $"{section.Path} takes {(element is null ? "a section, { ... }" : "a list, [ ... ]")}, not one value.";
            yield break;
        }
        var children = element is not null
            ? section.GetChildren().Select(child => (child, element))
            : type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.SetMethod is { IsPublic: true } && p.GetIndexParameters().Length == 0)
                .Select(p => (section.GetSection(p.Name), p.PropertyType));
        foreach (var (child, childType) in children)
        {
            foreach (var error in Mismatches(child, childType))
                yield return error;
        }
    }

    private static bool IsValue(Type type) =>
        type == typeof(string) || type.IsPrimitive || type.IsEnum || type == typeof(decimal) || Nullable.GetUnderlyingType(type) is not null;

    /// <summary>The items' type of a list (List&lt;T&gt;) or a map by name (Dictionary&lt;string, T&gt;); null for a section bound to an object.</summary>
    private static Type? ElementType(Type type)
    {
        if (!type.IsGenericType)
            return null;
        var arguments = type.GetGenericArguments();
        return typeof(System.Collections.IEnumerable).IsAssignableFrom(type) ? arguments[^1] : null;
    }
}
