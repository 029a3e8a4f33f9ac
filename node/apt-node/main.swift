import APTCommandLine
import APTCore
import Foundation

let rootSpec = CommandSpec(
    name: "apt-node",
    overview: "The APT Fleet node agent: trains on the device with Adaptive Precision Training.",
    subcommands: [
        ("train", "Train locally (no coordinator) and report accuracy, energy and memory."),
        ("benchmark", "Run the engine benchmark grid and print the results table."),
        ("benchmark-codec", "Measure the wire codec on real weight deltas."),
        ("profiles", "List the built-in device profiles."),
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
case "train": TrainCommand.run(rest)
case "benchmark": BenchmarkCommand.run(rest)
case "benchmark-codec": CodecBenchmarkCommand.run(rest)
case "profiles": ProfilesCommand.run(rest)
default:
    let hint = closest(first, among: rootSpec.subcommands.map(\.name)).map { " Did you mean '\($0)'?" } ?? ""
    Terminal.usageFailure("Unknown subcommand '\(first)'.\(hint)", spec: rootSpec)
}
