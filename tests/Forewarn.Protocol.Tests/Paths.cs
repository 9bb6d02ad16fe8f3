namespace Forewarn.Protocol.Tests;

/// <summary>Locates the repository and the shared conformance vectors, which tests read in place.</summary>
internal static class Paths
{
    public static string RepositoryRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Forewarn.slnx")))
            directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("Forewarn.slnx not found above " + AppContext.BaseDirectory);
    }

    /// <summary>$FOREWARN_CONFORMANCE, else ../shared/conformance beside the repository.</summary>
    public static string Conformance
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable("FOREWARN_CONFORMANCE");
            var path = string.IsNullOrEmpty(configured) ? Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared", "conformance")) : configured;
            Require(Directory.Exists(path), $"conformance vectors not found at {path}; set FOREWARN_CONFORMANCE");
            return path;
        }
    }

    /// <summary>Missing locally: the test is skipped with the reason; under CI=true it fails (CI proves every peer was there).</summary>
    public static void Require(bool available, string reason)
    {
        if (available)
            return;
        if (Environment.GetEnvironmentVariable("CI") == "true")
            throw new InvalidOperationException("CI=true and this test cannot run: " + reason);
        throw new SkipException(reason);
    }

    public static string ConformanceFile(params string[] parts) => Path.Combine([Conformance, .. parts]);

    public static byte[] Hex(string text) => Convert.FromHexString(new string(text.Where(Uri.IsHexDigit).ToArray()));
}
