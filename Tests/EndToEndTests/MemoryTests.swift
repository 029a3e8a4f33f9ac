import Foundation
import Testing

/// The heap the training steps really use, measured by `apt-heap-probe` (an interposed counting allocator in a
/// process of its own), against the engine's own figures.
@Suite("Real training memory", .serialized)
struct MemoryTests {
    func probe(_ model: String, _ precision: String) throws -> [String: Int] {
        let r = try run("apt-heap-probe", [model, precision, "12"])
        #expect(r.status == 0, "\(r.stderr)")
        var out: [String: Int] = [:]
        for field in r.stdout.split(whereSeparator: \.isWhitespace) {
            let kv = field.split(separator: "=")
            if kv.count == 2, let v = Int(kv[1]) { out[String(kv[0])] = v }
        }
        return out
    }

    @Test("APT's real heap high-water is below fp32's on both models; the mlp's by at least a third")
    func aptBelowFloat() throws {
        for model in ["mlp", "lenet"] {
            let fp32 = try probe(model, "fp32")
            let apt = try probe(model, "apt")
            let f = try #require(fp32["heap_peak_bytes"])
            let a = try #require(apt["heap_peak_bytes"])
            #expect(a < f, "\(model): APT \(a) B, fp32 \(f) B")
            if model == "mlp" { #expect(Double(a) <= 0.67 * Double(f), "mlp: APT \(a) B, fp32 \(f) B") }
            // The parameters and optimiser state the engine reports are really held: the heap is at least that.
            for (name, r) in [("fp32", fp32), ("apt", apt)] {
                let held = try #require(r["parameter_bytes"]) + (try #require(r["optimizer_bytes"]))
                #expect(try #require(r["heap_peak_bytes"]) >= held, "\(model) \(name)")
            }
        }
    }
}
