import APTCommandLine
import APTCore
import APTProtocol
import Foundation

let rootSpec = CommandSpec(
    name: "apt-coord",
    overview: "The APT Fleet coordinator: runs federated rounds over ZeroMQ and keeps the fleet's ledger.",
    subcommands: [
        ("keygen", "Write a CURVE key pair (for the coordinator or for a node)."),
    ])

if let problem = CPUFeatures.unsupportedMessage() { Terminal.failure(problem) }
rootSpec.dispatch(Array(CommandLine.arguments.dropFirst()), to: ["keygen": KeygenCommand.run])
