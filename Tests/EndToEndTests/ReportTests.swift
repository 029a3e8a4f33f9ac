import APTCoordinator
import Foundation
import Testing

/// `apt-coord report`: one self-contained HTML file, checked in a real headless browser (Debian's chromium).
@Suite("The HTML report", .serialized)
struct ReportTests {
    /// Runs headless Chromium with `arguments`: the DOM after the page's scripts ran, and what it logged.
    func chromium(_ arguments: [String]) throws -> Run {
        try run(
            executable: URL(fileURLWithPath: "/usr/bin/chromium"),
            ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"] + arguments)
    }

    @Test("the demo's report draws every chart in Chromium, logs nothing, and fetches nothing")
    func drawnInChromium() throws {
        let dir = NSTemporaryDirectory() + "apt-report-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let demo = try run(
            "apt-coord", ["demo", "--nodes", "3", "--rounds", "3", "--steps", "5", "--dir", dir])
        #expect(demo.status == 0, "\(demo.stdout)\(demo.stderr)")
        let report = dir + "/report.html"
        #expect(demo.stdout.contains("report: \(report)"))
        let html = try String(contentsOfFile: report, encoding: .utf8)
        // Self-contained: no resource is loaded from anywhere (the SVG namespace is a name, not a fetch).
        for pattern in ["src=", "href=", "@import", "url("] { #expect(!html.contains(pattern), "\(pattern)") }
        let page = try chromium(["--dump-dom", "file://" + report])
        #expect(page.status == 0, "\(page.stderr)")
        let body = try #require(
            page.stdout.range(of: "<body[^>]*>", options: .regularExpression).map { String(page.stdout[$0]) },
            "no body in \(page.stdout.prefix(300))")
        // Accuracy, energy, memory, bytes, and one weight-bits chart per node that trained.
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let trained = try ledger.database.rows(
            "SELECT DISTINCT node_id FROM participations WHERE status IN ('ok', 'partial', 'late', 'rejected')"
        ).count
        #expect(trained >= 1)
        #expect(body.contains("data-charts=\"\(4 + trained)\""), "\(body)")
        #expect(body.contains("data-empty-charts=\"0\""), "\(body)")
        #expect(body.contains("data-errors=\"0\""), "\(body)")
        let consoleLines = page.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(consoleLines.isEmpty, "the page logged: \(consoleLines)")
        // Every node is in the page, by name.
        for name in ["pi4-0", "jetson-1", "m7-2"] { #expect(html.contains(name)) }
    }

    @Test("a missing ledger is named; nothing is written")
    func missingLedger() throws {
        let out = NSTemporaryDirectory() + "apt-report-\(UUID().uuidString).html"
        let r = try run("apt-coord", ["report", "--ledger", "/nonexistent/ledger.sqlite", "--html", out])
        #expect(r.status == 1)
        #expect(firstLine(r.stderr) == "Error: no ledger at /nonexistent/ledger.sqlite")
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
