import APTCommandLine
import APTCore
import APTProtocol
import Foundation

let rootSpec = CommandSpec(
    name: "apt-coord",
    overview: "The APT Fleet coordinator: runs federated rounds over ZeroMQ and keeps the fleet's ledger.",
    subcommands: [
        ("demo", "Run a whole local fleet (coordinator and nodes on loopback) and print the ledger."),
        ("serve", "Run the federated rounds, aggregate the nodes' deltas and keep the ledger."),
        ("ledger", "Show the fleet ledger: nodes, rounds, one node's history (read-only)."),
        ("report", "Write the fleet ledger as one self-contained HTML report with charts."),
        ("keygen", "Write a CURVE key pair (for the coordinator or for a node)."),
        ("benchmark-aggregation", "Measure how fast UPDATE bytes are decoded and folded into the global model."),
        ("benchmark-fleet", "Run the same local fleet with APT and with float32 FedAvg and compare them."),
        ("benchmark-scale", "Measure how many simulated nodes one coordinator carries, round by round."),
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
            "demo": DemoCommand.run, "ledger": LedgerCommand.run, "report": ReportCommand.run,
            "serve": ServeCommand.run,
            "benchmark-aggregation": BenchmarkCommand.run, "benchmark-fleet": FleetBenchmarkCommand.run,
            "benchmark-scale": ScaleBenchmarkCommand.run,
        ]))
