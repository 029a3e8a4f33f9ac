import APTCoordinator
import Foundation
import Testing

/// `apt-coord demo`: a whole fleet of real processes, and nothing left running after it, even when interrupted.
@Suite("The demo", .serialized)
struct DemoTests {
    /// Processes whose command line mentions `text` (the demo's directory is in every child's arguments).
    func processes(mentioning text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else {
                return false
            }
            return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(text)
        }
    }

    func startDemo(_ arguments: [String], output: String) throws -> Process {
        let p = Process()
        p.executableURL = productsDirectory.appendingPathComponent("apt-coord")
        p.arguments = ["demo"] + arguments
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return p
    }

    @Test("a small secure demo runs to the end, prints every round and the ledger, and leaves nothing running")
    func completes() throws {
        let dir = NSTemporaryDirectory() + "apt-demo-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + ".out"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let demo = try startDemo(
            ["--nodes", "3", "--rounds", "3", "--steps", "5", "--secure", "--dir", dir], output: out)
        demo.waitUntilExit()
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(demo.terminationStatus == 0, "\(text)")
        for r in 1...3 { #expect(text.contains(String(format: "round %3d/3", r)), "\(text)") }
        #expect(text.contains("CURVE on"))
        #expect(text.contains("ledger: \(dir)/ledger.sqlite"))
        #expect(processes(mentioning: dir).isEmpty, "left running: \(processes(mentioning: dir))")
        // The ledger it printed is the ledger on disk: three nodes, three completed rounds, the poor one retired.
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let fleet = try ledger.fleet()
        #expect(fleet.count == 3)
        #expect(try ledger.rounds().filter { $0.status == "completed" }.count == 3)
        for row in fleet {
            #expect((row["energy_j"].double ?? .infinity) <= (row["energy_budget_j"].double ?? 0))
            #expect((row["peak_memory_bytes"].int ?? .max) <= (row["memory_budget_bytes"].int ?? 0))
            #expect(row["state"].string != "distrusted", "\(row)")
            #expect(text.contains(row["name"].string ?? "?"))
        }
        // Run again on the same directory: an earlier demo's directory is replaced.
        let again = try startDemo(["--nodes", "2", "--rounds", "1", "--steps", "2", "--dir", dir], output: out)
        again.waitUntilExit()
        #expect(again.terminationStatus == 0, "\((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")")
    }

    @Test("Ctrl-C (SIGINT) in the middle of a round stops every process the demo started")
    func interrupted() throws {
        let dir = NSTemporaryDirectory() + "apt-demo-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + ".out"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let demo = try startDemo(["--nodes", "4", "--rounds", "500", "--steps", "50", "--dir", dir], output: out)
        // Interrupt once rounds are under way.
        let end = Date().addingTimeInterval(60)
        while Date() < end, !((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("round   2/500") {
            usleep(20_000)
        }
        #expect(processes(mentioning: dir).count == 6, "the demo, a coordinator and four nodes run")
        kill(demo.processIdentifier, SIGINT)
        demo.waitUntilExit()
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(demo.terminationStatus == 1, "\(text)")
        #expect(text.contains("interrupted"), "\(text)")
        #expect(processes(mentioning: dir).isEmpty, "left running: \(processes(mentioning: dir))")
    }

    @Test("a directory that is not an earlier demo's is refused and left alone")
    func foreignDirectory() throws {
        let dir = NSTemporaryDirectory() + "apt-demo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "mine".write(toFile: dir + "/notes.txt", atomically: true, encoding: .utf8)
        let r = try run("apt-coord", ["demo", "--dir", dir])
        #expect(r.status == 1)
        #expect(
            firstLine(r.stderr) == "Error: \(dir) exists and is not an earlier demo's directory; choose another --dir")
        #expect(try String(contentsOfFile: dir + "/notes.txt", encoding: .utf8) == "mine")
    }
}
