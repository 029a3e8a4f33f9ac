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
let argv = Array(CommandLine.arguments.dropFirst())
guard let first = argv.first else {
    Terminal.err(rootSpec.helpText)
    exit(Terminal.usageExit)
}
let rest = Array(argv.dropFirst())
switch first {
case "-h", "--help", "help":
    Terminal.out(rootSpec.helpText)
    exit(0)
case "keygen": KeygenCommand.run(rest)
default:
    let hint = closest(first, among: rootSpec.subcommands.map(\.name)).map { " Did you mean '\($0)'?" } ?? ""
    Terminal.usageFailure("Unknown subcommand '\(first)'.\(hint)", spec: rootSpec)
}
