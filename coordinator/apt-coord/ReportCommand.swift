import APTCommandLine
import APTCoordinator
import APTCore
import Foundation

/// `apt-coord report`: the ledger as one self-contained HTML page.
enum ReportCommand {
    static let spec = CommandSpec(
        name: "apt-coord report",
        overview: "Write the fleet ledger as one self-contained HTML file (inline SVG charts, no network needed to "
            + "view it): global accuracy per round, energy and peak memory per node against their budgets, weight "
            + "bits per layer over the rounds, bytes up and down, policy changes with their reasons. Opens the "
            + "ledger read-only, so it runs while apt-coord serve writes.",
        options: [
            .value("ledger", "file", "The ledger (SQLite) file.", required: true),
            .value("html", "file", "Where to write the report.", required: true),
        ])

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in
            let ledger = args.string("ledger", default: "")
            let out = args.string("html", default: "")
            try write(ledger: ledger, to: out)
            console.out("wrote \(out)\n")
        }
    }

    /// Renders the report of the ledger at `path` into `out` (atomically).
    static func write(ledger path: String, to out: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw CommandFailure("no ledger at \(path)") }
        let html: String
        do {
            html = try FleetReport.html(try LedgerStore(path: path, readOnly: true))
        } catch {
            throw CommandFailure("reading ledger \(path): \(error)")
        }
        let failure = FileWriter.replace(out, with: Array(html.utf8), mode: 0o644)
        guard failure == 0 else { throw CommandFailure("cannot write \(out): \(String(cString: strerror(failure)))") }
    }
}
