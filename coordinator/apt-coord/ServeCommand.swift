import APTCommandLine
import APTCoordinator
import APTCore
import APTProtocol
import Foundation

/// `apt-coord serve`: runs the federated rounds.
enum ServeCommand {
    static let spec = CommandSpec(
        name: "apt-coord serve",
        overview: "Run federated rounds over ZeroMQ: select nodes, send each the global model at its precision with "
            + "a policy within its budgets, fold their quantised deltas in (FedAvg), record everything in the SQLite "
            + "ledger. Resumes after the ledger's last completed round.",
        options: [
            .value("bind", "endpoint", "Where to listen.", default: "tcp://127.0.0.1:5555"),
            .value("ledger", "file", "The ledger (SQLite) file; created if missing.", required: true),
            .value("model", "name|file", "mlp, lenet or a JSON model spec file.", default: "mlp"),
            .value("rounds", "n", "Rounds to complete.", default: "3"),
            .value("min-nodes", "n", "Fewest updates a round needs.", default: "2"),
            .value("fraction", "f", "Fraction of eligible nodes selected per round, (0, 1].", default: "1"),
            .value("round-timeout", "seconds", "How long selected nodes have.", default: "60"),
            .value(
                "wait-for", "n",
                "Start the first round when n nodes have joined (or 30 s after the first), later ones at quorum.",
                default: "0"),
            .value(
                "over-select", "f",
                "Select this fraction more nodes than the round needs and close it when enough are in, [0, 1].",
                default: "0"),
            .value("steps", "n", "Local steps per round at most.", default: "50"),
            .value("seed", "s", "Seed of the initial global model (a new ledger only).", default: "0"),
            .value("uplink-bits", "b", "Bits per value of an APT node's delta, 1...16.", default: "8"),
            .value(
                "uplink-density", "f", "Fraction of each delta's values a node sends (top-k), (0, 1].", default: "1"),
            .value(
                "activation-bits", "lo-hi",
                "Bound every APT node's activation codes to lo-hi bits per layer (or one width b); its controller adapts them within."
            ),
            .value(
                "error-bits", "lo-hi",
                "Bound every APT node's error codes to lo-hi bits per layer (or one width b); its controller adapts them within."
            ),
            .value(
                "aggregator", "rule", "fedavg, fedadam, median or trimmed-mean:BETA (0 ≤ BETA < 0.5).",
                default: "fedavg"),
            .value("clip-norm", "x", "Scale any delta with an L2 norm above x down to x before aggregating."),
            .value("server-lr", "eta", "Server learning rate (default: 1; 0.01 for fedadam)."),
            .value("eval-data", "dir", "Evaluate the global model on this directory's test split after each round."),
            .value(
                "metrics", "file", "Write Prometheus metrics (textfile-collector format) to FILE after every round."),
            .value("eval-limit", "n", "Evaluate on the first n test samples.", default: "10000"),
            .value("curve-secret", "file", "The coordinator's secret key file (from keygen): CURVE on."),
            .value("allow", "file", "Allow-list of node public keys (with --curve-secret)."),
            .flag("force-plain", "Allow plain (unencrypted) mode off loopback."),
            .value("log-format", "text|json", "One line per event as text or as a JSON object.", default: "text"),
            ConfigFile.option,
        ])

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in
            let model: ModelSpec
            let modelName = args.string("model", default: "mlp")
            do throws(ModelSpecError) {
                model = try ModelSpec.load(modelName)
            } catch .unknownName(let name) {
                throw UsageError(
                    "\(ModelSpecError.unknownName(name)).\(didYouMean(name, among: ModelSpec.builtIn.keys.sorted()))")
            } catch {
                throw CommandFailure("\(error)")
            }
            let rounds = try args.int("rounds", default: 3)
            let minNodes = try args.int("min-nodes", default: 2)
            let fraction = try args.double("fraction", default: 1)
            let timeout = try args.double("round-timeout", default: 60)
            let overSelection = try args.double("over-select", default: 0)
            guard (0...1).contains(overSelection) else {
                throw UsageError("--over-select must be in [0, 1], got \(overSelection)")
            }
            guard rounds >= 1, minNodes >= 1, fraction > 0, fraction <= 1, timeout > 0 else {
                throw UsageError(
                    "--rounds and --min-nodes must be at least 1, --fraction in (0, 1], --round-timeout > 0")
            }
            let json = try args.choice("log-format", among: ["text", "json"]) == "json"
            let log: (LogRecord) -> Void = { record in console.err((json ? record.json : record.message) + "\n") }
            let aggregatorText = args.string("aggregator", default: "fedavg")
            guard let aggregation = AggregationRule(parsing: aggregatorText) else {
                throw UsageError(
                    "--aggregator expects fedavg, fedadam, median or trimmed-mean:BETA with 0 ≤ BETA < 0.5, got "
                        + "'\(aggregatorText)'."
                        + didYouMean(aggregatorText, among: ["fedavg", "fedadam", "median", "trimmed-mean:0.1"]))
            }
            let clipNorm = try args.double("clip-norm")
            if let c = clipNorm, c <= 0 { throw UsageError("--clip-norm must be positive, got \(c)") }
            let serverLR = try args.double("server-lr")
            if let eta = serverLR, eta <= 0 { throw UsageError("--server-lr must be positive, got \(eta)") }
            var security = Security.plain
            if let secretPath = args["curve-secret"] {
                guard let allowPath = args["allow"] else { throw UsageError("--curve-secret needs --allow FILE") }
                do {
                    let secret = try KeyFiles.readKey(path: secretPath)
                    // The public half is derived from the secret: only the .key file is needed.
                    guard let keys = CurveKeyPair.derive(secretKey: secret) else {
                        throw CommandFailure("\(secretPath) does not hold a CURVE secret key")
                    }
                    security = .curveServer(keys: keys, allowList: try AllowList.load(path: allowPath))
                } catch {
                    throw CommandFailure("\(error)")
                }
            }
            let bind = args.string("bind", default: "tcp://127.0.0.1:5555")
            if security == .plain, args.flag("force-plain"), let warning = Security.plainWarning(endpoint: bind) {
                log(LogRecord("warning", "Warning: \(warning)"))
            }
            var evaluation: Dataset? = nil
            if let dir = args["eval-data"] {
                let limit = try args.int("eval-limit", default: 10_000)
                do {
                    let count = try Dataset.splitLabels(directory: dir, train: false).count
                    evaluation = try Dataset.split(
                        directory: dir, train: false, keeping: limit < count ? Array(0..<max(1, limit)) : nil)
                } catch {
                    throw CommandFailure("\(error)")
                }
            }
            var configuration = CoordinatorServer.Configuration(
                bind: bind, ledgerPath: args.string("ledger", default: ""), model: model,
                rounds: .init(
                    rounds: rounds, minNodes: minNodes, fraction: fraction, timeoutMs: UInt64(timeout * 1000),
                    overSelection: overSelection),
                security: security, allowPlainOffLoopback: args.flag("force-plain"),
                stepsPerRound: try args.int("steps", default: 50), evaluation: evaluation,
                seed: UInt64(max(0, try args.int("seed", default: 0))))
            configuration.aggregation = aggregation
            configuration.clipNorm = clipNorm
            configuration.serverLearningRate = serverLR
            configuration.metricsPath = args["metrics"]
            if let text = ProcessInfo.processInfo.environment["APT_COORD_CRASH_AT"] {
                guard let point = CrashPoint(parsing: text) else {
                    let stages = CrashPoint.Stage.allCases.map(\.rawValue).joined(separator: ", ")
                    throw UsageError(
                        "APT_COORD_CRASH_AT expects STAGE:ROUND with STAGE one of \(stages), got '\(text)'")
                }
                configuration.crashPoint = point
            }
            configuration.uplinkBits = try args.int("uplink-bits", default: 8)
            guard (1...16).contains(configuration.uplinkBits) else {
                throw UsageError("--uplink-bits must be in 1...16, got \(configuration.uplinkBits)")
            }
            configuration.uplinkDensity = try args.double("uplink-density", default: 1)
            guard configuration.uplinkDensity > 0, configuration.uplinkDensity <= 1 else {
                throw UsageError("--uplink-density must be in (0, 1], got \(configuration.uplinkDensity)")
            }
            configuration.activationBits = try args.bitRange("activation-bits")
            configuration.errorBits = try args.bitRange("error-bits")
            let waitFor = try args.int("wait-for", default: 0)
            guard waitFor >= 0 else { throw UsageError("--wait-for must be at least 0, got \(waitFor)") }
            configuration.rounds.startNodes = waitFor
            do {
                FileDescriptorLimit.raiseToHardLimit()
                // A file-size limit (RLIMIT_FSIZE) reached makes a write fail with EFBIG, which the ledger reports,
                // rather than killing the process mid-transaction.
                signal(SIGXFSZ, SIG_IGN)
                let server = try CoordinatorServer(
                    configuration: configuration, context: try ZMQContext(), log: log)
                log(
                    LogRecord(
                        "serving", "serving \(model.name) on \(server.endpoint)",
                        [("model", .string(model.name)), ("endpoint", .string(server.endpoint))]))
                ShutdownSignal.install()
                try server.run(shouldStop: { ShutdownSignal.requested })
                log(
                    LogRecord(
                        "exit",
                        String(
                            format: "exiting: peak RSS %.1f MiB, %.2f s of CPU",
                            Double(ProcessMemory.peakResidentBytes()) / 1_048_576, ProcessCPU.seconds()),
                        LogRecord.resourceFields))
            } catch let e as CommandFailure {
                throw e
            } catch {
                throw CommandFailure("\(error)")
            }
        }
    }
}
