import APTCommandLine

/// `apt-coord keygen` and `apt-node keygen`: write a CURVE key pair as two files of Z85 text (one command, in
/// both tools, so a board needs only `apt-node`).
public enum KeygenCommand {
    /// The command as `tool` (`apt-coord` or `apt-node`) offers it; `defaultPrefix` names the files by default.
    public static func spec(tool: String, defaultPrefix: String) -> CommandSpec {
        CommandSpec(
            name: "\(tool) keygen",
            overview: "Write a CURVE key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (public). The coordinator "
                + "serves with its .key; nodes pin its .pub. Nodes make their own pairs the same way and the coordinator "
                + "lists their .pub lines in its allow-list file.",
            options: [
                .value("out", "prefix", "Path prefix of the two files.", default: defaultPrefix),
                .flag("force", "Overwrite existing files."),
                .value("format", "text|json", "Report the public key as text or JSON.", default: "text"),
            ])
    }

    /// Runs `tool keygen` with `arguments`.
    public static func run(tool: String, defaultPrefix: String, _ arguments: [String], console: Console) -> Int32 {
        spec(tool: tool, defaultPrefix: defaultPrefix).execute(arguments, console: console) { args in
            let prefix = args.string("out", default: defaultPrefix)
            let format = try args.choice("format", among: ["text", "json"])
            let files: KeyFiles
            do {
                files = try KeyFiles.create(prefix: prefix, overwrite: args.flag("force"))
            } catch {
                throw CommandFailure("\(error)")
            }
            if format == "json" {
                console.out(
                    "{\"public_key\": \"\(files.keys.publicKey)\", \"secret_key_file\": \"\(files.secretKeyPath)\", "
                        + "\"public_key_file\": \"\(files.publicKeyPath)\"}\n")
            } else {
                console.out(
                    "public key \(files.keys.publicKey)\nwrote \(files.secretKeyPath) (secret, mode 0600) and "
                        + "\(files.publicKeyPath)\n")
            }
        }
    }
}
