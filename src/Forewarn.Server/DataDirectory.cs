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

    public static string Ensure(string directory)
    {
        if (!Directory.Exists(directory))
        {
            if (OperatingSystem.IsWindows())
                Directory.CreateDirectory(directory);
            else
                Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return directory;
    }
}
