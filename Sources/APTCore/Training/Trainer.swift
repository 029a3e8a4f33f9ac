#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs local training: the APT loop with the precision controller, budgets and accounting.
public struct Trainer: Sendable {
    /// The run's configuration.
    public let configuration: TrainingConfiguration
    /// The network being trained (its state after `run`).
    public private(set) var network: Network

    /// Validates the configuration, checks the memory budget from the spec before anything is allocated,
    /// then builds the network.
    public init(configuration: TrainingConfiguration) throws {
        try configuration.validate()
        if let budget = configuration.memoryBudget {
            try Trainer.checkMemory(configuration: configuration, budget: budget)
        }
        self.configuration = configuration
        self.network = try Network(
            spec: configuration.model, mode: configuration.precision,
            quantization: configuration.quantization, seed: configuration.seed)
    }

    /// The peak training memory a run may reach, from the spec alone: APT plans for its widest weight format and,
    /// where the controller adapts them, its widest activation and error codes.
    public static func plannedMemory(configuration c: TrainingConfiguration, batch: Int) throws -> MemoryFootprint {
        let model = try MemoryModel(
            spec: c.model, mode: c.precision, quantization: c.quantization, momentum: c.momentum)
        let bits: Int
        switch c.precision {
        case .apt: bits = c.controller.maxBits
        case .fixed(let b): bits = b
        case .fp32: bits = 32
        }
        let n = model.weightedLayerCount
        return model.footprint(
            batch: batch, weightBits: [Int](repeating: bits, count: n),
            activationBits: [Int](repeating: c.activationBitRange.upperBound, count: n),
            errorBits: [Int](repeating: c.errorBitRange.upperBound, count: n))
    }

    static func checkMemory(configuration c: TrainingConfiguration, budget: Int) throws {
        let need = try plannedMemory(configuration: c, batch: c.batchSize)
        guard need.totalBytes > budget else { return }
        var suggestions: [String] = []
        // Largest batch that fits.
        var lo = 0
        var hi = c.batchSize - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if try plannedMemory(configuration: c, batch: mid).totalBytes <= budget {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        if lo >= 1 { suggestions.append("--batch \(lo)") }
        if c.precision == .apt && c.controller.maxBits > 8 {
            var capped = c
            capped.controller.maxBits = 8
            if try plannedMemory(configuration: capped, batch: c.batchSize).totalBytes <= budget {
                suggestions.append("--max-bits 8")
            }
        }
        if c.precision == .fp32 || c.precision == .apt || c.precision.fixedBits.map({ $0 > 8 }) == true {
            var eight = c
            eight.precision = .fixed(bits: 8)
            eight.quantization = TrainingConfiguration.defaultQuantization(
                precision: .fixed(bits: 8), tradeoff: c.tradeoff)
            if try plannedMemory(configuration: eight, batch: c.batchSize).totalBytes <= budget {
                suggestions.append("--precision fixed:8")
            }
        }
        let fits =
            suggestions.isEmpty
            ? "nothing fits: even batch 1 needs \(try plannedMemory(configuration: c, batch: 1).totalBytes) bytes"
            : "would fit: " + suggestions.joined(separator: " or ")
        throw BudgetError(
            message:
                "memory budget \(budget) bytes is too small: \(c.model.name) at \(c.precision), batch \(c.batchSize) needs "
                + "\(need.totalBytes) bytes (parameters \(need.parameterBytes), optimiser \(need.optimizerBytes), "
                + "the step's batch, activations, errors and workspaces \(need.stepBytes ?? 0)); \(fits)")
    }

    /// Checks that `data` fits the model: image shape equal to the model's input, labels below its class count.
    public func check(_ data: Dataset, role: String) throws(ConfigurationError) {
        let shape = [1, data.rows, data.cols]
        let m = configuration.model
        guard shape == m.input else {
            throw ConfigurationError(
                "\(role) images are \(data.rows)×\(data.cols) but model '\(m.name)' expects input \(m.input)")
        }
        guard data.count > 0 else { throw ConfigurationError("\(role) set is empty") }
        guard data.classes <= m.classes else {
            throw ConfigurationError(
                "\(role) labels go up to \(data.classes - 1) but model '\(m.name)' has \(m.classes) classes")
        }
    }

    /// Trains on `train` for the configured epochs (stopping early at the energy budget), evaluates on `test`,
    /// and reports. Check both with `check(_:role:)` first. `progress` is called every few steps.
    public mutating func run(
        train: Dataset, test: Dataset, progress: ((TrainingProgress) -> Void)? = nil
    ) -> TrainingReport {
        let c = configuration
        var session = TrainingSession(configuration: c, network: network, data: train)
        let outcome = session.run(
            steps: c.epochs * session.stepsPerEpoch, energyLimit: c.energyBudget, progress: progress)
        let report = session.report(test: test, epochs: c.epochs, stopReason: outcome.stopReason)
        network = session.network
        return report
    }
}
