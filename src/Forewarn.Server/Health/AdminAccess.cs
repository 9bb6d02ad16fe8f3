using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Forewarn.Server.Health;

/// <summary>
/// Who may use the admin API. Every request needs the bearer token: the one configured
/// (<c>Forewarn:Admin:Token</c>) or the one generated on first start into <c>admin.token</c> in the data
/// directory, readable by its owner only (0600), so that the operator's own `forewarn status|drain|drill`
/// read it with no extra step and no other local user can. Tokens are compared in constant time. A
/// request whose Host header is not the admin address itself is refused: a web page in a local browser
/// cannot reach the API through DNS rebinding, and a cross-site form post carries no token.
/// </summary>
public sealed class AdminAccess
{
    public const string TokenFileName = "admin.token";

    private readonly byte[] _token;

    private AdminAccess(string token) => _token = Encoding.UTF8.GetBytes(token);

    /// <summary>The configured token, else the data directory's token file, created (0600) when missing.</summary>
    public static AdminAccess Load(AdminOptions options, string dataDirectory)
    {
        if (options.Token is { Length: > 0 } configured)
            return new AdminAccess(configured);
        var path = Path.Combine(dataDirectory, TokenFileName);
        if (File.Exists(path))
        {
            var existing = File.ReadAllText(path).Trim();
            if (existing.Length >= 16)
                return new AdminAccess(existing);
        }
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var created = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            created.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var writer = new StreamWriter(path, Encoding.ASCII, created))
            writer.WriteLine(token);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return new AdminAccess(token);
    }

    /// <summary>Where a token for a data directory is read by the command line: the file, when this user may read it.</summary>
    public static string? ReadToken(string dataDirectory)
    {
        try
        {
            var path = Path.Combine(dataDirectory, TokenFileName);
            return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Null when the Host header names this admin address; else the refusal.</summary>
    public static (int Status, string Message)? CheckHost(HttpContext context, IReadOnlyCollection<string> allowedHosts)
    {
        var host = context.Request.Host.Value ?? "";
        return allowedHosts.Contains(host, StringComparer.OrdinalIgnoreCase)
            ? null
            : (StatusCodes.Status421MisdirectedRequest, $"the Host header '{host}' is not this admin API's address");
    }

    /// <summary>Whether the request carries an Authorization header at all (a script), as against a console session.</summary>
    public static bool HasBearer(HttpContext context) => context.Request.Headers.Authorization.Count > 0;

    /// <summary>Null when the request's bearer token is this server's; else the refusal.</summary>
    public (int Status, string Message)? CheckToken(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        const string prefix = "Bearer ";
        var presented = header.StartsWith(prefix, StringComparison.Ordinal) ? Encoding.UTF8.GetBytes(header[prefix.Length..].Trim()) : [];
        if (!CryptographicOperations.FixedTimeEquals(presented, _token))
            return (StatusCodes.Status401Unauthorized, "a valid admin token is required (Authorization: Bearer ...; the server writes it to admin.token in its data directory), or a console login");
        return null;
    }

    /// <summary>The Host values a request to <paramref name="endpoint"/> may carry.</summary>
    public static IReadOnlyCollection<string> HostsFor(IPEndPoint endpoint)
    {
        var hosts = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { endpoint.ToString() };
        if (IPAddress.IsLoopback(endpoint.Address))
        {
            hosts.Add($"localhost:{endpoint.Port}");
            hosts.Add(endpoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? $"127.0.0.1:{endpoint.Port}" : $"[::1]:{endpoint.Port}");
        }
        return hosts;
    }
}
