import APTCore
import APTProtocol
import Testing

@testable import APTCoordinator

/// The coordinator's check of a node's energy report against its policy and its work.
@Suite("Energy audit")
struct EnergyAuditTests {
    static func data(count: Int) -> Dataset {
        var random = RandomSource(seed: 5)
        let labels = (0..<count).map { UInt8($0 % 10) }
        let images = (0..<(count * 784)).map { _ in UInt8(truncatingIfNeeded: random.next() % 200) }
        return Dataset(images: images, labels: labels, rows: 28, cols: 28)
    }

    @Test("an honest session's energy passes; inflated, deflated and over-allowance reports are named")
    func honestAndLying() throws {
        let audit = EnergyAudit(model: .mlp)
        let policy = Policy(
            layerBits: [Policy.BitRange](repeating: .init(min: 10, max: 16), count: 3), tradeoff: 0.5, localEpochs: 0,
            localSteps: 7, batchSize: 32, roundEnergyJ: 1)
        var c = TrainingConfiguration(model: .mlp, precision: .apt, tradeoff: policy.tradeoff)
        c.batchSize = policy.batchSize
        c.profile = .raspberryPi4
        // 100 samples: the fourth step of each epoch is a short one (4 samples), so batches are uneven.
        var session = try TrainingSession(configuration: c, data: Self.data(count: 100))
        try session.setWeightBitRanges(policy.layerBits.map { $0.min...$0.max })
        let outcome = session.run(steps: policy.localSteps)
        let honest = session.energyJ
        #expect(outcome.samples != outcome.steps * policy.batchSize, "the test needs a short step")
        func verdict(_ joules: Double, _ p: Policy = policy) throws -> String? {
            try audit.disagreement(
                reportedJ: joules, policy: p, profile: .raspberryPi4, steps: outcome.steps, samples: outcome.samples)
        }
        #expect(try verdict(honest) == nil)
        let range = try audit.predicted(
            policy: policy, profile: .raspberryPi4, steps: outcome.steps, samples: outcome.samples)
        let slack = 1e-9 * honest
        #expect(honest >= range.lowerBound - slack && honest <= range.upperBound + slack, "\(honest) outside \(range)")
        #expect(try verdict(honest * 1.5)?.contains("its policy predicts") == true)
        #expect(try verdict(honest * 0.5)?.contains("its policy predicts") == true, "under-reporting to save budget")
        var tight = policy
        tight.roundEnergyJ = honest / 2
        #expect(try verdict(honest, tight)?.contains("more than the round's allowance") == true)
        #expect(try verdict(.nan) == "reported a non-finite or negative energy")
        // Another device prices the same work differently: a report priced for the wrong profile is caught.
        let other = try audit.disagreement(
            reportedJ: honest, policy: policy, profile: .generic45nm, steps: outcome.steps, samples: outcome.samples)
        #expect(other != nil)
    }
}
