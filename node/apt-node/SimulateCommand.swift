import APTCommandLine
import APTCore
import APTNode
import APTProtocol
import Foundation

/// `apt-node simulate`: many protocol-speaking nodes from one process, to load a coordinator at scale.
enum SimulateCommand {
    static let spec = CommandSpec(
        name: "apt-node simulate",
        overview: "Simulate N nodes from one process to load a coordinator: each has its own socket and identity, "
            + "says HELLO, and answers every TASK after a jittered delay with a real UPDATE of the model's size at "
            + "the policy's bits and an energy report priced as the policy predicts. Nothing is trained. Ends when "
            + "the coordinator has said BYE to every node, after --duration, or on Ctrl-C.",
        options: [
            .value("coordinator", "endpoint", "The coordinator's endpoint (plain mode).", required: true),
            .value("count", "n", "Nodes to simulate (1...10000).", required: true),
            .value("model", "name|file", "The model the coordinator must serve (checked against its WELCOME)."),
            .value("name-prefix", "prefix", "Nodes are named PREFIX-0001, PREFIX-0002, …", default: "sim"),
            .value("profile", "name|file", "Every node's device profile.", default: "rpi4"),
            .value("energy-budget", "joules", "Every node's energy budget.", default: "1000000"),
            .value("memory-budget", "bytes", "Every node's memory budget (k/M/G suffixes).", default: "64M"),
            .value("samples", "n", "Training samples each node says it has.", default: "6000"),
            .value("delay-ms", "ms", "Mean delay from TASK to UPDATE (each drawn from 0.5× to 1.5×).", default: "200"),
            .value(
                "churn", "p", "Chance a node leaves after an UPDATE and comes back 1–5 s later, [0, 1].", default: "0"),
            .value("liars", "f", "Fraction of nodes reporting ten times their energy, [0, 1].", default: "0"),
            .value(
                "corrupt", "p", "Chance an UPDATE is first sent with a flipped byte, then as it should be, [0, 1].",
                default: "0"),
            .value("duration", "seconds", "Stop after this long (default: when every node has been told BYE)."),
            .value("seed", "s", "Seed of the delays and the deltas.", default: "0"),
            .value("log-format", "text|json", "One line per event as text or as a JSON object.", default: "text"),
        ])

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in
            let count = try args.int("count", default: 0)
            guard (1...10_000).contains(count) else { throw UsageError("--count must be in 1...10000, got \(count)") }
            var c = FleetSimulator.Configuration(coordinator: args.string("coordinator", default: ""), count: count)
            c.namePrefix = args.string("name-prefix", default: "sim")
            guard !c.namePrefix.isEmpty, c.namePrefix.utf8.count <= 200 else {
                throw UsageError("--name-prefix must be 1...200 bytes")
            }
            c.profile = try TrainCommand.profile(args.string("profile", default: "rpi4"))
            c.energyBudgetJ = try args.double("energy-budget", default: 1e6)
            guard c.energyBudgetJ.isFinite, c.energyBudgetJ > 0 else {
                throw UsageError("--energy-budget must be a positive number of joules")
            }
            c.memoryBudgetBytes = try args.int("memory-budget", default: 64 << 20)
            c.localSamples = try args.int("samples", default: 6000)
            c.meanDelayMs = try args.int("delay-ms", default: 200)
            guard c.localSamples >= 1, c.meanDelayMs >= 0, c.memoryBudgetBytes >= 0 else {
                throw UsageError("--samples must be at least 1; --delay-ms and --memory-budget at least 0")
            }
            c.seed = UInt64(max(0, try args.int("seed", default: 0)))
            c.churn = try args.double("churn", default: 0)
            c.liars = try args.double("liars", default: 0)
            c.corrupt = try args.double("corrupt", default: 0)
            for (name, v) in [("churn", c.churn), ("liars", c.liars), ("corrupt", c.corrupt)] where !(0...1).contains(v)
            {
                throw UsageError("--\(name) must be in [0, 1], got \(v)")
            }
            if let name = args["model"] {
                do throws(ModelSpecError) {
                    c.expectedModel = try ModelSpec.load(name)
                } catch {
                    throw UsageError("\(error)")
                }
            }
            let duration = try args.double("duration")
            if let d = duration, !(d > 0) { throw UsageError("--duration must be a positive number of seconds") }
            let json = try args.choice("log-format", among: ["text", "json"]) == "json"
            let log: (LogRecord) -> Void = { record in console.err((json ? record.json : record.message) + "\n") }
            FileDescriptorLimit.raiseToHardLimit()
            let simulator: FleetSimulator
            do {
                simulator = try FleetSimulator(configuration: c, log: log)
            } catch {
                throw CommandFailure("\(error)")
            }
            log(
                LogRecord(
                    "simulating", "simulating \(count) nodes against \(c.coordinator)",
                    [("count", .integer(count)), ("coordinator", .string(c.coordinator))]))
            ShutdownSignal.install()
            let end = duration.map { MonotonicClock.milliseconds() + UInt64($0 * 1000) }
            do {
                try simulator.run(shouldStop: {
                    ShutdownSignal.requested || end.map { MonotonicClock.milliseconds() >= $0 } ?? false
                })
            } catch {
                throw CommandFailure("\(error)")
            }
            let t = simulator.totals
            log(
                LogRecord(
                    "done",
                    "done: \(t.welcomed) welcomed, \(t.tasks) tasks, \(t.updates) updates (\(t.bytesUp) B up, "
                        + "\(t.bytesDown) B down), \(t.byes) told BYE, \(t.errors) errors; \(t.left) left and "
                        + "\(t.rejoined) came back, \(t.corrupted) corrupted frames, \(t.lies) inflated energy reports",
                    [
                        ("welcomed", .integer(t.welcomed)), ("tasks", .integer(t.tasks)),
                        ("updates", .integer(t.updates)), ("bytes_up", .integer(t.bytesUp)),
                        ("bytes_down", .integer(t.bytesDown)), ("byes", .integer(t.byes)),
                        ("errors", .integer(t.errors)), ("left", .integer(t.left)), ("rejoined", .integer(t.rejoined)),
                        ("corrupted", .integer(t.corrupted)), ("lies", .integer(t.lies)),
                    ] + LogRecord.resourceFields))
            if let problem = simulator.mismatch { throw CommandFailure(problem) }
        }
    }
}
