import Foundation

/// The fleet ledger as one self-contained HTML page (`apt-coord report`): inline SVG charts of global accuracy per
/// round, each node's cumulative energy against its budget, peak training memory against budget, per-layer weight
/// bits over the rounds for each node, bytes up and down per round, and the policy changes with their reasons.
/// Nothing is fetched when it is viewed. A small inline script checks, in the browser, that every chart has
/// something drawn and counts script errors; it writes both onto `<body>` (`data-charts`, `data-empty-charts`,
/// `data-errors`), which is what the headless-browser test reads.
public enum FleetReport {
    /// The page for the ledger as it stands.
    public static func html(_ ledger: LedgerStore, title: String = "APT Fleet report") throws -> String {
        let db = ledger.database
        let rounds = try db.rows(
            """
            SELECT number, accuracy, bytes_up, bytes_down, energy_j FROM rounds WHERE status = 'completed'
            ORDER BY number
            """)
        let nodes = try db.rows(
            "SELECT id, name, state, energy_budget_j, memory_budget_bytes FROM nodes ORDER BY name, identity")
        let participations = try db.rows(
            """
            SELECT node_id, round, status, cumulative_energy_j, peak_memory_bytes, bits FROM participations
            WHERE status IN ('ok', 'partial', 'late', 'rejected') ORDER BY node_id, round, attempt
            """)
        let byNode = Dictionary(grouping: participations) { $0["node_id"].int ?? -1 }
        var charts: [String] = []
        var notes: [String] = []

        // 1. Global accuracy.
        let accuracy = rounds.compactMap { r in r["accuracy"].double.map { (x: Double(r["number"].int ?? 0), y: $0) } }
        if accuracy.isEmpty {
            notes.append("No global accuracy: the coordinator ran without --eval-data.")
        } else {
            charts.append(
                SVGChart.lines(
                    id: "accuracy", title: "Global accuracy per round", xLabel: "round", yLabel: "test accuracy",
                    series: [.init(name: "global model", points: accuracy)], yRange: 0...1))
        }
        // 2. Cumulative energy against budget, as a share of each node's own budget.
        var energy: [SVGChart.Series] = []
        var memory: [(label: String, value: Double)] = []
        for n in nodes {
            let id = n["id"].int ?? -1
            let name = n["name"].string ?? "?"
            let budget = n["energy_budget_j"].double ?? 0
            let rows = byNode[id] ?? []
            if budget > 0 {
                energy.append(
                    .init(
                        name: name,
                        points: rows.map { r in
                            (Double(r["round"].int ?? 0), 100 * (r["cumulative_energy_j"].double ?? 0) / budget)
                        }))
            }
            let memoryBudget = Double(n["memory_budget_bytes"].int ?? 0)
            let peak = Double(rows.compactMap { $0["peak_memory_bytes"].int }.max() ?? 0)
            if memoryBudget > 0 { memory.append((name, 100 * peak / memoryBudget)) }
        }
        let lastRound = Double(rounds.last?["number"].int ?? 1)
        if energy.contains(where: { !$0.points.isEmpty }) {
            energy.append(.init(name: "budget", points: [(1, 100), (max(lastRound, 2), 100)], dashed: true))
            charts.append(
                SVGChart.lines(
                    id: "energy", title: "Cumulative energy per node, % of its budget", xLabel: "round",
                    yLabel: "% of energy budget", series: energy, yRange: 0...100))
        } else {
            notes.append("No node has trained yet.")
        }
        if memory.contains(where: { $0.value > 0 }) {
            charts.append(
                SVGChart.bars(
                    id: "memory", title: "Peak training memory per node, % of its budget", yLabel: "% of memory budget",
                    bars: memory, yRange: 0...100, marker: (100, "budget")))
        }
        // 3. Per-layer weight bits over the rounds, one small chart per node.
        var bitCharts: [String] = []
        for n in nodes {
            let rows = byNode[n["id"].int ?? -1] ?? []
            let bits = rows.map { r in (Double(r["round"].int ?? 0), Self.bits(r["bits"].string ?? "[]")) }
            let layers = bits.map(\.1.count).max() ?? 0
            guard layers > 0 else { continue }
            let series = (0..<layers).map { k in
                SVGChart.Series(
                    name: "layer \(k + 1)",
                    points: bits.compactMap { round, b in k < b.count ? (round, Double(b[k])) : nil })
            }
            let name = n["name"].string ?? "?"
            bitCharts.append(
                SVGChart.lines(
                    id: "bits-\(bitCharts.count)", title: "Weight bits per layer: \(name)", xLabel: "round",
                    yLabel: "bits", series: series, yRange: 0...16))
        }
        // 4. Bytes on the wire.
        var traffic: [SVGChart.Series] = []
        if !rounds.isEmpty {
            traffic = [
                .init(
                    name: "up (UPDATEs)",
                    points: rounds.map { (Double($0["number"].int ?? 0), Double($0["bytes_up"].int ?? 0) / 1e3) }),
                .init(
                    name: "down (TASKs)",
                    points: rounds.map { (Double($0["number"].int ?? 0), Double($0["bytes_down"].int ?? 0) / 1e3) }),
            ]
            charts.append(
                SVGChart.lines(
                    id: "bytes", title: "Bytes on the wire per round", xLabel: "round", yLabel: "kB", series: traffic))
        }
        // 5. Policy changes and what happened to nodes.
        let changes = try db.rows(
            """
            SELECT p.round, n.name, p.reason FROM policies p JOIN nodes n ON n.id = p.node_id
            WHERE p.reason LIKE 'pushed: %' OR p.id IN (SELECT MIN(id) FROM policies GROUP BY node_id)
            ORDER BY p.round, n.name
            """)
        let events = try db.rows(
            """
            SELECT e.round, n.name, e.kind, e.detail FROM events e LEFT JOIN nodes n ON n.id = e.node_id
            ORDER BY e.id
            """)
        let fleet = try ledger.fleet()

        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(SVGChart.html(title))</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
            .charts { display: flex; flex-wrap: wrap; gap: 16px; }
            svg.chart { background: #fff; border: 1px solid #ddd; max-width: 100%; height: auto; }
            table { border-collapse: collapse; font-size: 12px; margin: 8px 0 24px; }
            td, th { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
            th { background: #f4f4f4; }
            .note { color: #666; }
            </style></head>
            <body data-charts="0" data-empty-charts="-1" data-errors="0">
            <h1>\(SVGChart.html(title))</h1>

            """
        let final = accuracy.last.map { String(format: "%.4f", $0.y) } ?? "–"
        let totalEnergy = rounds.reduce(0.0) { $0 + ($1["energy_j"].double ?? 0) }
        page +=
            "<p>\(rounds.count) rounds completed, \(nodes.count) nodes, final global accuracy \(final), "
            + "fleet training energy \(String(format: "%.4g", totalEnergy)) J.</p>\n"
        for note in notes { page += "<p class=\"note\">\(SVGChart.html(note))</p>\n" }
        page += "<h2>The fleet</h2>\n<div class=\"charts\">\n" + charts.joined() + "</div>\n"
        if !bitCharts.isEmpty {
            page += "<h2>Weight bits per layer</h2>\n<div class=\"charts\">\n" + bitCharts.joined() + "</div>\n"
        }
        page +=
            "<h2>Policy changes</h2>\n"
            + table(
                ["round", "node", "reason"],
                changes.map { [$0["round"].displayText, $0["name"].displayText, $0["reason"].displayText] })
        page +=
            "<h2>Events</h2>\n"
            + table(
                ["round", "node", "kind", "detail"],
                events.map {
                    [$0["round"].displayText, $0["name"].displayText, $0["kind"].displayText, $0["detail"].displayText]
                })
        page +=
            "<h2>Nodes</h2>\n"
            + table(fleet.first?.columns ?? [], fleet.map { r in r.values.map(\.displayText) })
        page += """
            <script>
            (function () {
              var errors = 0;
              window.addEventListener('error', function () { errors += 1; document.body.dataset.errors = errors; });
              var charts = document.querySelectorAll('svg.chart');
              var empty = 0;
              charts.forEach(function (c) {
                var drawn = 0;
                c.querySelectorAll('.series').forEach(function (s) {
                  var box = s.getBBox();
                  if (box.width > 0 || box.height > 0) { drawn += 1; }
                });
                if (drawn === 0) { empty += 1; }
              });
              document.body.dataset.charts = charts.length;
              document.body.dataset.emptyCharts = empty;
            })();
            </script>
            </body></html>

            """
        return page
    }

    /// A JSON array of integers as the ledger stores bits, or [] when it is not one.
    static func bits(_ json: String) -> [Int] {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [Int]) ?? []
    }

    static func table(_ columns: [String], _ rows: [[String]]) -> String {
        guard !rows.isEmpty else { return "<p class=\"note\">None.</p>\n" }
        var s = "<table><tr>" + columns.map { "<th>\(SVGChart.html($0))</th>" }.joined() + "</tr>\n"
        for r in rows { s += "<tr>" + r.map { "<td>\(SVGChart.html($0))</td>" }.joined() + "</tr>\n" }
        return s + "</table>\n"
    }
}
