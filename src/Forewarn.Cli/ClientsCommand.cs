using System.CommandLine;
using Forewarn.Core.Clients;
using Forewarn.Core.Store;

namespace Forewarn.Cli;

internal static class ClientsCommand
{
    public static Command Create()
    {
        var command = new Command("clients", "Manage RADIUS clients (NAS devices)");

        var name = new Argument<string>("name") { Description = "A name for the client" };
        var address = new Option<string>("--address") { Description = "IP address or CIDR block the requests come from", Required = true };
        var secret = new Option<string?>("--secret") { Description = "Shared secret ('-' reads it from standard input; visible in the process list otherwise: prefer --secret-file or $FOREWARN_SECRET)" };
        var secretFile = new Option<string?>("--secret-file") { Description = "A file whose first line is the shared secret" };
        var group = new Option<string?>("--group") { Description = "Device group" };
        var messageAuthenticator = new Option<MessageAuthenticatorPolicy>("--message-authenticator")
        {
            Description = "auto (required once seen; default), require, or optional",
            DefaultValueFactory = _ => MessageAuthenticatorPolicy.Auto,
        };
        var clientClass = new Option<string?>("--class") { Description = "Client class: its thresholds (Forewarn:Health:ClassThresholds)" };
        var advisoryPort = new Option<int>("--advisory-port") { Description = "UDP port the client takes advisories on (default: Forewarn:Advisory:ClientPort)" };
        var perNas = new Option<bool>("--per-nas-advisory-keys")
        {
            Description = "Give each NAS of the block its own advisory key (forewarn clients advisory-key prints it), so that NASes sharing the RADIUS secret cannot sign advisories to one another",
        };
        var tacacsKeyFile = new Option<string?>("--tacacs-key-file") { Description = "TACACS+: a file whose first line is the client's own TACACS+ key (or $FOREWARN_TACACS_KEY; default: the shared secret)" };
        var tacacsUnencrypted = new Option<bool>("--tacacs-unencrypted") { Description = "TACACS+: accept unobfuscated packets on plain TCP from this client (for lab use only)" };
        var add = new Command("add", "Add a client") { name, address, secret, secretFile, group, messageAuthenticator, clientClass, advisoryPort, perNas, tacacsKeyFile, tacacsUnencrypted };
        add.SetAction(async (result, cancellationToken) =>
        {
            if (!CommonOptions.TryReadSecret(result.GetValue(secret), result.GetValue(secretFile), "FOREWARN_SECRET", out var sharedSecret, out var error))
                return CommonOptions.Fail(error);
            if (sharedSecret is null)
                return CommonOptions.Fail("give the shared secret with --secret-file FILE, --secret - (standard input), $FOREWARN_SECRET, or --secret VALUE.");
            if (!CommonOptions.TryReadSecret(null, result.GetValue(tacacsKeyFile), "FOREWARN_TACACS_KEY", out var tacacsKey, out error))
                return CommonOptions.Fail(error);
            if (tacacsKey is { Length: 0 })
                return CommonOptions.Fail("the TACACS+ key may not be empty.");
            var record = new ClientRecord(result.GetValue(name)!, result.GetValue(address)!, sharedSecret, result.GetValue(group), result.GetValue(messageAuthenticator),
                result.GetValue(clientClass), result.GetValue(advisoryPort),
                result.GetValue(perNas) ? Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) : null,
                tacacsKey, result.GetValue(tacacsUnencrypted));
            if (record.Name.Trim().Length == 0)
                return CommonOptions.Fail("the client's name may not be empty.");
            if (!RadiusClient.IsValidAddress(record.Address))
                return CommonOptions.Fail($"'{record.Address}' is neither an IP address nor a CIDR block.");
            if (record.Secret.Length == 0)
                return CommonOptions.Fail("the secret may not be empty.");
            using var store = CommonOptions.OpenStore(result);
            // A fresh data directory gets its localhost clients now, as `serve` would give them, so that
            // radtest still works after a switch was added first.
            bool fresh = await store.ClientsVersionAsync(cancellationToken).ConfigureAwait(false) == 0;
            if (!await store.AddClientAsync(record, cancellationToken).ConfigureAwait(false))
                return CommonOptions.Fail($"a client named '{record.Name}' or with address {record.Address} exists already.");
            if (fresh && await Forewarn.Server.ServerServices.SeedLocalhostAsync(store).ConfigureAwait(false) > 0)
                Console.WriteLine("This data directory had no clients: localhost (127.0.0.1 and ::1, secret testing123) was added too, for radtest; remove it before production use (forewarn clients remove localhost).");
            Console.WriteLine($"Added client {record.Name} ({record.Address}). A running server picks it up within a second.");
            return 0;
        });

        var list = new Command("list", "List clients");
        list.SetAction(async (result, cancellationToken) =>
        {
            using var store = CommonOptions.OpenStore(result);
            foreach (var client in await store.ListClientsAsync(cancellationToken).ConfigureAwait(false))
                Console.WriteLine($"{client.Name}\t{client.Address}\tgroup={client.DeviceGroup ?? "-"}\tmessage-authenticator={client.MessageAuthenticator.ToString().ToLowerInvariant()}");
            return 0;
        });

        var removeName = new Argument<string>("name");
        var remove = new Command("remove", "Remove a client") { removeName };
        remove.SetAction(async (result, cancellationToken) =>
        {
            using var store = CommonOptions.OpenStore(result);
            if (!await store.RemoveClientAsync(result.GetValue(removeName)!, cancellationToken).ConfigureAwait(false))
                return CommonOptions.Fail($"no client '{result.GetValue(removeName)}'.");
            Console.WriteLine($"Removed client {result.GetValue(removeName)}.");
            return 0;
        });

        var keyName = new Argument<string>("name") { Description = "The client (a block added with --per-nas-advisory-keys)" };
        var keyAddress = new Argument<string>("address") { Description = "The NAS's own address, inside the block" };
        var advisoryKey = new Command("advisory-key", "Print one NAS's own advisory key, for its configuration (Forewarn.Client's advisoryKey, the relay's Upstream AdvisoryKey)") { keyName, keyAddress };
        advisoryKey.SetAction(async (result, cancellationToken) =>
        {
            using var store = CommonOptions.OpenStore(result);
            var client = (await store.ListClientsAsync(cancellationToken).ConfigureAwait(false)).FirstOrDefault(c => c.Name == result.GetValue(keyName));
            if (client is null)
                return CommonOptions.Fail($"no client '{result.GetValue(keyName)}'.");
            if (client.AdvisorySecret is null)
                return CommonOptions.Fail($"client '{client.Name}' has no per-NAS advisory keys: its NASes use keys derived from the shared secret. Add it again with --per-nas-advisory-keys.");
            if (!System.Net.IPAddress.TryParse(result.GetValue(keyAddress), out var nas) || !RadiusClient.ParseNetwork(client.Address).Contains(nas))
                return CommonOptions.Fail($"'{result.GetValue(keyAddress)}' is not an address inside {client.Address}.");
            Console.WriteLine(Convert.ToHexStringLower(Forewarn.Protocol.Advisory.AdvisoryKeys.DeriveForNas(System.Text.Encoding.UTF8.GetBytes(client.AdvisorySecret), nas)));
            return 0;
        });

        command.Subcommands.Add(add);
        command.Subcommands.Add(list);
        command.Subcommands.Add(remove);
        command.Subcommands.Add(advisoryKey);
        return command;
    }
}
