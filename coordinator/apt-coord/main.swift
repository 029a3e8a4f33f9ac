import APTCommandLine
import APTCore
import APTProtocol
import Foundation

let rootSpec = CommandSpec(
    name: "apt-coord",
    overview: "The APT Fleet coordinator: runs federated rounds over ZeroMQ and keeps the fleet's ledger.",
    subcommands: [
        ("keygen", "Write a CURVE key pair (for the coordinator or for a node).")
    ])

let console = Console.standard
if let problem = CPUFeatures.unsupportedMessage() {
    console.err("Error: \(problem)\n")
    exit(ExitStatus.failure)
}
exit(
    rootSpec.dispatch(
        Array(CommandLine.arguments.dropFirst()), console: console,
        to: [
            "keygen": { KeygenCommand.run(tool: "apt-coord", defaultPrefix: "coordinator", $0, console: $1) },
            "ledger": LedgerCommand.run, "serve": ServeCommand.run,
        ]))
