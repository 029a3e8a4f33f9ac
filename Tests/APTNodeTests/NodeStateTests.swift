import APTCore
import APTProtocol
import Foundation
import Testing

@testable import APTNode

/// The node's state dir: atomic, write-ahead, never spends twice, refuses what it cannot trust.
@Suite("Node state dir", .serialized)
struct NodeStateTests {
    func directory() -> String {
        NSTemporaryDirectory() + "apt-state-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    @Test("state round-trips; a fresh directory is created and has no state")
    func roundTrip() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try NodeStateStore(directory: dir)
        #expect(try store.load(identity: "n1") == nil)
        var s = NodeState(identity: "n1")
        s.commit(round: 1, allowanceJ: 0.5)
        s.settle(spentJ: 0.3)
        s.modelRound = 1
        try store.save(s)
        #expect(try store.load(identity: "n1") == s)
        #expect(!FileManager.default.fileExists(atPath: store.path + ".tmp"), "no temporary file left behind")
    }

    @Test("a crash between commit and settle counts the whole commitment as spent: no budget is spent twice")
    func crashMidRound() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try NodeStateStore(directory: dir)
        var s = NodeState(identity: "n1")
        s.commit(round: 1, allowanceJ: 0.5)
        s.settle(spentJ: 0.5)
        s.commit(round: 2, allowanceJ: 0.25)
        try store.save(s)  // written ahead, then the process dies while training round 2
        let restarted = try #require(try store.load(identity: "n1"))
        #expect(restarted.spentJ == 0.75 && restarted.committedJ == 0 && restarted.chargedJ == 0.75)
        #expect(restarted.lastRound == 1, "round 2 was never sent")
    }

    @Test("a node whose key was rotated keeps its spending under the new key; another node's state is refused")
    func keyRotation() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try NodeStateStore(directory: dir)
        var old = NodeState(identity: "keyA", name: "pi")
        old.spentJ = 0.25
        old.commit(round: 3, allowanceJ: 0.5)
        try store.save(old)
        var s = try #require(try store.load(identity: "keyB", name: "pi"))
        #expect(s.identity == "keyA", "load hands back the state as stored")
        s.rotate(to: "keyB")
        #expect(s.identity == "keyB" && s.previousIdentities == ["keyA"])
        #expect(s.chargedJ == 0.75 && s.chargedBeforeIdentityJ == 0.75, "the crashed round's commitment stays spent")
        try store.save(s)
        #expect(try store.load(identity: "keyB", name: "pi") == s)
        do {
            _ = try store.load(identity: "keyC", name: "press-2")
            Issue.record("another node's state was accepted")
        } catch {
            #expect(error.reason == "belongs to node pi, not press-2")
        }
    }

    @Test("a torn write leaves the previous state; a corrupt or foreign file is refused by name and kept")
    func refusals() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try NodeStateStore(directory: dir)
        var s = NodeState(identity: "n1")
        s.lastRound = 4
        try store.save(s)
        // A crash during the next save leaves only a partial temporary file.
        try Data("{\"version\": 1, \"ident".utf8).write(to: URL(fileURLWithPath: store.path + ".tmp"))
        #expect(try store.load(identity: "n1")?.lastRound == 4)
        #expect(throws: StateError.self) { try store.load(identity: "n2") }
        let corrupt = Data("{\"version\": 1, \"identity\": \"n1\", \"spentJ\": -3".utf8)
        try corrupt.write(to: URL(fileURLWithPath: store.path))
        do {
            _ = try store.load(identity: "n1")
            Issue.record("a corrupt state was accepted")
        } catch {
            #expect(error.path == store.path && error.reason.hasPrefix("is corrupt"))
        }
        #expect(FileManager.default.contents(atPath: store.path) == corrupt, "the corrupt file is left as it was")
        let negative = try JSONEncoder().encode(
            {
                var n = NodeState(identity: "n1")
                n.spentJ = -1
                return n
            }())
        try negative.write(to: URL(fileURLWithPath: store.path))
        #expect(throws: StateError.self) { try store.load(identity: "n1") }
        // A path that is a file, not a directory.
        #expect(throws: StateError.self) { try NodeStateStore(directory: store.path) }
    }
}

/// The error-feedback residual survives a restart, and a damaged one is refused.
@Suite("Node residual", .serialized)
struct NodeResidualTests {
    @Test("the residual round-trips exactly; damage, a wrong size or a stray value is refused by name")
    func residual() throws {
        let dir = NSTemporaryDirectory() + "apt-residual-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try NodeStateStore(directory: dir)
        #expect(try store.loadResidual(sizes: [0: 3]) == nil)
        let residual: [UInt16: [Float]] = [0: [0.5, -0.25, 1e-7], 2: [3, 4]]
        try store.saveResidual(residual)
        #expect(try store.loadResidual(sizes: [0: 3, 2: 2]) == residual)
        #expect(throws: StateError.self) { try store.loadResidual(sizes: [0: 4, 2: 2]) }
        var bytes = try #require(FileManager.default.contents(atPath: store.residualPath))
        bytes[10] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: store.residualPath))
        do {
            _ = try store.loadResidual(sizes: [0: 3, 2: 2])
            Issue.record("a damaged residual was accepted")
        } catch {
            #expect(error.path == store.residualPath && error.reason.contains("checksum mismatch"))
        }
        #expect(FileManager.default.contents(atPath: store.residualPath) == bytes, "the damaged file is kept")
        // Restored into the sender's error feedback, it is what the next delta adds.
        var feedback = ErrorFeedback(residuals: residual)
        var random = RandomSource(seed: 1)
        let t = feedback.compress([0, 0, 0], layer: 0, bits: 16, random: &random)
        #expect(abs(t.dequantized()[0] - 0.5) < 1e-4)
    }
}
