namespace Forewarn.Server;

/// <summary>Where Forewarn keeps its state: forewarn.db (SQLite), forewarn.key (sealing key), forewarn.json (optional configuration).</summary>
public static class DataDirectory
{
    public const string DatabaseFile = "forewarn.db";
    public const string KeyFile = "forewarn.key";
    public const string ConfigFile = "forewarn.json";

    /// <summary>--data, else $FOREWARN_DATA, else $XDG_DATA_HOME/forewarn, else ~/.local/share/forewarn.</summary>
    public static string Resolve(string? explicitPath)
    {
        if (!string.IsNullOrWhiteSpace(explicitPath))
            return Path.GetFullPath(explicitPath);
        var fromEnvironment = Environment.GetEnvironmentVariable("FOREWARN_DATA");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
            return Path.GetFullPath(fromEnvironment);
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        var baseDirectory = !string.IsNullOrWhiteSpace(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(baseDirectory, "forewarn");
    }

    /// <summary>Raised (with the path) when a data directory is created: a mistyped --data starts an empty store, and the user should hear of it.</summary>
    public static event Action<string>? Created;

    /// <summary>The directory, created (mode 0700) if missing; a <see cref="StartupException"/> naming it when it cannot be used.</summary>
    public static string Ensure(string directory)
    {
        if (Directory.Exists(directory))
            return directory;
        if (File.Exists(directory))
            throw new StartupException($"the data directory '{directory}' is a file, not a directory (--data, $FOREWARN_DATA).");
        try
        {
            if (OperatingSystem.IsWindows())
                Directory.CreateDirectory(directory);
            else
                Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new StartupException($"cannot create the data directory '{directory}': {e.Message}");
        }
        Created?.Invoke(directory);
        return directory;
    }
}
