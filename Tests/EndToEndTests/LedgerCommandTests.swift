import APTCoordinator
import Foundation
import Testing

/// `apt-coord ledger` reads a ledger the coordinator library wrote, read-only, as tables, JSON or CSV.
@Suite("apt-coord ledger")
struct LedgerCommandTests {
    func ledger() throws -> String {
        let path = NSTemporaryDirectory() + "apt-ledger-cli-\(UUID().uuidString).sqlite"
        let store = try LedgerStore(path: path)
        for (id, name) in [("KEYA", "pi-1"), ("KEYB", "pi-2")] {
            try store.upsertNode(
                NodeRecord(
                    identity: id, name: name, profileJSON: "{}", energyBudgetJ: 5, memoryBudgetBytes: 1 << 20,
                    localSamples: 6000, state: "connected"))
        }
        try store.recordRound(
            RoundRecord(
                number: 1, attempt: 0, status: "completed", startedAt: "2026-11-30T00:00:00Z",
                endedAt: "2026-11-30T00:00:02Z", accuracy: 0.71, loss: 0.9),
            participations: [
                ParticipationRecord(
                    identity: "KEYA", status: "ok", energyJ: 0.25, cumulativeEnergyJ: 0.25, peakMemoryBytes: 1_277_288,
                    parameterBytes: 470_292, bits: [14, 14, 12], samples: 640, stepsDone: 10, stepsAsked: 10,
                    bytesUp: 117_734, bytesDown: 470_453, durationS: 1.5),
                ParticipationRecord(
                    identity: "KEYB", status: "partial", reason: "deadline", energyJ: 0.125, cumulativeEnergyJ: 0.125,
                    peakMemoryBytes: 1_000_000, parameterBytes: 470_292, bits: [12, 12, 12], samples: 320,
                    stepsDone: 5, stepsAsked: 10, bytesUp: 117_734, bytesDown: 470_453, durationS: 3),
            ])
        return path
    }

    @Test("the fleet and round tables, JSON and CSV; one node's rounds")
    func formats() throws {
        let path = try ledger()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let table = try run("apt-coord", ["ledger", "--ledger", path])
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("name") == true && lines.first?.contains("energy_budget_j") == true)
        #expect(lines.contains { $0.hasPrefix("pi-1") && $0.contains("0.25") && $0.contains("1277288") })
        #expect(lines.contains { $0.hasPrefix("round") && $0.contains("accuracy") })
        let json = try run("apt-coord", ["ledger", "--ledger", path, "--format", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let nodes = try #require(object?["nodes"] as? [[String: Any]])
        #expect(nodes.count == 2)
        #expect((nodes.first { $0["name"] as? String == "pi-2" }?["samples"] as? Int) == 320)
        #expect((object?["rounds"] as? [[String: Any]])?.first?["accuracy"] as? Double == 0.71)
        let csv = try run("apt-coord", ["ledger", "--ledger", path, "--format", "csv", "--node", "pi-2"])
        #expect(csv.status == 0)
        #expect(csv.stdout.hasPrefix("round,attempt,status,reason,energy_j"))
        #expect(csv.stdout.contains("1,0,partial,deadline,0.125"))
        #expect(csv.stdout.contains("\"[12,12,12]\""), "a cell with commas is quoted")
    }

    @Test("a missing ledger is an error and is not created; bad usage exits 64")
    func errors() throws {
        let missing = NSTemporaryDirectory() + "apt-no-ledger-\(UUID().uuidString).sqlite"
        let r = try run("apt-coord", ["ledger", "--ledger", missing])
        #expect(r.status == 1)
        #expect(r.stderr == "Error: no ledger at \(missing)\n")
        #expect(!FileManager.default.fileExists(atPath: missing))
        let u = try run("apt-coord", ["ledger"])
        #expect(u.status == 64)
        #expect(firstLine(u.stderr) == "Error: Missing expected argument '--ledger <file>'.")
        let f = try run("apt-coord", ["ledger", "--ledger", missing, "--format", "xml"])
        #expect(f.status == 64)
    }
}
