import APTCore
import APTProtocol
import Foundation
import Synchronization
import Testing

@testable import APTCoordinator

/// The server end to end in one process: a DEALER speaking the protocol against `CoordinatorServer` on loopback,
/// and what ends up in the ledger.
@Suite("Coordinator server", .serialized)
struct CoordinatorServerTests {
    /// Runs the server on a thread of its own until the test is done with it.
    final class Running: @unchecked Sendable {
        let server: CoordinatorServer
        let stop = Atomic<Bool>(false)
        let done = DispatchSemaphore(value: 0)
        init(_ server: CoordinatorServer) {
            self.server = server
        }
        func start() {
            Thread.detachNewThread { [self] in
                _ = try? server.run(shouldStop: { self.stop.load(ordering: .relaxed) })
                done.signal()
            }
        }
        func finish() {
            stop.store(true, ordering: .relaxed)
            done.wait()
        }
    }

    static func update(round: UInt32, delta: [QuantizedTensor], bits: Int) -> Message {
        .update(
            Update(
                round: round, attempt: 0, samplesTrained: 64, stepsDone: 1, stepsAsked: 1, delta: delta,
                ledger: LedgerEntry(
                    energyJ: 0, peakMemoryBytes: 1000, bits: [UInt8](repeating: UInt8(bits), count: 3), loss: 1,
                    accuracy: 0.1, durationS: 0.1)))
    }

    @Test("a NaN delta, a wrong-shaped delta and a stale one are refused, and each is in the ledger with its reason")
    func refusedDeltasAreRecorded() throws {
        let path = NSTemporaryDirectory() + "apt-server-\(UUID().uuidString).sqlite"
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let context = try ZMQContext()
        let server = try CoordinatorServer(
            configuration: .init(
                bind: "tcp://127.0.0.1:*", ledgerPath: path, model: .mlp,
                rounds: .init(rounds: 2, minNodes: 1, timeoutMs: 20_000)),
            context: context, log: { _ in })
        let running = Running(server)
        running.start()
        defer { running.finish() }
        let dealer = try DealerEndpoint(context: context, connect: server.endpoint, identity: Array("n1".utf8))
        try dealer.send(
            .hello(
                Hello(
                    name: "n1", profile: .raspberryPi4, energyBudgetJ: 1, memoryBudgetBytes: 64 << 20,
                    localSamples: 600,
                    capabilities: [.apt])))
        func next(_ type: MessageType) throws -> Message? {
            let end = Date().addingTimeInterval(20)
            while Date() < end {
                if let m = try dealer.receive(timeoutMs: 100), m.type == type { return m }
            }
            return nil
        }
        guard case .task(let task) = try #require(try next(.task)) else { return }
        #expect(task.round == 1)
        // 1. A NaN scale: the frame itself is refused (ERROR back) and recorded as the node's event.
        let sizes = try ModelSpec.mlp.parameterCounts()
        var nan = sizes.enumerated().map { i, n in
            QuantizedTensor(
                layer: UInt16(i), count: n, bits: 8, scale: .float32(1e-3), indices: nil,
                codes: [Int32](repeating: 1, count: n))
        }
        nan[2] = QuantizedTensor(
            layer: 2, count: sizes[2], bits: 8, scale: .float32(.nan), indices: nil,
            codes: [Int32](repeating: 1, count: sizes[2]))
        try dealer.send(Self.update(round: 1, delta: nan, bits: 8))
        guard case .error(let code, _) = try #require(try next(.error)) else { return }
        #expect(code == .malformed)
        // 2. A wrong-shaped delta: one tensor missing. It answers the round, recorded as rejected with the reason.
        let good = Array(nan.prefix(2))
        try dealer.send(Self.update(round: 1, delta: good, bits: 8))
        guard case .task(let second) = try #require(try next(.task)) else { return }
        #expect(second.round == 2)
        // 3. A stale update (round 1 again, now closed): refused as late and recorded.
        try dealer.send(Self.update(round: 1, delta: good, bits: 8))
        usleep(300_000)
        let reader = try LedgerStore(path: path, readOnly: true)
        let events = try reader.database.rows("SELECT kind, detail FROM events ORDER BY id")
        #expect(events.map { $0["kind"].string } == ["malformed", "refused-update"], "\(events)")
        #expect(events.first?["detail"].string?.contains("nan") == true, "\(events)")
        #expect(events.last?["detail"].string?.contains("round 1 attempt 0, which it answered") == true)
        let rows = try reader.participations(node: "n1")
        #expect(rows.count == 1 && rows.first?["status"].string == "rejected", "\(rows)")
        #expect(rows.first?["reason"].string == "2 tensors, the model has 6", "\(rows)")
        let round1 = try reader.rounds().first
        #expect(round1?.number == 1 && round1?.status == "completed")
        // The rejected delta changed nothing: the checkpoint is the initial model.
        let initial = try Network(
            spec: .mlp, mode: .fp32,
            quantization: TrainingConfiguration.defaultQuantization(precision: .fp32, tradeoff: 0.5),
            seed: 0
        ).parameterSnapshot.map { $0.dequantized() }
        #expect(try reader.latestCheckpoint()?.model == CoordinatorServer.encodeModel(initial))
    }
}
