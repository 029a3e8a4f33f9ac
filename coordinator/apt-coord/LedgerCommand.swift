import APTCommandLine
import APTCoordinator
import Foundation

/// `apt-coord ledger`: the fleet ledger for an operator, read-only (it works while `serve` writes).
enum LedgerCommand {
    static let spec = CommandSpec(
        name: "apt-coord ledger",
        overview: "Show the fleet ledger: one row per node (rounds, samples, energy used against its budget, peak "
            + "memory against its budget, last seen) and the round history; or one node's rounds. Opens the file "
            + "read-only, so it can run while 'apt-coord serve' writes.",
        options: [
            .value("ledger", "file", "The ledger (SQLite) file.", required: true),
            .value("node", "key|name", "Show this node's rounds instead."),
            .value("format", "table|json|csv", "Output format.", default: "table"),
        ])

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in
            let path = args.string("ledger", default: "")
            let format = try args.choice("format", among: ["table", "json", "csv"])
            guard FileManager.default.fileExists(atPath: path) else { throw CommandFailure("no ledger at \(path)") }
            let store: LedgerStore
            do {
                store = try LedgerStore(path: path, readOnly: true)
            } catch {
                throw CommandFailure("cannot open ledger \(path): \(error)")
            }
            do {
                if let node = args["node"] {
                    let rows = try store.participations(node: node)
                    console.out(render(rows, title: "node \(node)", format: format))
                } else {
                    let fleet = try store.fleet()
                    let rounds = try store.roundHistory()
                    switch format {
                    case "json":
                        console.out("{\"nodes\": \(json(fleet)), \"rounds\": \(json(rounds))}\n")
                    default:
                        console.out(render(fleet, title: "nodes", format: format))
                        console.out("\n")
                        console.out(render(rounds, title: "rounds", format: format))
                    }
                }
            } catch {
                throw CommandFailure("reading ledger \(path): \(error)")
            }
        }
    }

    static func jsonValue(_ v: SQLiteValue) -> String {
        switch v {
        case .null: return "null"
        case .integer(let i): return String(i)
        case .real(let d): return d.isFinite ? String(d) : "null"
        case .text(let s):
            let data = (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8)
            return String(decoding: data, as: UTF8.self)
        case .blob(let b): return String(b.count)
        }
    }

    static func json(_ rows: [SQLiteRow]) -> String {
        "["
            + rows.map { r in
                "{" + zip(r.columns, r.values).map { "\"\($0)\": \(jsonValue($1))" }.joined(separator: ", ") + "}"
            }.joined(separator: ", ") + "]"
    }

    /// Rows as an aligned table (a heading line, then one line per row) or CSV (RFC 4180 quoting).
    static func render(_ rows: [SQLiteRow], title: String, format: String) -> String {
        if format == "json" { return json(rows) + "\n" }
        guard let columns = rows.first?.columns else { return format == "csv" ? "" : "(no \(title))\n" }
        let cells = rows.map { $0.values.map(\.displayText) }
        if format == "csv" {
            func quote(_ s: String) -> String {
                s.contains(where: { ",\"\n".contains($0) })
                    ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
            }
            return ([columns] + cells).map { $0.map(quote).joined(separator: ",") }.joined(separator: "\n") + "\n"
        }
        let widths = columns.indices.map { c in max(columns[c].count, cells.map { $0[c].count }.max() ?? 0) }
        func line(_ r: [String]) -> String {
            r.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        return ([line(columns)] + cells.map(line)).joined(separator: "\n") + "\n"
    }
}
