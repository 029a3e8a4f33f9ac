import APTCore
import Foundation

/// The fleet as Prometheus metrics in the text exposition format, rendered from the ledger (so the figures are the
/// ledger's) and written for node_exporter's textfile collector: to a temporary file renamed over the target, so a
/// scrape never reads half a file. `apt-coord serve --metrics FILE` writes it after every round (docs/ledger.md).
public enum FleetMetrics {
    /// The metrics text for the ledger as it stands.
    public static func render(_ ledger: LedgerStore) throws -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for s in samples { out += "\(name)\(s.labels) \(number(s.value))\n" }
        }
        let rounds = try ledger.rounds()
        let completed = rounds.filter { $0.status == "completed" }
        family(
            "apt_rounds_completed_total", "counter", "Rounds completed.", [("", Double(completed.count))])
        family(
            "apt_rounds_failed_total", "counter", "Round attempts that failed for lack of quorum.",
            [("", Double(rounds.count - completed.count))])
        let last = try ledger.database.rows(
            "SELECT number, attempt FROM rounds WHERE status = 'completed' ORDER BY number DESC, attempt DESC LIMIT 1"
        ).first
        var byStatus: [String: Double] = [:]
        if let number = last?["number"].int, let attempt = last?["attempt"].int {
            for row in try ledger.database.rows(
                "SELECT status, COUNT(*) AS n FROM participations WHERE round = ? AND attempt = ? GROUP BY status",
                [.integer(Int64(number)), .integer(Int64(attempt))])
            {
                byStatus[row["status"].string ?? "?"] = Double(row["n"].int ?? 0)
            }
        }
        family(
            "apt_last_round_participants", "gauge", "Participants of the last completed round, by status.",
            ["ok", "partial", "late", "rejected", "dropped"].map { ("{status=\"\($0)\"}", byStatus[$0] ?? 0) })
        if let accuracy = completed.last?.accuracy {
            family(
                "apt_global_accuracy", "gauge", "Test accuracy of the global model after the last completed round.",
                [("", accuracy)])
        }
        let totals = try ledger.database.rows(
            "SELECT COALESCE(SUM(bytes_up), 0) AS up, COALESCE(SUM(bytes_down), 0) AS down FROM rounds"
        ).first
        family(
            "apt_bytes_total", "counter", "Protocol bytes of TASKs (down) and UPDATEs (up) over all rounds.",
            [
                ("{direction=\"up\"}", Double(totals?["up"].int ?? 0)),
                ("{direction=\"down\"}", Double(totals?["down"].int ?? 0)),
            ])
        let fleet = try ledger.fleet()
        func perNode(_ column: String) -> [(labels: String, value: Double)] {
            fleet.map { row in
                ("{node=\"\(escape(row["name"].string ?? ""))\"}", row[column].double ?? Double(row[column].int ?? 0))
            }
        }
        family(
            "apt_node_energy_used_joules", "counter", "Training energy a node reported, over all rounds (J).",
            perNode("energy_j"))
        family("apt_node_energy_budget_joules", "gauge", "A node's energy budget (J).", perNode("energy_budget_j"))
        family(
            "apt_node_peak_memory_bytes", "gauge", "The largest peak training memory a node reported (bytes).",
            perNode("peak_memory_bytes"))
        family(
            "apt_node_memory_budget_bytes", "gauge", "A node's training memory budget (bytes).",
            perNode("memory_budget_bytes"))
        family("apt_node_rounds_total", "counter", "Rounds a node took part in.", perNode("rounds"))
        family(
            "apt_node_state", "gauge", "1 for a node's state in the ledger (connected, idle, retired, distrusted).",
            fleet.map { row in
                (
                    "{node=\"\(escape(row["name"].string ?? ""))\",state=\"\(escape(row["state"].string ?? ""))\"}",
                    1
                )
            })
        return out
    }

    /// Writes `render(ledger)` to `path` atomically (`path.tmp`, renamed); returns the `errno` of a failure or 0.
    public static func write(_ ledger: LedgerStore, to path: String) throws -> Int32 {
        FileWriter.replace(path, with: Array(try render(ledger).utf8), mode: 0o644)
    }

    /// A label value with `\`, `"` and newlines escaped.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    /// A sample value: integers without a fraction, others in full precision, NaN/Inf as Prometheus spells them.
    static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
