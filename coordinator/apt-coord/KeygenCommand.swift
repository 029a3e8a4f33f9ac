import APTCommandLine
import APTProtocol
import Foundation

/// `apt-coord keygen`: writes a CURVE key pair as two files of Z85 text.
enum KeygenCommand {
    static let spec = CommandSpec(
        name: "apt-coord keygen",
        overview: "Write a CURVE key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (public). The coordinator "
            + "serves with its .key; nodes pin its .pub. Nodes make their own pairs the same way and the coordinator "
            + "lists their .pub lines in its allow-list file.",
        options: [
            .value("out", "prefix", "Path prefix of the two files.", default: "coordinator"),
            .flag("force", "Overwrite existing files."),
            .value("format", "text|json", "Report the public key as text or JSON.", default: "text"),
        ])

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in
            let prefix = args.string("out", default: "coordinator")
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
