using Forewarn.Fuzz;

// forewarn-fuzz run TARGET               under afl-fuzz (persistent mode; the assemblies instrumented by sharpfuzz)
// forewarn-fuzz replay TARGET PATH...    each file (or each file of a directory) once; exit 1 if any breaks a promise
// forewarn-fuzz seeds TARGET DIR [CONFORMANCE]   the starting corpus: built here, and read from ../shared/conformance
// forewarn-fuzz tokens TARGET FILE       AFL's dictionary (-x) for the target: the words its input is made of (none: no file)
if (args.Length < 2 || !Targets.All.TryGetValue(args[1], out var target))
{
    Console.Error.WriteLine($"usage: forewarn-fuzz run|replay|seeds|tokens TARGET ...   (targets: {string.Join(", ", Targets.All.Keys)})");
    return 2;
}
switch (args[0])
{
    case "run":
        SharpFuzz.Fuzzer.Run(stream =>
        {
            using var input = new MemoryStream();
            stream.CopyTo(input);
            target(input.GetBuffer().AsSpan(0, (int)input.Length));
        });
        return 0;
    case "replay":
        int broken = 0, inputs = 0;
        foreach (var file in args.Skip(2).SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories) : [p]).Order(StringComparer.Ordinal))
        {
            inputs++;
            try
            {
                target(File.ReadAllBytes(file));
            }
            catch (Exception e)
            {
                broken++;
                Console.Error.WriteLine($"{file}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        Console.WriteLine($"{args[1]}: {inputs} inputs replayed, {broken} broke a promise");
        return broken == 0 ? 0 : 1;
    case "seeds" when args.Length >= 3:
        Directory.CreateDirectory(args[2]);
        int written = 0;
        foreach (var seed in Seeds.For(args[1], args.Length > 3 ? args[3] : null))
            File.WriteAllBytes(Path.Combine(args[2], $"seed-{written++:0000}"), seed);
        Console.WriteLine($"{args[1]}: {written} seeds in {args[2]}");
        return written > 0 ? 0 : 1;
    case "tokens" when args.Length >= 3:
        var tokens = Seeds.Tokens(args[1]).ToList();
        if (tokens.Count > 0)
            File.WriteAllLines(args[2], tokens.Select(t => $"\"{t.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\""));
        return 0;
    default:
        Console.Error.WriteLine("usage: forewarn-fuzz run|replay|seeds|tokens TARGET ...");
        return 2;
}
