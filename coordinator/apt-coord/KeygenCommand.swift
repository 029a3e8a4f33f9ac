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

    static func run(_ arguments: [String]) -> Never {
        let args = spec.parseOrExit(arguments)
        let prefix = args["out"] ?? "coordinator"
        let keyPath = prefix + ".key", pubPath = prefix + ".pub"
        if !args.flag("force") {
            for p in [keyPath, pubPath] where FileManager.default.fileExists(atPath: p) {
                Terminal.failure("\(p) exists; pass --force to overwrite it")
            }
        }
        let pair: CurveKeyPair
        do {
            pair = try CurveKeyPair.generate()
        } catch {
            Terminal.failure("cannot generate a CURVE key pair: \(error)")
        }
        do {
            let fm = FileManager.default
            try? fm.removeItem(atPath: keyPath)
            guard fm.createFile(atPath: keyPath, contents: Data((pair.secretKey + "\n").utf8),
                                attributes: [.posixPermissions: 0o600])
            else { throw CocoaError(.fileWriteUnknown) }
            try Data((pair.publicKey + "\n").utf8).write(to: URL(fileURLWithPath: pubPath), options: .atomic)
        } catch {
            Terminal.failure("cannot write \(keyPath) / \(pubPath): \(error.localizedDescription)")
        }
        if args["format"] == "json" {
            Terminal.out("{\"public_key\": \"\(pair.publicKey)\", \"secret_key_file\": \"\(keyPath)\", \"public_key_file\": \"\(pubPath)\"}\n")
        } else {
            Terminal.out("public key \(pair.publicKey)\nwrote \(keyPath) (secret, mode 0600) and \(pubPath)\n")
        }
        exit(0)
    }
}
