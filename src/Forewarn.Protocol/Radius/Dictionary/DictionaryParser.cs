using System.Globalization;

namespace Forewarn.Protocol.Radius.Dictionary;

/// <summary>A dictionary file could not be read; the message names the file and line.</summary>
public sealed class DictionaryException(string message) : Exception(message);

/// <summary>
/// Reads FreeRADIUS-format dictionaries (the v3 syntax Debian's freeradius-common ships):
/// ATTRIBUTE, VALUE, VENDOR, BEGIN-VENDOR/END-VENDOR, BEGIN-TLV/END-TLV, $INCLUDE and $INCLUDE-.
/// Later definitions of a name replace earlier ones, as in FreeRADIUS.
/// </summary>
internal sealed class DictionaryParser
{
    private readonly Dictionary<string, AttributeDefinition> _attributes = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, VendorDefinition> _vendors = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<(string Attribute, string Name, ulong Value, string Where)> _pendingValues = [];
    private readonly HashSet<string> _included = new(StringComparer.Ordinal);
    private readonly List<string> _warnings = [];

    private VendorDefinition? _vendor;
    private readonly Stack<AttributeDefinition> _tlvs = new();

    public void ParseFile(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new DictionaryException($"Dictionary file '{path}' does not exist.");
        if (!_included.Add(full))
            return;
        using var reader = new StreamReader(full);
        Parse(reader, full, Path.GetDirectoryName(full));
    }

    public void Parse(TextReader reader, string source, string? baseDirectory)
    {
        var savedVendor = _vendor;
        int lineNumber = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            int hash = line.IndexOf('#', StringComparison.Ordinal);
            if (hash >= 0)
                line = line[..hash];
            var tokens = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length == 0)
                continue;
            string where = $"{source}:{lineNumber}";
            try
            {
                ParseLine(tokens, where, baseDirectory);
            }
            catch (DictionaryException)
            {
                throw;
            }
            catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
            {
                throw new DictionaryException($"{where}: {e.Message}");
            }
        }
        _vendor = savedVendor;
    }

    private void ParseLine(string[] t, string where, string? baseDirectory)
    {
        switch (t[0].ToUpperInvariant())
        {
            case "$INCLUDE":
            case "$INCLUDE-":
                Require(t, 2, where);
                if (baseDirectory is null)
                    throw new DictionaryException($"{where}: $INCLUDE needs a dictionary read from a file (this one is built in or text).");
                var path = Path.IsPathRooted(t[1]) ? t[1] : Path.Combine(baseDirectory, t[1]);
                if (File.Exists(path))
                    ParseFile(path);
                else if (t[0] == "$INCLUDE")
                    throw new DictionaryException($"{where}: included file '{t[1]}' does not exist.");
                break;
            case "VENDOR":
                Require(t, 3, where);
                var vendor = ParseVendor(t[1], ParseNumber(t[2]), t.Length > 3 ? t[3] : null, where);
                _vendors[vendor.Name] = vendor;
                break;
            case "BEGIN-VENDOR":
                Require(t, 2, where);
                if (!_vendors.TryGetValue(t[1], out _vendor))
                    throw new DictionaryException($"{where}: BEGIN-VENDOR names unknown vendor '{t[1]}'.");
                break;
            case "END-VENDOR":
                _vendor = null;
                break;
            case "BEGIN-TLV":
                Require(t, 2, where);
                if (!_attributes.TryGetValue(t[1], out var tlv))
                    throw new DictionaryException($"{where}: BEGIN-TLV names unknown attribute '{t[1]}'.");
                _tlvs.Push(tlv);
                break;
            case "END-TLV":
                if (_tlvs.Count == 0)
                    throw new DictionaryException($"{where}: END-TLV without BEGIN-TLV.");
                _tlvs.Pop();
                break;
            case "ATTRIBUTE":
                Require(t, 4, where);
                var attribute = ParseAttribute(t, where);
                _attributes[attribute.Name] = attribute;
                break;
            case "VALUE":
                Require(t, 4, where);
                _pendingValues.Add((t[1], t[2], ParseNumber(t[3]), where));
                break;
            default:
                throw new DictionaryException($"{where}: unknown keyword '{t[0]}'.");
        }
    }

    private static void Require(string[] t, int count, string where)
    {
        if (t.Length < count)
            throw new DictionaryException($"{where}: '{t[0]}' needs {count - 1} arguments.");
    }

    private static VendorDefinition ParseVendor(string name, ulong id, string? format, string where)
    {
        int typeWidth = 1, lengthWidth = 1;
        bool continuation = false;
        if (format is not null)
        {
            if (!format.StartsWith("format=", StringComparison.OrdinalIgnoreCase))
                throw new DictionaryException($"{where}: unknown VENDOR option '{format}'.");
            var parts = format["format=".Length..].Split(',');
            typeWidth = int.Parse(parts[0], CultureInfo.InvariantCulture);
            lengthWidth = parts.Length > 1 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : 1;
            continuation = parts.Length > 2 && parts[2] == "c";
            if (typeWidth is not (1 or 2 or 4) || lengthWidth is not (0 or 1 or 2))
                throw new DictionaryException($"{where}: unsupported vendor format '{format}'.");
        }
        return new VendorDefinition(name, checked((uint)id), typeWidth, lengthWidth, continuation);
    }

    private AttributeDefinition ParseAttribute(string[] t, string where)
    {
        string name = t[1];
        var path = new List<uint>();
        foreach (var part in t[2].Split('.'))
            path.Add(checked((uint)ParseNumber(part)));
        if (_tlvs.Count > 0)
        {
            var parent = _tlvs.Peek();
            if (path.Count == 1)
                path.InsertRange(0, parent.Path);
        }

        var (type, fixedLength) = ParseType(t[3], where);
        bool hasTag = false, concat = false, array = false;
        var encryption = AttributeEncryption.None;
        uint vendorId = _vendor?.Id ?? 0;
        if (t.Length > 4)
        {
            foreach (var flag in t[4].Split(','))
            {
                var (key, value) = flag.IndexOf('=', StringComparison.Ordinal) is var eq and >= 0
                    ? (flag[..eq], flag[(eq + 1)..])
                    : (flag, "");
                switch (key.ToLowerInvariant())
                {
                    case "has_tag": hasTag = true; break;
                    case "encrypt": encryption = (AttributeEncryption)int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "concat": concat = true; break;
                    case "array": array = true; break;
                    case "virtual" or "secret" or "abinary" or "internal": break;
                    default:
                        // The old form: ATTRIBUTE name number type VendorName.
                        if (t.Length == 5 && value.Length == 0 && _vendors.TryGetValue(flag, out var v))
                            vendorId = v.Id;
                        else
                            throw new DictionaryException($"{where}: unknown attribute flag '{flag}'.");
                        break;
                }
            }
        }
        return new AttributeDefinition(name, vendorId, path[^1], type, hasTag, encryption, concat, array, fixedLength)
        {
            Path = path,
        };
    }

    private static (RadiusDataType, int) ParseType(string text, string where)
    {
        int fixedLength = 0;
        int bracket = text.IndexOf('[', StringComparison.Ordinal);
        if (bracket >= 0 && text.EndsWith(']'))
        {
            fixedLength = int.Parse(text[(bracket + 1)..^1], CultureInfo.InvariantCulture);
            text = text[..bracket];
        }
        RadiusDataType type = text.ToLowerInvariant() switch
        {
            "string" => RadiusDataType.Text,
            "octets" => RadiusDataType.Octets,
            "ipaddr" or "ipv4addr" => RadiusDataType.Ipv4Address,
            "ipv4prefix" => RadiusDataType.Ipv4Prefix,
            "ipv6addr" => RadiusDataType.Ipv6Address,
            "ipv6prefix" => RadiusDataType.Ipv6Prefix,
            "integer" or "uint32" => RadiusDataType.Integer,
            "integer64" or "uint64" => RadiusDataType.Integer64,
            "date" => RadiusDataType.Date,
            "ifid" => RadiusDataType.InterfaceId,
            "byte" or "uint8" => RadiusDataType.Byte,
            "short" or "uint16" => RadiusDataType.Short,
            "signed" or "int32" => RadiusDataType.Signed,
            "ether" => RadiusDataType.Ether,
            "combo-ip" => RadiusDataType.ComboIp,
            "tlv" => RadiusDataType.Tlv,
            "vsa" => RadiusDataType.Vsa,
            "extended" => RadiusDataType.Extended,
            "long-extended" => RadiusDataType.LongExtended,
            "evs" => RadiusDataType.Evs,
            "abinary" => RadiusDataType.AscendBinary,
            _ => throw new DictionaryException($"{where}: unknown data type '{text}'."),
        };
        return (type, fixedLength);
    }

    private static ulong ParseNumber(string text) =>
        text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.Parse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
            : ulong.Parse(text, CultureInfo.InvariantCulture);

    public RadiusDictionary Build()
    {
        foreach (var (attributeName, name, value, where) in _pendingValues)
        {
            if (!_attributes.TryGetValue(attributeName, out var attribute))
            {
                // FreeRADIUS refuses this; some shipped vendor files do it (dictionary.freedhcp), so it is a warning.
                _warnings.Add($"{where}: VALUE {name} for unknown attribute '{attributeName}' ignored.");
                continue;
            }
            attribute.ValuesByName[name] = value;
        }
        // A number is shown with its first name that still means it: a name given again to another number
        // (dictionary.openser after dictionary.columbia_university) names only the later one.
        foreach (var (attributeName, name, value, _) in _pendingValues)
        {
            if (_attributes.TryGetValue(attributeName, out var attribute) && attribute.ValuesByName[name] == value)
                attribute.ValueNames.TryAdd(value, name);
        }
        _pendingValues.Clear();
        return new RadiusDictionary(_attributes.Values, _vendors.Values, [.. _included]) { Warnings = [.. _warnings] };
    }
}
