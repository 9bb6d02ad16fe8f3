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
            if (!Directory.Exists(path))
                throw new InvalidOperationException($"Conformance vectors not found at {path}; set FOREWARN_CONFORMANCE.");
            return path;
        }
    }

    public static string ConformanceFile(params string[] parts) => Path.Combine([Conformance, .. parts]);

    public static byte[] Hex(string text) => Convert.FromHexString(new string(text.Where(Uri.IsHexDigit).ToArray()));
}
