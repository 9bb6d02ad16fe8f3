using System.CommandLine;
using Forewarn.Server.AdminConsole;

namespace Forewarn.Cli;

/// <summary>
/// `forewarn admins`: the console's accounts, in admins.json in the data directory. A password is never
/// typed on the command line: it is asked for at the terminal (twice, unechoed), or read from
/// --password-file, standard input (--password-file -) or $FOREWARN_ADMIN_PASSWORD. A running server
/// takes a change at the next login.
/// </summary>
internal static class AdminsCommand
{
    private static readonly Option<string?> PasswordFile = new("--password-file")
    {
        Description = "A file whose first line is the password ('-' reads standard input; else $FOREWARN_ADMIN_PASSWORD, else asked at the terminal)",
    };

    public static Command Create()
    {
        var command = new Command("admins", "Manage the console's administrator accounts");
        var name = new Argument<string>("name") { Description = "The account's name (letters, digits, '.', '_', '-', '@')" };
        var role = new Option<string?>("--role") { Description = "admin (reads and changes) or operator (reads only); add: admin unless given, passwd: the account's own unless given" };

        var add = new Command("add", "Add an administrator (the first one makes the console usable)") { name, role, PasswordFile };
        add.SetAction(result => Change(result, result.GetValue(name)!, result.GetValue(role), replace: false));
        var passwd = new Command("passwd", "Change an administrator's password (and role with --role)") { name, role, PasswordFile };
        passwd.SetAction(result => Change(result, result.GetValue(name)!, result.GetValue(role), replace: true));

        var list = new Command("list", "List administrators");
        list.SetAction(result =>
        {
            foreach (var account in Accounts(result).All())
                Console.WriteLine($"{account.Name}\t{account.Role.ToString().ToLowerInvariant()}\tcreated {account.Created:yyyy-MM-dd HH:mm}Z");
            return 0;
        });

        var removeName = new Argument<string>("name");
        var remove = new Command("remove", "Remove an administrator") { removeName };
        remove.SetAction(result =>
        {
            if (!Accounts(result).Remove(result.GetValue(removeName)!))
                return CommonOptions.Fail($"no administrator '{result.GetValue(removeName)}'.");
            Console.WriteLine($"Removed administrator {result.GetValue(removeName)}.");
            return 0;
        });
        command.Subcommands.Add(add);
        command.Subcommands.Add(passwd);
        command.Subcommands.Add(list);
        command.Subcommands.Add(remove);
        return command;
    }

    private static AdminAccounts Accounts(ParseResult result) =>
        new(Forewarn.Server.DataDirectory.Ensure(CommonOptions.DataDirectoryOf(result)));

    private static int Change(ParseResult result, string name, string? roleText, bool replace)
    {
        var role = AdminRole.Admin;
        if (roleText is not null && (!Enum.TryParse(roleText, ignoreCase: true, out role) || !Enum.IsDefined(role) || int.TryParse(roleText, out _)))
            return CommonOptions.Fail($"--role '{roleText}' is neither admin nor operator.");
        if (AdminAccounts.ValidateName(name) is { } nameError)
            return CommonOptions.Fail(nameError);
        var accounts = Accounts(result);
        var current = accounts.Find(name);
        bool exists = current is not null;
        if (replace && roleText is null && current is not null)
            role = current.Role;
        if (replace && !exists)
            return CommonOptions.Fail($"no administrator '{name}' (forewarn admins add makes one).");
        if (!replace && exists)
            return CommonOptions.Fail($"administrator '{name}' exists already (forewarn admins passwd changes the password).");
        if (!TryPassword(result, out var password, out var error))
            return CommonOptions.Fail(error);
        if (AdminAccounts.ValidatePassword(password) is { } passwordError)
            return CommonOptions.Fail(passwordError);
        accounts.Add(name, password, role, replace);
        Console.WriteLine(replace
            ? $"Changed administrator {name} ({role.ToString().ToLowerInvariant()}); a running server takes it at the next login."
            : $"Added administrator {name} ({role.ToString().ToLowerInvariant()}). Log in at the console's address ('forewarn serve' prints it; admin.url in the data directory).");
        return 0;
    }

    private static bool TryPassword(ParseResult result, out string password, out string error)
    {
        password = "";
        var file = result.GetValue(PasswordFile);
        if (file is not null || Environment.GetEnvironmentVariable("FOREWARN_ADMIN_PASSWORD") is not null)
        {
            if (!CommonOptions.TryReadSecret(file == "-" ? "-" : null, file == "-" ? null : file, "FOREWARN_ADMIN_PASSWORD", out var secret, out error))
                return false;
            password = secret ?? "";
            return true;
        }
        if (Console.IsInputRedirected)
        {
            error = "give the password with --password-file FILE, --password-file - (standard input) or $FOREWARN_ADMIN_PASSWORD.";
            return false;
        }
        password = Ask("Password: ");
        if (Ask("Again: ") != password)
        {
            error = "the two passwords differ.";
            return false;
        }
        error = "";
        return true;
    }

    private static string Ask(string prompt)
    {
        Console.Error.Write(prompt);
        var text = new System.Text.StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
                break;
            if (key.Key == ConsoleKey.Backspace)
            {
                if (text.Length > 0)
                    text.Length--;
                continue;
            }
            if (!char.IsControl(key.KeyChar))
                text.Append(key.KeyChar);
        }
        Console.Error.WriteLine();
        return text.ToString();
    }
}
