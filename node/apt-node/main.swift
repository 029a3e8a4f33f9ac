import APTCommandLine
import APTCore
import APTProtocol
import Foundation

let rootSpec = CommandSpec(
    name: "apt-node",
    overview: "The APT Fleet node agent: trains on the device with Adaptive Precision Training.",
    subcommands: [
        ("run", "Join a coordinator and train the rounds it asks for (the fleet agent)."),
        ("train", "Train locally (no coordinator) and report accuracy, energy and memory."),
        ("simulate", "Simulate many nodes from one process, to load a coordinator at scale."),
        ("benchmark", "Run the engine benchmark grid and print the results table."),
        ("benchmark-codec", "Measure the wire codec on real weight deltas."),
        ("profiles", "List the built-in device profiles."),
        ("keygen", "Write this node's CURVE key pair (its .pub goes on the coordinator's allow-list)."),
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
            "run": RunCommand.run,
            "train": TrainCommand.run,
            "simulate": SimulateCommand.run,
            "benchmark": BenchmarkCommand.run,
            "benchmark-codec": CodecBenchmarkCommand.run,
            "profiles": ProfilesCommand.run,
            "keygen": { KeygenCommand.run(tool: "apt-node", defaultPrefix: "node", $0, console: $1) },
        ]))
