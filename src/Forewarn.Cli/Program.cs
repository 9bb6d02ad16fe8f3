using System.CommandLine;
using Forewarn.Cli;

var root = new RootCommand("Forewarn: a RADIUS server that warns its clients before it fails.");
root.Options.Add(CommonOptions.Data);
root.Options.Add(CommonOptions.Postgres);
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(ServeCommand.CreateRelay());
root.Subcommands.Add(UsersCommand.Create());
root.Subcommands.Add(GroupsCommand.Create());
root.Subcommands.Add(GroupsCommand.CreateCommandSets());
root.Subcommands.Add(ClientsCommand.Create());
root.Subcommands.Add(AdminsCommand.Create());
root.Subcommands.Add(AccountingCommand.Create());
root.Subcommands.Add(CertsCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(FailoverCommand.CreateDemo());
foreach (var command in HealthCommands.Create())
    root.Subcommands.Add(command);
// A mistyped --data starts an empty store: say so where the user reads it (commands that print data keep stdout clean).
Forewarn.Server.DataDirectory.Created += directory =>
    Console.Error.WriteLine($"forewarn: created a new, empty data directory {directory}");
Forewarn.Server.Eap.EapOptions.CertificatesCreated += authority =>
    Console.Error.WriteLine($"forewarn: created a private CA and the EAP server certificate in {authority.Directory} " +
        $"(give supplicants {authority.CaFile}; 'forewarn certs client NAME' makes EAP-TLS client certificates)");
// The host handles SIGINT/SIGTERM itself (graceful shutdown), so the parser must not terminate the process.
// An operator's mistake ends in one line and exit code 2, never a stack trace (OperatorErrors).
try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false }).ConfigureAwait(false);
}
catch (Exception e) when (OperatorErrors.Describe(e) is { } message)
{
    return CommonOptions.Fail(message);
}
