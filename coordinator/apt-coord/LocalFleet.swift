import APTCommandLine
import Foundation

/// A fleet on this machine: `apt-coord serve` and `apt-node run` processes on loopback, each logging JSON lines
/// to its own file in one directory. The demo and the fleet benchmark start theirs with it; `stopAll` stops every
/// process it started (SIGTERM, then SIGKILL after a grace period).
struct LocalFleet {
    /// Where the ledger, state dirs and logs go.
    let directory: String
    /// This `apt-coord` and the `apt-node` beside it.
    let tools: (coord: String, node: String)
    /// The Fashion-MNIST directory every node reads.
    let data: String
    private(set) var children = ChildProcesses()
    /// The coordinator's log, followed.
    let coordinatorLog: LogFollower

    init(directory: String, tools: (coord: String, node: String), data: String) {
        self.directory = directory
        self.tools = tools
        self.data = data
        coordinatorLog = LogFollower(path: directory + "/coordinator.log")
    }

    /// Starts `apt-coord` with `arguments` (a `serve` with `--log-format json`) and waits up to 30 s for it to say
    /// where it serves; returns the process, the endpoint and the events it logged before that line.
    mutating func startCoordinator(_ arguments: [String]) throws -> (
        process: Process, endpoint: String, early: [[String: Any]]
    ) {
        let serve = try children.start(tools.coord, arguments, log: directory + "/coordinator.log")
        var endpoint: String? = nil
        let deadline = Date().addingTimeInterval(30)
        var early: [[String: Any]] = []
        while endpoint == nil && Date() < deadline && serve.isRunning && !ShutdownSignal.requested {
            for event in coordinatorLog.newEvents() {
                if event["event"] as? String == "serving" {
                    endpoint = event["endpoint"] as? String
                } else {
                    early.append(event)
                }
            }
            usleep(20_000)
        }
        guard let endpoint else {
            if ShutdownSignal.requested { throw CommandFailure("interrupted") }
            throw CommandFailure("apt-coord serve did not start: \(coordinatorLog.tail())")
        }
        return (serve, endpoint, early)
    }

    /// Starts `apt-node run` for `board` on shard `shard` ("i/n") of the data, logging JSON to `DIR/NAME.log`;
    /// `extra` are further arguments (keys, precision).
    mutating func startNode(
        _ board: DemoCommand.Board, shard: String, endpoint: String, partition: String, seed: Int,
        extra: [String] = []
    ) throws {
        let arguments =
            [
                "run", "--coordinator", endpoint, "--name", board.name, "--state-dir", "\(directory)/\(board.name)",
                "--data", data, "--shard", shard, "--partition", partition, "--seed", String(seed), "--profile",
                board.profile.name, "--energy-budget", String(board.energyBudgetJ), "--memory-budget",
                String(board.memoryBudgetBytes), "--log-format", "json",
            ] + extra
        _ = try children.start(tools.node, arguments, log: "\(directory)/\(board.name).log")
    }

    /// Starts `apt-node` with `arguments` (any subcommand), logging to `DIR/LOG`.
    mutating func startNodeTool(_ arguments: [String], log: String) throws -> Process {
        try children.start(tools.node, arguments, log: "\(directory)/\(log)")
    }

    /// Waits up to `seconds` for every process to exit by itself.
    func waitForAll(seconds: Double) { children.waitForAll(seconds: seconds) }

    /// Stops every process still running and waits for each.
    func stopAll() { children.stopAll() }
}

/// The processes the demo started, stopped together: SIGTERM (each stops cleanly), SIGKILL after a grace period.
struct ChildProcesses {
    private(set) var processes: [Process] = []

    /// Starts `tool` with `arguments`, standard error and output to `log`.
    mutating func start(_ tool: String, _ arguments: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: log) else { throw CommandFailure("cannot write \(log)") }
        p.standardError = handle
        p.standardOutput = handle
        do {
            try p.run()
        } catch {
            throw CommandFailure("cannot start \(tool): \(error.localizedDescription)")
        }
        processes.append(p)
        return p
    }

    /// Waits up to `seconds` for every process to exit by itself.
    func waitForAll(seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while processes.contains(where: \.isRunning) && Date() < end { usleep(50_000) }
    }

    /// Stops every process still running and waits for each.
    func stopAll() {
        for p in processes where p.isRunning { p.terminate() }
        let end = Date().addingTimeInterval(10)
        while processes.contains(where: \.isRunning) && Date() < end { usleep(20_000) }
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for p in processes { p.waitUntilExit() }
    }
}

/// Reads a growing JSON-lines log: each call returns the complete new lines parsed as objects.
final class LogFollower {
    let path: String
    private var offset: UInt64 = 0
    private var pending = Data()

    init(path: String) { self.path = path }

    func newEvents() -> [[String: Any]] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: offset)
        } catch {
            return []
        }
        let data = handle.readDataToEndOfFile()
        offset += UInt64(data.count)
        pending.append(data)
        var events: [[String: Any]] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending[pending.startIndex..<newline]
            pending.removeSubrange(pending.startIndex...newline)
            if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] {
                events.append(object)
            }
        }
        return events
    }

    /// The last lines of the file, for an error message.
    func tail() -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(3).joined(separator: " | ")
    }
}
