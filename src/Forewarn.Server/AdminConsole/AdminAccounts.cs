using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Forewarn.Core.Aaa;

namespace Forewarn.Server.AdminConsole;

/// <summary>What an administrator may do: an operator reads, an admin also changes.</summary>
public enum AdminRole
{
    Operator,
    Admin,
}

/// <summary>One console account: the password only as a salted PBKDF2 hash.</summary>
public sealed record AdminAccount(string Name, AdminRole Role, string PasswordHash, DateTimeOffset Created);

/// <summary>
/// The console's accounts, in <c>admins.json</c> in the data directory (0600, written whole to a
/// temporary file and renamed over the old one, so that a crash leaves the old file or the new one).
/// The running server reads the file again when it changes, so <c>forewarn admins add</c> takes effect
/// at the next login without a restart. Passwords are hashed with PBKDF2-HMAC-SHA256 at OWASP's 600,000
/// iterations: an administrator logs in rarely, so the cost (about 0.2 s of one core) is paid rarely,
/// and it is what makes a stolen file expensive to crack.
/// </summary>
public sealed partial class AdminAccounts(string dataDirectory)
{
    public const string FileName = "admins.json";
    public const int Iterations = 600_000;
    public const int MinimumPasswordLength = 12;

    // A hash of a random password, so that a login for an unknown name costs what a known one costs.
    private static readonly Lazy<string> Decoy = new(() => PasswordHasher.Hash(Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)), Iterations));

    private readonly Lock _gate = new();
    private IReadOnlyList<AdminAccount> _accounts = [];
    private DateTime _loadedWrite = DateTime.MinValue;
    private long _loadedLength = -1;

    public string Path { get; } = System.IO.Path.Combine(dataDirectory, FileName);

    /// <summary>The accounts as the file holds them now.</summary>
    public IReadOnlyList<AdminAccount> All()
    {
        lock (_gate)
        {
            var info = new FileInfo(Path);
            if (!info.Exists)
            {
                _accounts = [];
                _loadedLength = -1;
                return _accounts;
            }
            if (info.LastWriteTimeUtc != _loadedWrite || info.Length != _loadedLength)
            {
                _accounts = Read(Path);
                _loadedWrite = info.LastWriteTimeUtc;
                _loadedLength = info.Length;
            }
            return _accounts;
        }
    }

    /// <summary>The account of that name as the file holds it now, or null.</summary>
    public AdminAccount? Find(string name) => All().FirstOrDefault(a => string.Equals(a.Name, name, StringComparison.Ordinal));

    /// <summary>The account when the password is its own; else null, after the same work either way.</summary>
    public AdminAccount? Verify(string name, string password)
    {
        var account = All().FirstOrDefault(a => string.Equals(a.Name, name, StringComparison.Ordinal));
        // A fresh hasher each time: the product's hasher remembers verdicts, a login must pay its cost.
        bool ok = new PasswordHasher().Verify(account?.PasswordHash ?? Decoy.Value, Encoding.UTF8.GetBytes(password));
        return ok && account is not null ? account : null;
    }

    /// <summary>Adds an account, or replaces its password and role when <paramref name="replace"/>.</summary>
    public AdminAccount Add(string name, string password, AdminRole role, bool replace = false)
    {
        if (ValidateName(name) is { } nameError)
            throw new ArgumentException(nameError);
        if (ValidatePassword(password) is { } passwordError)
            throw new ArgumentException(passwordError);
        lock (_gate)
        {
            using var exclusive = Exclusive();
            var accounts = All().ToList();
            int existing = accounts.FindIndex(a => a.Name == name);
            if (existing >= 0 && !replace)
                throw new ArgumentException($"administrator '{name}' exists already (forewarn admins passwd changes the password).");
            var account = new AdminAccount(name, role, PasswordHasher.Hash(password, Iterations),
                existing >= 0 ? accounts[existing].Created : DateTimeOffset.UtcNow);
            if (existing >= 0)
                accounts[existing] = account;
            else
                accounts.Add(account);
            Write(accounts);
            return account;
        }
    }

    /// <summary>Removes an account; false when there was none by that name.</summary>
    public bool Remove(string name)
    {
        lock (_gate)
        {
            using var exclusive = Exclusive();
            var accounts = All().ToList();
            if (accounts.RemoveAll(a => a.Name == name) == 0)
                return false;
            Write(accounts);
            return true;
        }
    }

    public static string? ValidateName(string name) =>
        NamePattern().IsMatch(name) ? null : $"administrator name '{name}' must be 1 to 64 letters, digits, '.', '_', '-' or '@'.";

    public static string? ValidatePassword(string password) =>
        password.Length >= MinimumPasswordLength ? null : $"an administrator's password needs at least {MinimumPasswordLength} characters.";

    /// <summary>
    /// admins.json.lock, held open exclusively while the file is read, changed and replaced: two
    /// `forewarn admins` at once change it one after the other instead of losing one's change.
    /// </summary>
    private FileStream Exclusive()
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        while (true)
        {
            try
            {
                return new FileStream(Path + ".lock", options);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
        }
    }

    private void Write(List<AdminAccount> accounts)
    {
        var temporary = $"{Path}.{Environment.ProcessId}.tmp";
        var created = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Options = FileOptions.WriteThrough };
        if (!OperatingSystem.IsWindows())
            created.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temporary, created))
        {
            JsonSerializer.Serialize(stream, accounts, Health.AdminJson.Options);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, Path, overwrite: true);
        _loadedWrite = DateTime.MinValue;
    }

    private static List<AdminAccount> Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<List<AdminAccount>>(File.ReadAllText(path), Health.AdminJson.Options)?
                .Where(a => a is { Name.Length: > 0, PasswordHash.Length: > 0 } && PasswordHasher.IsWellFormed(a.PasswordHash))
                .ToList() ?? [];
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a list of administrators ({e.Message}); fix it or remove it and add them again with forewarn admins add.");
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new InvalidDataException($"{path} cannot be read ({e.Message}): it must belong to the user the server runs as (forewarn admins as that user, or chown it).");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9._@-]{1,64}$")]
    private static partial Regex NamePattern();
}
