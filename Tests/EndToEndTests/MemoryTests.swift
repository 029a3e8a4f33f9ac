import Foundation
import Testing

/// The heap the training steps really use, measured by `apt-heap-probe` (an interposed counting allocator in a
/// process of its own), against the engine's own figures.
@Suite("Real training memory", .serialized)
struct MemoryTests {
    func probe(_ model: String, _ precision: String, knob: String = "0.5", codeBits: String? = nil) throws
        -> [String: Int]
    {
        let r = try run(
            "apt-heap-probe", [model, precision, "12", knob],
            environment: codeBits.map { ["APT_CODE_BITS": $0] } ?? [:])
        #expect(r.status == 0, "\(r.stderr)")
        var out: [String: Int] = [:]
        for field in r.stdout.split(whereSeparator: \.isWhitespace) {
            let kv = field.split(separator: "=")
            if kv.count == 2, let v = Int(kv[1]) { out[String(kv[0])] = v }
        }
        return out
    }

    @Test(
        "the real heap within 10% (fp32, APT at every knob step, mlp and lenet); APT below fp32, each knob step up lower"
    )
    func aptBelowFloat() throws {
        for model in ["mlp", "lenet"] {
            let fp32 = try probe(model, "fp32")
            let knobs = ["0", "0.25", "0.5", "0.75", "1"]
            let apt = try knobs.map { try probe(model, "apt", knob: $0) }
            let f = try #require(fp32["heap_peak_bytes"])
            let heaps = try apt.map { try #require($0["heap_peak_bytes"]) }
            let a = heaps[2]
            #expect(a < f, "\(model): APT \(a) B, fp32 \(f) B")
            if model == "mlp" { #expect(Double(a) <= 0.67 * Double(f), "mlp: APT \(a) B, fp32 \(f) B") }
            // Each step up of the knob holds less, in the real heap.
            for k in 1..<knobs.count {
                #expect(
                    heaps[k] < heaps[k - 1],
                    "\(model): knob \(knobs[k]) \(heaps[k]) B, knob \(knobs[k - 1]) \(heaps[k - 1]) B")
            }
            // The engine's figure is the heap the steps really hold, within 10%.
            let named = [("fp32", fp32)] + zip(knobs, apt).map { ("apt, knob \($0)", $1) }
            for (name, r) in named {
                let heap = Double(try #require(r["heap_peak_bytes"]))
                let figure = Double(try #require(r["peak_train_bytes"]))
                #expect(abs(figure - heap) <= 0.1 * heap, "\(model) \(name): peak_train_bytes \(figure), heap \(heap)")
            }
        }
    }

    @Test("with each layer's own activation and error bits, peak_train_bytes is still the real heap within 10%")
    func perLayerBits() throws {
        for (model, bits) in [("lenet", "8,6,5,7,8/6,8,7,5,8"), ("mlp", "5,8,6/8,6,7")] {
            let uniform = try probe(model, "apt")
            let mixed = try probe(model, "apt", codeBits: bits)
            let heap = Double(try #require(mixed["heap_peak_bytes"]))
            let figure = Double(try #require(mixed["peak_train_bytes"]))
            #expect(abs(figure - heap) <= 0.1 * heap, "\(model) \(bits): peak_train_bytes \(figure), heap \(heap)")
            #expect(mixed["heap_peak_bytes"] != uniform["heap_peak_bytes"], "\(model): the widths changed nothing")
        }
    }
}
