import Foundation
import Testing

/// Runs the built executables as a user would and pins their output.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Where SwiftPM put the executables: beside the test bundle.
let productsDirectory: URL = {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("apt-node").path) && dir.path != "/" {
        dir = dir.deletingLastPathComponent()
    }
    return dir
}()

func run(
    _ tool: String, _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]
) throws -> Run {
    try run(
        executable: productsDirectory.appendingPathComponent(tool), arguments, in: directory, environment: environment)
}

/// Runs any executable to its end, capturing both output streams; `environment` is added to this process's.
func run(
    executable: URL, _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]
) throws -> Run {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if !environment.isEmpty {
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    }
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Run(
        status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
        stderr: String(decoding: e, as: UTF8.self))
}

func firstLine(_ s: String) -> String { String(s.split(separator: "\n", omittingEmptySubsequences: false).first ?? "") }

@Suite("apt-node on the command line")
struct CommandLineTests {
    @Test("benchmark: a static configuration with a bad width is named before anything runs, exit 64")
    func badStaticConfiguration() throws {
        for (spec, named) in [("static:8/6-17/8", "widths must be in 2...16, got 17"), ("static:8/8", "three widths")] {
            let r = try run("apt-node", ["benchmark", "--models", "mlp", "--precisions", spec])
            #expect(r.status == 64, "\(spec): \(r.stderr)")
            #expect(r.stderr.contains(named), "\(spec): \(r.stderr)")
            #expect(!r.stderr.contains("running:"), "\(spec) started runs")
        }
    }

    @Test("train: --adapt-error-bits bounds the widths the controller gives each layer's errors; a bad range is named")
    func adaptErrorBits() throws {
        let bad = try run("apt-node", ["train", "--adapt-error-bits", "9-6"])
        #expect(bad.status == 64 && bad.stderr.contains("--adapt-error-bits"), "\(bad.stderr)")
        let report = NSTemporaryDirectory() + "apt-report-\(UUID().uuidString).json"
        let r = try run(
            "apt-node",
            [
                "train", "--train-limit", "1000", "--test-limit", "200", "--epochs", "1", "--interval", "5",
                "--adapt-error-bits", "4-6", "--report", report,
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        let history = json?["bits_history"] as? [[String: Any]] ?? []
        let errors = history.filter { $0["kind"] as? String == "errors" }
        #expect(errors.count == 3)
        let widths = errors.flatMap { ($0["points"] as? [[Int]] ?? []).map { $0[1] } }
        // The knob's 8-bit errors start clamped into the range, and every width chosen stays in it.
        #expect(!widths.isEmpty && widths.allSatisfy { (4...6).contains($0) }, "\(widths)")
        #expect(errors.allSatisfy { ($0["points"] as? [[Int]])?.first?[1] == 6 })
        // Activations were not asked to adapt: they stay at the knob's 8 bits.
        let activations = history.filter { $0["kind"] as? String == "activations" }
        #expect(activations.allSatisfy { ($0["points"] as? [[Int]] ?? []).allSatisfy { $0[1] == 8 } })
    }

    @Test("an unknown flag: one Error line with a suggestion, usage, exit 64")
    func unknownFlag() throws {
        let r = try run("apt-node", ["train", "--epoch", "3"])
        #expect(r.status == 64)
        #expect(
            r.stderr == """
                Error: Unknown option '--epoch'. Did you mean '--epochs'?
                Usage: apt-node train [options]
                  See 'apt-node train --help' for more information.

                """)
        #expect(r.stdout.isEmpty)
    }

    @Test("a wrong model name")
    func wrongModel() throws {
        let r = try run("apt-node", ["train", "--model", "lenot"])
        #expect(r.status == 64)
        #expect(
            firstLine(r.stderr)
                == "Error: unknown model 'lenot' (expected lenet, mlp or a .json spec file). Did you mean 'lenet'?")
    }

    @Test("apt-node run: a round limit below one is refused before anything connects")
    func badRoundLimit() throws {
        let r = try run(
            "apt-node",
            [
                "run", "--coordinator", "tcp://127.0.0.1:1", "--name", "pi", "--state-dir",
                NSTemporaryDirectory() + "apt-never-\(UUID().uuidString)", "--energy-budget", "1", "--max-rounds", "0",
            ])
        #expect(r.status == 64)
        #expect(firstLine(r.stderr) == "Error: --max-rounds must be at least 1, got 0")
    }

    @Test("apt-node run: a data dir without the files is named, and no state dir is made")
    func runWithoutData() throws {
        let empty = NSTemporaryDirectory() + "apt-empty-\(UUID().uuidString)"
        let state = NSTemporaryDirectory() + "apt-state-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let r = try run(
            "apt-node",
            [
                "run", "--coordinator", "tcp://127.0.0.1:1", "--name", "pi", "--state-dir", state, "--energy-budget",
                "1", "--data", empty,
            ])
        #expect(r.status == 1)
        #expect(
            r.stderr == "Error: \(empty)/train-images-idx3-ubyte.gz: missing (neither "
                + "train-images-idx3-ubyte.gz nor train-images-idx3-ubyte is in \(empty))\n")
        #expect(!FileManager.default.fileExists(atPath: state))
    }

    @Test(
        "apt-node run: a corrupt or foreign state file is refused by name and left as it was",
        arguments: [
            ("{\"version\": 1, \"identity\": \"pi\", \"spentJ\": 0.25", "is corrupt ("),
            (
                "{\"version\":1,\"identity\":\"other\",\"spentJ\":0.25,\"committedJ\":0,\"lastRound\":3,\"modelRound\":3}",
                "belongs to node other, not pi"
            ),
            (
                "{\"version\":1,\"identity\":\"pi\",\"spentJ\":-1,\"committedJ\":0,\"lastRound\":3,\"modelRound\":3}",
                "holds a negative or non-finite energy figure"
            ),
        ])
    func runWithBadState(content: String, reason: String) throws {
        let dir = NSTemporaryDirectory() + "apt-state-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try content.write(toFile: dir + "/state.json", atomically: true, encoding: .utf8)
        let r = try run(
            "apt-node",
            [
                "run", "--coordinator", "tcp://127.0.0.1:1", "--name", "pi", "--state-dir", dir, "--energy-budget", "1",
                "--shard", "0/100",
            ])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("Error: \(dir)/state.json: \(reason)"), "\(r.stderr)")
        #expect(try String(contentsOfFile: dir + "/state.json", encoding: .utf8) == content)
    }

    @Test("a missing data directory names the file it looked for")
    func missingData() throws {
        let r = try run("apt-node", ["train", "--data", "/nonexistent"])
        #expect(r.status == 1)
        #expect(
            r.stderr == "Error: /nonexistent/train-images-idx3-ubyte.gz: missing (neither "
                + "train-images-idx3-ubyte.gz nor train-images-idx3-ubyte is in /nonexistent)\n")
    }

    @Test("a truncated IDX file names the file and the shortfall")
    func truncatedData() throws {
        let dir = NSTemporaryDirectory() + "apt-e2e-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // 100 images of 28×28 declared, 10 bytes present.
        try Data([0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 28, 0, 0, 0, 28] + [UInt8](repeating: 1, count: 10))
            .write(to: URL(fileURLWithPath: dir + "/train-images-idx3-ubyte"))
        try Data([0, 0, 8, 1, 0, 0, 0, 100] + [UInt8](repeating: 1, count: 100))
            .write(to: URL(fileURLWithPath: dir + "/train-labels-idx1-ubyte"))
        let r = try run("apt-node", ["train", "--data", dir])
        #expect(r.status == 1)
        #expect(
            r.stderr == "Error: \(dir)/train-images-idx3-ubyte: truncated: header declares [100, 28, 28] = "
                + "78400 bytes of data, file has 10\n")
    }

    @Test("a memory budget that cannot fit is refused before any data is read")
    func budgetRefused() throws {
        let r = try run("apt-node", ["train", "--memory-budget", "1k", "--data", "/nonexistent"])
        #expect(r.status == 1)
        #expect(
            firstLine(r.stderr).hasPrefix("Error: memory budget 1024 bytes is too small: mlp at apt, batch 64 needs "))
        let line = firstLine(r.stderr)
        let needs = line.split(separator: " ").reversed().dropFirst().first.flatMap { Int($0) } ?? 0
        #expect(line.contains("nothing fits: even batch 1 needs ") && line.hasSuffix(" bytes"))
        #expect(needs > 1024, "the smallest configuration cannot fit 1 KiB: \(line)")
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test(
        "bad values are named",
        arguments: [
            (["--precision", "fixed:40"], "Error: precision fixed:40 is out of range (N must be in 2...16)"),
            (["--epochs", "three"], "Error: --epochs expects a whole number, got 'three'"),
            (["--tradeoff", "2"], "Error: --tradeoff must be in [0, 1], got 2.0"),
            (
                ["--profile", "rpi5"],
                "Error: unknown profile 'rpi5' (expected generic-45nm, rpi4, jetson-nano, cortex-m7 or a .json file). Did you mean 'rpi4'?"
            ),
            (["--shard", "3/2"], "Error: --shard expects i/n with 0 ≤ i < n, got '3/2'"),
        ])
    func badValues(args: [String], expected: String) throws {
        let r = try run("apt-node", ["train"] + args)
        #expect(r.status == 64)
        #expect(firstLine(r.stderr) == expected)
    }

    @Test("--help on every subcommand")
    func help() throws {
        for sub in [
            ["--help"], ["train", "--help"], ["run", "--help"], ["benchmark", "--help"], ["benchmark-codec", "--help"],
            ["profiles", "--help"], ["keygen", "--help"],
        ] {
            let r = try run("apt-node", sub)
            #expect(r.status == 0, "\(sub)")
            #expect(r.stdout.hasPrefix("OVERVIEW: "), "\(sub)")
            #expect(r.stdout.contains("USAGE: apt-node"), "\(sub)")
            #expect(r.stderr.isEmpty)
        }
        let train = try run("apt-node", ["train", "--help"]).stdout
        for flag in [
            "--data", "--model", "--precision", "--tradeoff", "--epochs", "--batch", "--lr", "--profile",
            "--energy-budget", "--memory-budget", "--seed", "--shard", "--partition", "--report",
        ] {
            #expect(train.contains(flag), "train --help lacks \(flag)")
        }
    }

    @Test("a short real run writes the documented report")
    func shortRun() throws {
        let report = NSTemporaryDirectory() + "apt-report-\(UUID().uuidString).json"
        let r = try run(
            "apt-node",
            [
                "train", "--train-limit", "1000", "--test-limit", "500", "--epochs", "1",
                "--batch", "32", "--report", report, "--interval", "5",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("accuracy"))
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        for key in [
            "accuracy", "loss", "energy_j", "param_bytes", "peak_train_bytes", "peak_rss_bytes",
            "samples_per_s", "bits", "bits_history",
        ] {
            #expect(json?[key] != nil, "report lacks \(key)")
        }
        let acc = json?["accuracy"] as? Double ?? 0
        #expect(acc > 0.4, "1000 samples of Fashion-MNIST should beat chance clearly, got \(acc)")
        #expect((json?["bits"] as? [Int])?.count == 3)
        // bits_history: weights, activations and errors of each of the 3 weighted layers.
        let history = json?["bits_history"] as? [[String: Any]] ?? []
        #expect(
            history.compactMap { $0["kind"] as? String }
                == ["weights", "activations", "errors"].flatMap { [$0, $0, $0] })
        #expect((json?["peak_rss_bytes"] as? Int ?? 0) > 1_000_000)
    }

    @Test("an energy budget stops training at a step boundary, says so, and is never exceeded")
    func energyBudget() throws {
        let report = NSTemporaryDirectory() + "apt-budget-\(UUID().uuidString).json"
        let r = try run(
            "apt-node",
            [
                "train", "--train-limit", "3200", "--test-limit", "200", "--epochs", "1",
                "--energy-budget", "0.0005", "--report", report,
            ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("Stopped: energy budget 0.0005 J reached after "))
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        #expect(json?["stop_reason"] as? String == "energy_budget")
        let spent = json?["energy_j"] as? Double ?? 1
        #expect(spent <= 0.0005 && spent > 0)
        let steps = json?["iterations"] as? Int ?? 0
        #expect(steps > 0 && steps < 50, "3,200 samples are 50 steps; the budget must stop it early (\(steps))")
    }

    @Test("a JSON model spec trains; a malformed one is named")
    func jsonModel() throws {
        let dir = NSTemporaryDirectory() + "apt-model-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let good = dir + "/tiny.json"
        let bad = dir + "/bad.json"
        try Data(
            #"{"name":"tiny","input":[1,28,28],"classes":10,"layers":[{"type":"conv","channels":4,"kernel":3,"stride":2,"padding":1},{"type":"relu"},{"type":"maxpool","size":2},{"type":"flatten"},{"type":"linear","outputs":10}]}"#
                .utf8
        )
        .write(to: URL(fileURLWithPath: good))
        try Data(#"{"name":"bad","input":[1,28,28],"classes":10,"layers":[{"type":"dense","outputs":10}]}"#.utf8)
            .write(to: URL(fileURLWithPath: bad))
        let r = try run(
            "apt-node",
            [
                "train", "--model", good, "--train-limit", "640", "--test-limit", "200", "--epochs", "1",
                "--format", "json",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(json?["model"] as? String == "tiny")
        #expect((json?["bits"] as? [Int])?.count == 2)
        let b = try run("apt-node", ["train", "--model", bad])
        #expect(b.status == 64)
        #expect(firstLine(b.stderr).hasPrefix("Error: model spec '\(bad)' is not valid: unknown layer type 'dense'"))
    }
}
