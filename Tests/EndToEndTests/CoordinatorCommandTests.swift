import APTCoordinator
import APTProtocol
import Foundation
import Testing

@Suite("apt-coord on the command line")
struct CoordinatorCommandTests {
    @Test("keygen in both tools takes a bare prefix in the working directory, even of one character")
    func keygenBarePrefix() throws {
        let dir = NSTemporaryDirectory() + "apt-keys-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (tool, prefix) in [("apt-coord", "c"), ("apt-node", "n")] {
            let r = try run(tool, ["keygen", "--out", prefix], in: dir)
            #expect(r.status == 0, "\(tool): \(r.stderr)")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/\(prefix).key"))
            #expect(FileManager.default.fileExists(atPath: "\(dir)/\(prefix).pub"))
        }
        let missing = try run("apt-node", ["keygen", "--out", "no-such-dir/node"], in: dir)
        #expect(missing.status == 1)
        #expect(firstLine(missing.stderr) == "Error: directory no-such-dir does not exist; create it first")
    }

    @Test("keygen writes a secret key readable only by its owner and a public key, and never overwrites silently")
    func keygen() throws {
        let prefix = NSTemporaryDirectory() + "apt-keys-\(UUID().uuidString)"
        let r = try run("apt-coord", ["keygen", "--out", prefix, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let attrs = try FileManager.default.attributesOfItem(atPath: prefix + ".key")
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        let pub = try String(contentsOfFile: prefix + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let sec = try String(contentsOfFile: prefix + ".key", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(pub.count == 40 && sec.count == 40 && pub != sec)
        #expect(r.stdout.contains(pub))
        let again = try run("apt-coord", ["keygen", "--out", prefix])
        #expect(again.status == 1)
        #expect(again.stderr == "Error: \(prefix).key exists; pass --force to overwrite it\n")
        #expect(try String(contentsOfFile: prefix + ".pub", encoding: .utf8).contains(pub), "the old key survives")
        let forced = try run("apt-coord", ["keygen", "--out", prefix, "--force"])
        #expect(forced.status == 0)
        #expect(try !String(contentsOfFile: prefix + ".pub", encoding: .utf8).contains(pub))
        // A missing directory is named, not a temporary file inside it.
        let missing = NSTemporaryDirectory() + "apt-no-such-dir-\(UUID().uuidString)"
        let nowhere = try run("apt-coord", ["keygen", "--out", missing + "/coordinator"])
        #expect(nowhere.status == 1)
        #expect(nowhere.stderr == "Error: directory \(missing) does not exist; create it first\n")
    }

    @Test("unknown subcommands and flags are usage errors")
    func usage() throws {
        let r = try run("apt-coord", ["keygne"])
        #expect(r.status == 64)
        #expect(firstLine(r.stderr) == "Error: Unknown subcommand 'keygne'. Did you mean 'keygen'?")
        let h = try run("apt-coord", ["keygen", "--help"])
        #expect(h.status == 0 && h.stdout.hasPrefix("OVERVIEW: "))
        let f = try run("apt-coord", ["keygen", "--outt", "x"])
        #expect(f.status == 64)
        #expect(firstLine(f.stderr) == "Error: Unknown option '--outt'. Did you mean '--out'?")
        // A code-width range must be lo-hi within 2...16; the flag is named and nothing is created.
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (flag, value) in [("--error-bits", "8-6"), ("--activation-bits", "1-8"), ("--error-bits", "six")] {
            let b = try run("apt-coord", ["serve", "--ledger", dir + "/ledger.sqlite", flag, value])
            #expect(b.status == 64 && b.stderr.contains(flag) && b.stderr.contains(value), "\(b.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/ledger.sqlite"))
    }

    /// A fresh directory, removed by the caller.
    func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "apt-serve-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("a ledger that is not SQLite, not a ledger, or from a newer apt-coord is refused by name and left as it was")
    func refusedLedgers() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try String(repeating: "not a database ", count: 40).write(
            toFile: dir + "/text.sqlite", atomically: true, encoding: .utf8)
        let other = try SQLiteDatabase(path: dir + "/other.sqlite")
        try other.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
        other.close()
        let newer = try LedgerStore(path: dir + "/newer.sqlite")
        try newer.database.run(
            "INSERT INTO schema_migrations (name, applied_at) VALUES ('v99-from-the-future', '2030-01-01')")
        newer.database.close()
        let cases = [
            ("text.sqlite", "is not an SQLite database (file is not a database)"),
            ("other.sqlite", "is an SQLite database but not an APT Fleet ledger (tables: photos)"),
            ("newer.sqlite", "was written by a newer apt-coord (it has migration 'v99-from-the-future')"),
        ]
        for (file, reason) in cases {
            let path = dir + "/" + file
            // Writes land in the -wal file first: both must be as they were.
            let contents = { [path + "", path + "-wal"].map { FileManager.default.contents(atPath: $0) } }
            let before = contents()
            let r = try run("apt-coord", ["serve", "--ledger", path, "--bind", "tcp://127.0.0.1:*"])
            #expect(r.status == 1, "\(file)")
            #expect(r.stderr.hasPrefix("Error: ledger \(path) \(reason)"), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one Error line: \(r.stderr)")
            #expect(contents() == before, "\(file) was modified")
        }
    }

    @Test("a ledger that already holds every round asked for is refused with what to do, not run silently")
    func finishedLedger() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/done.sqlite"
        do {
            let ledger = try LedgerStore(path: path)
            for round in 1...3 {
                try ledger.recordRound(
                    RoundRecord(number: round, attempt: 0, status: "completed", startedAt: "t", endedAt: "t"),
                    participations: [], checkpoint: [0, 0, 0, 0])
            }
        }
        let r = try run("apt-coord", ["serve", "--ledger", path, "--bind", "tcp://127.0.0.1:*", "--rounds", "3"])
        #expect(r.status == 1)
        #expect(
            firstLine(r.stderr)
                == "Error: ledger \(path) already holds all 3 rounds (the last completed is 3): pass more --rounds to "
                + "continue it, or use a new ledger")
    }

    @Test(
        "a missing model spec, an address in use, an unreadable key, a malformed allow-list: one Error line, no ledger")
    func refusedStarts() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run("apt-coord", ["keygen", "--out", dir + "/c"]).status == 0)
        try "# nodes\nnot-a-key\n".write(toFile: dir + "/bad-allow.txt", atomically: true, encoding: .utf8)
        try "".write(toFile: dir + "/allow.txt", atomically: true, encoding: .utf8)
        try "secret".write(toFile: dir + "/locked.key", atomically: true, encoding: .utf8)
        chmod(dir + "/locked.key", 0)
        let context = try ZMQContext()
        let squatter = try RouterEndpoint(context: context, bind: "tcp://127.0.0.1:*")
        defer { squatter.close() }
        let ledger = dir + "/ledger.sqlite"
        let cases: [([String], Int32, String)] = [
            (["--model", dir + "/missing.json"], 1, "Error: cannot read model spec file '\(dir)/missing.json'"),
            (
                ["--model", "lenett"], 64,
                "Error: unknown model 'lenett' (expected lenet, mlp or a .json spec file). Did you mean 'lenet'?"
            ),
            (["--bind", squatter.endpoint], 1, "Error: zmq_bind(\(squatter.endpoint)): Address already in use"),
            (
                ["--curve-secret", dir + "/nope.key", "--allow", dir + "/allow.txt"], 1,
                "Error: cannot read key file \(dir)/nope.key: No such file or directory"
            ),
            (
                ["--curve-secret", dir + "/c.key", "--allow", dir + "/bad-allow.txt"], 1,
                "Error: \(dir)/bad-allow.txt line 2: 'not-a-key' is not a 40-character Z85 CURVE public key"
            ),
            (
                ["--aggregator", "trimmed-mean:0.7"], 64,
                "Error: --aggregator expects fedavg, fedadam, median or trimmed-mean:BETA"
            ),
        ]
        // As root, a mode-0 file is still readable: check the unreadable key only where it is.
        let locked: [([String], Int32, String)] =
            getuid() == 0
            ? []
            : [
                (
                    ["--curve-secret", dir + "/locked.key", "--allow", dir + "/allow.txt"], 1,
                    "Error: cannot read key file \(dir)/locked.key: Permission denied"
                )
            ]
        for (args, status, message) in cases + locked {
            let r = try run("apt-coord", ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:*"] + args)
            #expect(r.status == status, "\(args): \(r.stderr)")
            #expect(r.stderr.hasPrefix(message), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: ledger), "\(args) created the ledger")
        }
    }

    @Test("apt-coord --help lists every subcommand, and each one's --help works")
    func help() throws {
        let root = try run("apt-coord", ["--help"])
        #expect(root.status == 0)
        for sub in [
            "serve", "ledger", "keygen", "benchmark-aggregation", "benchmark-fleet", "benchmark-scale", "demo",
            "report",
        ] {
            #expect(root.stdout.contains("\n  \(sub) "), "apt-coord --help lacks \(sub)")
            let h = try run("apt-coord", [sub, "--help"])
            #expect(h.status == 0 && h.stdout.hasPrefix("OVERVIEW: ") && h.stdout.contains("USAGE: apt-coord \(sub)"))
        }
        let serve = try run("apt-coord", ["serve", "--help"]).stdout
        for flag in ["--aggregator", "--clip-norm", "--server-lr", "--config", "--log-format", "--eval-data"] {
            #expect(serve.contains(flag), "serve --help lacks \(flag)")
        }
    }

    @Test("benchmark-fleet runs the same small fleet with APT and with float32 FedAvg and reports both")
    func fleetBenchmark() throws {
        let dir = NSTemporaryDirectory() + "apt-bench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(
            "apt-coord",
            [
                "benchmark-fleet", "--nodes", "2", "--rounds", "2", "--steps", "3", "--partitions", "labels:2",
                "--seeds", "1", "--dir", dir, "--format", "json",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(runs.map { $0["precision"] as? String } == ["apt", "fp32"])
        #expect(runs.allSatisfy { $0["partition"] as? String == "labels:2" && $0["seed"] as? Int == 1 })
        let summaries = runs.compactMap { $0["summary"] as? [String: Any] }
        try #require(summaries.count == 2)
        for (run, s) in zip(runs, summaries) {
            #expect(s["rounds"] as? Int == 2 && (s["accuracies"] as? [Double])?.count == 2, "\(s)")
            #expect(
                (run["peakNodeRSSBytes"] as? Int ?? 0) > 1 << 20
                    && (run["coordinatorPeakRSSBytes"] as? Int ?? 0) > 1 << 20)
            #expect((run["coordinatorCPUSeconds"] as? Double ?? 0) > 0)
        }
        func figure(_ i: Int, _ key: String) -> Double {
            (summaries[i][key] as? Double) ?? Double(summaries[i][key] as? Int ?? 0)
        }
        // The same work, priced by one rule: float32 costs more energy and memory and sends far more bytes.
        #expect(figure(1, "fleetEnergyJ") > 2 * figure(0, "fleetEnergyJ"))
        #expect(figure(1, "peakNodeMemoryBytes") > 1.5 * figure(0, "peakNodeMemoryBytes"))
        #expect(figure(1, "bytesUpPerNodeRound") > 8 * figure(0, "bytesUpPerNodeRound"))
        #expect(figure(1, "bytesDownPerNodeRound") > 1.5 * figure(0, "bytesDownPerNodeRound"))
        // Each run kept its ledger and logs.
        #expect(FileManager.default.fileExists(atPath: dir + "/labels-2-seed1-fp32/ledger.sqlite"))
        let bad = try run("apt-coord", ["benchmark-fleet", "--uplink-bits", "0", "--dir", dir])
        #expect(bad.status == 64 && bad.stderr.contains("--uplink-bits must be in 1...16"), "\(bad.stderr)")
    }

    @Test("benchmark-scale runs a coordinator against a simulated fleet and reports its rounds")
    func scaleBenchmark() throws {
        let dir = NSTemporaryDirectory() + "apt-scale-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(
            "apt-coord",
            [
                "benchmark-scale", "--counts", "4,12", "--rounds", "2", "--delay-ms", "10", "--dir", dir, "--format",
                "json",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["nodes"] as? Int } == [4, 12])
        for row in rows {
            #expect(row["roundsCompleted"] as? Int == 2 && row["problem"] == nil, "\(row)")
            #expect((row["updatesPerSecond"] as? Double ?? 0) > 0 && (row["roundLatencyS"] as? Double ?? 0) > 0)
            #expect((row["coordinatorPeakRSSBytes"] as? Int ?? 0) > 1 << 20)
            #expect((row["simulatorPeakRSSBytes"] as? Int ?? 0) > 1 << 20)
        }
    }

    @Test("benchmark-aggregation times the real UPDATE frames of the model and reports their size")
    func aggregationBenchmark() throws {
        let r = try run(
            "apt-coord",
            [
                "benchmark-aggregation", "--bits", "4", "--rules", "fedavg,trimmed-mean:0.25", "--nodes", "2",
                "--rounds", "1", "--format", "json",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        let frame = try #require(try AggregationBenchmark.updates(model: .mlp, bits: 4, nodes: 1).first)
        #expect(rows.map { $0["rule"] as? String } == ["fedavg", "trimmed-mean:0.25"])
        for row in rows {
            #expect(row["updateBytes"] as? Int == frame.count)
            #expect((row["megabytesPerSecond"] as? Double ?? 0) > 0)
            #expect(row["nodes"] as? Int == 2 && row["bits"] as? Int == 4)
        }
        let bad = try run("apt-coord", ["benchmark-aggregation", "--rules", "mean"])
        #expect(bad.status == 64 && firstLine(bad.stderr).contains("unknown rule 'mean'"))
    }
}
