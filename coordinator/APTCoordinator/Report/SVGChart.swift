import Foundation

/// A chart drawn as inline SVG, so that a report is one self-contained file: a line chart (series of points)
/// or a bar chart (one bar per label), with axes, ticks and a legend.
struct SVGChart {
    /// One line of a line chart.
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        var dashed = false
    }

    static let palette = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    ]
    static let width = 640.0
    static let height = 300.0
    static let left = 64.0
    static let right = 150.0
    static let top = 28.0
    static let bottom = 40.0

    /// A line chart of `series` (x: rounds), y from `yRange` or the data.
    static func lines(
        id: String, title: String, xLabel: String, yLabel: String, series: [Series], yRange: ClosedRange<Double>? = nil
    ) -> String {
        let xs = series.flatMap { $0.points.map(\.x) }
        let ys = series.flatMap { $0.points.map(\.y) }
        let x0 = xs.min() ?? 0
        let x1 = max(xs.max() ?? 1, x0 + 1)
        var y0 = yRange?.lowerBound ?? min(0, ys.min() ?? 0)
        var y1 = yRange?.upperBound ?? (ys.max() ?? 1)
        if y1 <= y0 {
            y0 -= 0.5
            y1 += 0.5
        }
        let pw = width - left - right
        let ph = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + ph - (y - y0) / (y1 - y0) * ph }
        var svg = header(id: id, title: title, kind: "line", count: series.count)
        svg += axes(xLabel: xLabel, yLabel: yLabel, x0: x0, x1: x1, y0: y0, y1: y1, xTicks: true)
        for (i, s) in series.enumerated() where !s.points.isEmpty {
            let color = palette[i % palette.count]
            let points = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            svg +=
                "<polyline class=\"series\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\""
                + (s.dashed ? " stroke-dasharray=\"6 4\"" : "") + " points=\"\(points)\"><title>\(html(s.name))</title>"
                + "</polyline>\n"
            if s.points.count == 1, let p = s.points.first {
                // One point draws no line: a dot shows it.
                svg +=
                    "<circle class=\"series\" cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(color)\"/>\n"
            }
            svg += legend(i, s.name, color: color, dashed: s.dashed)
        }
        return svg + "</svg>\n"
    }

    /// A bar chart of one value per label, y from `yRange` or the data; `marker`, when given, draws a
    /// horizontal reference line (a budget at 100%).
    static func bars(
        id: String, title: String, yLabel: String, bars: [(label: String, value: Double)], yRange: ClosedRange<Double>,
        marker: (value: Double, label: String)? = nil
    ) -> String {
        let pw = width - left - right
        let ph = height - top - bottom
        let (y0, y1) = (yRange.lowerBound, max(yRange.upperBound, bars.map(\.value).max() ?? 0))
        func py(_ y: Double) -> Double { top + ph - (y - y0) / (y1 - y0) * ph }
        var svg = header(id: id, title: title, kind: "bar", count: bars.count)
        svg += axes(xLabel: "", yLabel: yLabel, x0: 0, x1: 1, y0: y0, y1: y1, xTicks: false)
        let slot = pw / Double(max(bars.count, 1))
        for (i, b) in bars.enumerated() {
            let x = left + Double(i) * slot + slot * 0.15
            let y = py(max(y0, b.value))
            svg +=
                "<rect class=\"series\" x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(slot * 0.7))\" "
                + "height=\"\(f(max(1, top + ph - y)))\" fill=\"\(palette[i % palette.count])\"><title>"
                + "\(html(b.label)): \(String(format: "%.1f", b.value))</title></rect>\n"
            svg +=
                "<text x=\"\(f(x + slot * 0.35))\" y=\"\(f(top + ph + 14))\" font-size=\"10\" "
                + "text-anchor=\"middle\">\(html(b.label))</text>\n"
        }
        if let m = marker {
            svg +=
                "<line x1=\"\(f(left))\" x2=\"\(f(left + pw))\" y1=\"\(f(py(m.value)))\" y2=\"\(f(py(m.value)))\" "
                + "stroke=\"#d62728\" stroke-dasharray=\"6 4\"/>\n"
            svg +=
                "<text x=\"\(f(left + pw + 4))\" y=\"\(f(py(m.value) + 4))\" font-size=\"11\" fill=\"#d62728\">"
                + "\(html(m.label))</text>\n"
        }
        return svg + "</svg>\n"
    }

    static func header(id: String, title: String, kind: String, count: Int) -> String {
        "<svg class=\"chart\" id=\"\(id)\" data-kind=\"\(kind)\" data-series=\"\(count)\" "
            + "xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(f(width)) \(f(height))\" width=\"\(f(width))\" "
            + "height=\"\(f(height))\" role=\"img\" aria-label=\"\(html(title))\">\n"
            + "<text x=\"\(f(left))\" y=\"18\" font-size=\"14\" font-weight=\"bold\">\(html(title))</text>\n"
    }

    static func axes(
        xLabel: String, yLabel: String, x0: Double, x1: Double, y0: Double, y1: Double, xTicks: Bool
    ) -> String {
        let pw = width - left - right
        let ph = height - top - bottom
        var s =
            "<line x1=\"\(f(left))\" y1=\"\(f(top + ph))\" x2=\"\(f(left + pw))\" y2=\"\(f(top + ph))\" stroke=\"#333\"/>\n"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + ph))\" stroke=\"#333\"/>\n"
        for k in 0...4 {
            let v = y0 + (y1 - y0) * Double(k) / 4
            let y = top + ph - ph * Double(k) / 4
            s += "<line x1=\"\(f(left))\" x2=\"\(f(left + pw))\" y1=\"\(f(y))\" y2=\"\(f(y))\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" font-size=\"10\" text-anchor=\"end\">\(tick(v))</text>\n"
        }
        if xTicks {
            // Whole rounds: ticks at integers, about five of them.
            let step = max(1, ((x1 - x0) / 5).rounded(.up))
            var v = x0.rounded(.up)
            while v <= x1 + 1e-9 {
                let x = left + (v - x0) / (x1 - x0) * pw
                s +=
                    "<text x=\"\(f(x))\" y=\"\(f(top + ph + 14))\" font-size=\"10\" text-anchor=\"middle\">"
                    + "\(tick(v))</text>\n"
                v += step
            }
        }
        s +=
            "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 6))\" font-size=\"11\" text-anchor=\"middle\">"
            + "\(html(xLabel))</text>\n"
        s +=
            "<text transform=\"translate(14 \(f(top + ph / 2))) rotate(-90)\" font-size=\"11\" "
            + "text-anchor=\"middle\">\(html(yLabel))</text>\n"
        return s
    }

    static func legend(_ i: Int, _ name: String, color: String, dashed: Bool) -> String {
        let x = width - right + 12
        let y = top + 10 + Double(i) * 16
        return "<line x1=\"\(f(x))\" x2=\"\(f(x + 18))\" y1=\"\(f(y))\" y2=\"\(f(y))\" stroke=\"\(color)\" "
            + "stroke-width=\"2\"" + (dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>"
            + "<text x=\"\(f(x + 22))\" y=\"\(f(y + 4))\" font-size=\"10\">\(html(name))</text>\n"
    }

    static func tick(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e9 { return String(Int(v)) }
        if abs(v) >= 100 { return String(format: "%.0f", v) }
        return String(format: "%.3g", v)
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Text made safe for HTML and SVG.
    static func html(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
