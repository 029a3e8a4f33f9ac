import APTCommandLine
import APTCore
import APTNode
import APTProtocol
import Foundation

/// `apt-node run`: the fleet agent on a board.
enum RunCommand {
    static let spec = CommandSpec(
        name: "apt-node run",
        overview: "Join a coordinator and train each round it asks for with APT, within this node's energy and memory "
            + "budgets, sending quantised deltas. State (energy spent, the round in progress) is kept in --state-dir "
            + "so a restarted node never spends twice.",
        options: [
            .value("coordinator", "endpoint", "The coordinator's endpoint.", required: true),
            .value("name", "name", "This node's name.", required: true),
            .value("state-dir", "dir", "Where the node keeps its state.", required: true),
            .value("energy-budget", "joules", "Total energy this node may spend.", required: true),
            .value("memory-budget", "bytes", "Memory for training (k/M/G suffixes).", default: "64M"),
            .value("data", "dir", "Directory with the IDX files.", default: Dataset.defaultDirectory),
            .value("shard", "i/n", "Train on shard i of n (0-based) of the training set."),
            .value("partition", "spec", "How shards are cut: iid, labels:K or dirichlet:ALPHA.", default: "iid"),
            .value("train-limit", "n", "Use only the first n samples of the shard."),
            .value("seed", "s", "Seed for partitioning, sampling and rounding.", default: "0"),
            .value("profile", "name|file", "Device profile: a built-in name or a JSON file.", default: "rpi4"),
            .value("key", "prefix", "This node's secret key file is PREFIX.key (from apt-node keygen): CURVE on."),
            .value("coordinator-key", "file", "The coordinator's public key file (with --key)."),
            .value(
                "precision", "apt|fp32",
                "How this node trains: apt (fixed point, adaptive bits, quantised deltas) or fp32 (the float32 FedAvg "
                    + "baseline: float32 model and deltas).", default: "apt"),
            .value("max-rounds", "n", "Leave the fleet (BYE) after training n rounds; default: until the run ends."),
            .value("log-format", "text|json", "One line per event as text or as a JSON object.", default: "text"),
            ConfigFile.option,
        ])

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in
            let energy = try args.double("energy-budget", default: 0)
            guard energy > 0 else { throw UsageError("--energy-budget must be a positive number of joules") }
            let memory = try args.int("memory-budget", default: 64 << 20)
            let seed = UInt64(max(0, try args.int("seed", default: 0)))
            let maxRounds = try args.int("max-rounds")
            if let m = maxRounds, m < 1 { throw UsageError("--max-rounds must be at least 1, got \(m)") }
            let profile = try TrainCommand.profile(args.string("profile", default: "rpi4"))
            let json = try args.choice("log-format", among: ["text", "json"]) == "json"
            let precision: PrecisionMode =
                try args.choice("precision", among: ["apt", "fp32"]) == "fp32" ? .fp32 : .apt
            let log: (LogRecord) -> Void = { record in console.err((json ? record.json : record.message) + "\n") }
            let shard = try TrainCommand.shard(args)
            let partition: PartitionScheme
            do {
                partition = try PartitionScheme(parsing: args.string("partition", default: "iid"))
            } catch {
                throw UsageError("\(error)")
            }
            var security = Security.plain
            if let prefix = args["key"] {
                guard let serverKeyPath = args["coordinator-key"] else {
                    throw UsageError("--key needs --coordinator-key")
                }
                do {
                    // The public half is derived from the secret: PREFIX.key is the only file needed.
                    let secret = try KeyFiles.readKey(path: prefix + ".key")
                    guard let pair = CurveKeyPair.derive(secretKey: secret) else {
                        throw CommandFailure("\(prefix).key does not hold a CURVE secret key")
                    }
                    security = .curveClient(keys: pair, serverPublicKey: try KeyFiles.readKey(path: serverKeyPath))
                } catch {
                    throw CommandFailure("\(error)")
                }
            }
            let dir = args.string("data", default: Dataset.defaultDirectory)
            let data: Dataset
            let keep = try TrainCommand.selection(
                directory: dir, shard: shard, partition: partition, seed: seed, limit: try args.int("train-limit"))
            do {
                data = try Dataset.split(directory: dir, train: true, keeping: keep)
            } catch {
                throw CommandFailure("\(error)")
            }
            var configuration = FleetNode.Configuration(
                coordinator: args.string("coordinator", default: ""), name: args.string("name", default: ""),
                profile: profile, energyBudgetJ: energy, memoryBudgetBytes: memory,
                stateDirectory: args.string("state-dir", default: ""), security: security, seed: seed)
            configuration.precision = precision
            if let text = ProcessInfo.processInfo.environment["APT_NODE_CRASH_AT"] {
                let parts = text.split(separator: ":")
                guard parts.count == 2, parts[0] == "before-update", let round = Int(parts[1]), round >= 1 else {
                    throw UsageError("APT_NODE_CRASH_AT expects before-update:ROUND, got '\(text)'")
                }
                configuration.crashBeforeUpdateRound = round
            }
            do {
                let node = try FleetNode(configuration: configuration, data: data, context: try ZMQContext(), log: log)
                ShutdownSignal.install()
                let ending = try node.run(shouldStop: {
                    ShutdownSignal.requested || maxRounds.map { node.roundsTrained >= $0 } ?? false
                })
                if ShutdownSignal.requested {
                    log(
                        LogRecord(
                            "stopped", "stopped by a signal: \(rounds(node.roundsTrained)) trained, state saved",
                            LogRecord.resourceFields))
                    return
                }
                switch ending {
                case .done:
                    log(LogRecord("done", "done: \(rounds(node.roundsTrained)) trained", LogRecord.resourceFields))
                case .budgetSpent:
                    log(LogRecord("budget-spent", "energy budget spent: left the fleet", LogRecord.resourceFields))
                }
            } catch {
                throw CommandFailure("\(error)")
            }
        }
    }

    /// "1 round", "3 rounds".
    static func rounds(_ n: Int) -> String { n == 1 ? "1 round" : "\(n) rounds" }
}
