using System.CommandLine;
using Forewarn.Cli;

var root = new RootCommand("Forewarn: a RADIUS server that warns its clients before it fails.");
root.Options.Add(CommonOptions.Data);
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(ServeCommand.CreateRelay());
root.Subcommands.Add(UsersCommand.Create());
root.Subcommands.Add(GroupsCommand.Create());
root.Subcommands.Add(ClientsCommand.Create());
root.Subcommands.Add(AccountingCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(FailoverCommand.CreateDemo());
foreach (var command in HealthCommands.Create())
    root.Subcommands.Add(command);
// The host handles SIGINT/SIGTERM itself (graceful shutdown), so the parser must not terminate the process.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
