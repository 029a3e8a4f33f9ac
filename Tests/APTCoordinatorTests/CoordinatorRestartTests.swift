import APTCore
import APTProtocol
import Foundation
import Testing

@testable import APTCoordinator

/// A coordinator started again on its ledger resumes where the ledger says, with the checkpointed model.
@Suite("Coordinator restart", .serialized)
struct CoordinatorRestartTests {
    @Test("it resumes after the last completed round, with that round's global model bit for bit")
    func resumesFromCheckpoint() throws {
        let path = NSTemporaryDirectory() + "apt-restart-\(UUID().uuidString).sqlite"
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let sizes = try ModelSpec.mlp.parameterCounts()
        var random = RandomSource(seed: 21)
        let model = sizes.map { n in (0..<n).map { _ in random.nextUnitFloat() - 0.5 } }
        do {
            let ledger = try LedgerStore(path: path)
            for round in 1...3 {
                try ledger.recordRound(
                    RoundRecord(
                        number: round, attempt: 0, status: "completed", startedAt: "t", endedAt: "t", accuracy: 0.5),
                    participations: [],
                    checkpoint: CoordinatorServer.encodeModel(model.map { $0.map { $0 * Float(round) } }))
            }
            // A failed attempt of round 4 is not a checkpoint.
            try ledger.recordRound(
                RoundRecord(number: 4, attempt: 0, status: "failed", startedAt: "t", endedAt: "t"), participations: [])
        }
        let server = try CoordinatorServer(
            configuration: .init(
                bind: "tcp://127.0.0.1:*", ledgerPath: path, model: .mlp,
                rounds: .init(rounds: 6, minNodes: 1, timeoutMs: 1000)),
            context: try ZMQContext(), log: { _ in })
        #expect(server.machine.state == .waiting(round: 4, attempt: 0))
        #expect(server.global == model.map { $0.map { $0 * 3 } })
        // The model the nodes will be sent decodes to the checkpoint within half a step.
        let tensors = CoordinatorServer.encode(server.global, weightBits: [16, 16, 16], round: 4)
        for (t, v) in zip(tensors, server.global) {
            guard case .powerOfTwo(let e) = t.scale else { continue }
            let half = Float(sign: .plus, exponent: Int(e) - 1, significand: 1)
            for (a, b) in zip(t.dequantized(), v) { #expect(abs(a - b) <= half * 1.0001) }
        }
    }
}
