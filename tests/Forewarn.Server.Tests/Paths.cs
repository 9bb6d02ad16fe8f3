namespace Forewarn.Server.Tests;

internal static class Paths
{
    public static string Conformance
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable("FOREWARN_CONFORMANCE");
            if (!string.IsNullOrEmpty(configured))
                return configured;
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Forewarn.slnx")))
                directory = directory.Parent;
            if (directory is null)
                throw new InvalidOperationException("Forewarn.slnx not found");
            return Path.GetFullPath(Path.Combine(directory.FullName, "..", "shared", "conformance"));
        }
    }

    /// <summary>A conformance file read in place; the test is skipped (failed under CI=true) when ../shared is absent.</summary>
    public static string ConformanceFile(params string[] parts)
    {
        var path = Path.Combine([Conformance, .. parts]);
        Requires.That(File.Exists(path), $"the conformance vectors are not here ({path}; ../shared beside the repository)");
        return path;
    }
}
