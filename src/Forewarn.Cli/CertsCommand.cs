using System.CommandLine;
using Forewarn.Server;

namespace Forewarn.Cli;

/// <summary><c>forewarn certs</c>: client certificates from the data directory's private CA, for EAP-TLS.</summary>
internal static class CertsCommand
{
    public static Command Create()
    {
        var command = new Command("certs", "Certificates of the data directory's private CA (tls/)");
        var name = new Argument<string>("name") { Description = "The certificate's identity: a user's name (its common name, and its e-mail or UPN)" };
        var days = new Option<int>("--days") { Description = "Validity in days (default 825)", DefaultValueFactory = _ => 825 };
        var client = new Command("client", "Write a client certificate and key signed by the CA: tls/clients/NAME.pem and NAME.key") { name, days };
        client.SetAction(result =>
        {
            if (result.GetValue(days) is < 1 or > 36_500)
                return CommonOptions.Fail("--days must be between 1 and 36500.");
            var authority = new CertificateAuthority(CommonOptions.DataDirectoryOf(result));
            var (certificate, key) = authority.IssueClient(result.GetValue(name)!, result.GetValue(days));
            Console.WriteLine($"Wrote {certificate} and {key} (mode 0600), signed by {authority.CaFile}.");
            return 0;
        });
        command.Subcommands.Add(client);
        command.Options.Add(CommonOptions.Data);
        return command;
    }
}
