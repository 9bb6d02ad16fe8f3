using System.Collections.Frozen;
using System.Reflection;

namespace Forewarn.Protocol.Radius.Dictionary;

/// <summary>
/// Attribute and vendor definitions loaded from FreeRADIUS-format dictionary files. Built once at
/// start, then read-only: lookups by name (case-insensitive) and by (vendor, number).
/// </summary>
public sealed class RadiusDictionary
{
    private readonly FrozenDictionary<string, AttributeDefinition> _byName;
    private readonly FrozenDictionary<(uint Vendor, uint Number), AttributeDefinition> _byNumber;
    private readonly FrozenDictionary<uint, VendorDefinition> _vendorsById;
    private readonly FrozenDictionary<string, VendorDefinition> _vendorsByName;

    internal RadiusDictionary(IEnumerable<AttributeDefinition> attributes, IEnumerable<VendorDefinition> vendors, IReadOnlyList<string> files)
    {
        Files = files;
        var byName = new Dictionary<string, AttributeDefinition>(StringComparer.OrdinalIgnoreCase);
        var byNumber = new Dictionary<(uint, uint), AttributeDefinition>();
        foreach (var a in attributes)
        {
            byName[a.Name] = a;
            if (!a.IsNested)
                byNumber.TryAdd((a.VendorId, a.Number), a);
        }
        var vendorsById = new Dictionary<uint, VendorDefinition>();
        var vendorsByName = new Dictionary<string, VendorDefinition>(StringComparer.OrdinalIgnoreCase);
        foreach (var v in vendors)
        {
            vendorsById[v.Id] = v;
            vendorsByName[v.Name] = v;
        }
        _byName = byName.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
        _byNumber = byNumber.ToFrozenDictionary();
        _vendorsById = vendorsById.ToFrozenDictionary();
        _vendorsByName = vendorsByName.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Every file read, $INCLUDEs followed (full paths).</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>Lines that were skipped rather than refused (for the log).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    public int AttributeCount => _byName.Count;
    public int VendorCount => _vendorsById.Count;
    public IEnumerable<AttributeDefinition> Attributes => _byName.Values;

    public AttributeDefinition? Find(string name) => _byName.GetValueOrDefault(name);
    public AttributeDefinition? Find(uint vendorId, uint number) => _byNumber.GetValueOrDefault((vendorId, number));
    public VendorDefinition? FindVendor(uint id) => _vendorsById.GetValueOrDefault(id);
    public VendorDefinition? FindVendor(string name) => _vendorsByName.GetValueOrDefault(name);

    public AttributeDefinition Get(string name) =>
        Find(name) ?? throw new KeyNotFoundException($"No attribute named '{name}' in the dictionary.");

    private static readonly string[] BuiltInFiles = ["dictionary.rfc", "dictionary.microsoft"];

    /// <summary>The dictionaries shipped inside Forewarn: the RFCs the server implements and Microsoft (vendor 311).</summary>
    public static RadiusDictionary BuiltIn { get; } = LoadBuiltIn([]);

    /// <summary>The built-in set plus operator files (FreeRADIUS format; $INCLUDE followed relative to each file).</summary>
    public static RadiusDictionary LoadBuiltIn(IEnumerable<string> extraFiles)
    {
        var parser = new DictionaryParser();
        var assembly = typeof(RadiusDictionary).Assembly;
        foreach (var file in BuiltInFiles)
        {
            using var stream = assembly.GetManifestResourceStream("Forewarn.Dictionary." + file)
                ?? throw new InvalidOperationException($"Built-in dictionary {file} is missing from the assembly.");
            using var reader = new StreamReader(stream);
            parser.Parse(reader, "builtin:" + file, baseDirectory: null);
        }
        foreach (var file in extraFiles)
            parser.ParseFile(file);
        return parser.Build();
    }

    /// <summary>Only the given files (and what they include), nothing built in.</summary>
    public static RadiusDictionary LoadFiles(params string[] files)
    {
        var parser = new DictionaryParser();
        foreach (var file in files)
            parser.ParseFile(file);
        return parser.Build();
    }

    /// <summary>
    /// One dictionary's text, with no file behind it (a test, the fuzzer): errors name <paramref name="source"/>
    /// and the line, and $INCLUDE is refused, having no directory to be relative to.
    /// </summary>
    public static RadiusDictionary LoadText(string text, string source)
    {
        var parser = new DictionaryParser();
        using var reader = new StringReader(text);
        parser.Parse(reader, source, baseDirectory: null);
        return parser.Build();
    }

    internal static Assembly ResourceAssembly => typeof(RadiusDictionary).Assembly;
}
