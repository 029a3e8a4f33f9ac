import Foundation
import Testing

@testable import APTCore

/// Model specs arrive from files and over the network: every one is accepted or refused with a named error,
/// and none traps — including when an accepted one is built and trained for a step.
@Suite("Model spec robustness")
struct ModelSpecFuzzTests {
    /// A size drawn mostly small, sometimes at or past a limit, sometimes absurd.
    static func size(_ r: inout RandomSource) -> Int {
        switch r.next() % 10 {
        case 0: return [0, -1, -(1 << 62), Int.max, Int.min, 1 << 62, 1 << 31][Int(r.next() % 7)]
        case 1:
            return [ModelSpec.maxDimension, ModelSpec.maxDimension + 1, 255, 256, 1 << 24, (1 << 24) + 1][
                Int(r.next() % 6)]
        case 2, 3: return Int(r.next() % 300)
        default: return 1 + Int(r.next() % 12)
        }
    }

    static func layer(_ r: inout RandomSource) -> LayerSpec {
        switch r.next() % 6 {
        case 0: return .linear(outputs: size(&r))
        case 1: return .conv(outChannels: size(&r), kernel: size(&r), stride: size(&r), padding: size(&r))
        case 2:
            return .conv(
                outChannels: 1 + Int(r.next() % 8), kernel: 1 + Int(r.next() % 5), stride: 1, padding: Int(r.next() % 3)
            )
        case 3: return .relu
        case 4: return .maxPool(size: r.next() % 4 == 0 ? size(&r) : 2)
        default: return .flatten
        }
    }

    static func spec(_ r: inout RandomSource) -> ModelSpec {
        if r.next() % 3 == 0 {
            // A built-in model, mutated.
            var m = r.next() % 2 == 0 ? ModelSpec.mlp : ModelSpec.lenet
            for _ in 0..<(1 + Int(r.next() % 3)) {
                switch r.next() % 5 {
                case 0: m.layers[Int(r.next() % UInt64(m.layers.count))] = layer(&r)
                case 1: m.layers.insert(layer(&r), at: Int(r.next() % UInt64(m.layers.count + 1)))
                case 2: if m.layers.count > 1 { m.layers.remove(at: Int(r.next() % UInt64(m.layers.count))) }
                case 3: m.input[Int(r.next() % 3)] = size(&r)
                default: m.classes = size(&r)
                }
            }
            return m
        }
        let dims = r.next() % 8 == 0 ? Int(r.next() % 5) : 3
        let input = (0..<dims).map { _ in r.next() % 4 == 0 ? size(&r) : 1 + Int(r.next() % 16) }
        let layers = (0..<Int(r.next() % 7)).map { _ in layer(&r) }
        return ModelSpec(
            name: "fuzz", input: input, classes: r.next() % 3 == 0 ? size(&r) : 2 + Int(r.next() % 9),
            layers: layers + (r.next() % 2 == 0 ? [.flatten, .linear(outputs: 2 + Int(r.next() % 9))] : []))
    }

    @Test("10,000 random and mutated model specs: accepted, or refused with a named error; none traps")
    func fuzz() throws {
        var r = RandomSource(seed: 8)
        var accepted = 0
        var trained = 0
        var reasons: Set<String> = []
        for i in 0..<10_000 {
            let s = Self.spec(&r)
            do {
                let shapes = try s.validate()
                let counts = try s.parameterCounts()
                accepted += 1
                #expect(shapes.count == s.layers.count)
                #expect(counts.allSatisfy { $0 >= 1 && $0 <= ModelSpec.maxElements })
                // Small accepted specs are built and trained one step in fp32 and APT: the limits must cover
                // everything the engine does with a spec.
                let activations = shapes.map { $0.reduce(1, *) }.reduce(0, +)
                if counts.reduce(0, +) <= 50_000 && activations <= 20_000 && i % 5 == 0 {
                    for mode in [PrecisionMode.fp32, .apt] {
                        let q = TrainingConfiguration.defaultQuantization(precision: mode, tradeoff: 0.5)
                        var net = try Network(spec: s, mode: mode, quantization: q, seed: 1)
                        var ctx = StepContext(
                            mode: mode, quantization: q,
                            hyper: UpdateHyperparameters(learningRate: 0.01, momentum: 0.9),
                            random: RandomSource(seed: 2),
                            meter: EnergyMeter(profile: .generic45nm, layers: s.layers.count),
                            training: true)
                        let n = s.input.reduce(1, *)
                        let x = Batch(values: (0..<(2 * n)).map { Float($0 % 7) / 7 }, count: 2, shape: s.input)
                        let labels: [UInt8] = [0, UInt8(min(s.classes - 1, 1))]
                        var reference = net
                        var referenceContext = ctx
                        let loss = net.trainStep(x, labels: labels[...], context: &ctx)
                        #expect(loss.isFinite, "\(s)")
                        if mode == .apt {
                            // Floats handed between layers (no fusion, no per-image codes made by the layer
                            // above a pooling layer) give the same step bit for bit, whatever the shapes.
                            referenceContext.codesBetweenLayers = false
                            let l = reference.trainStep(x, labels: labels[...], context: &referenceContext)
                            #expect(l == loss && reference.parameterSnapshot == net.parameterSnapshot, "\(s)")
                        }
                    }
                    trained += 1
                }
            } catch {
                #expect(!error.message.isEmpty)
                #expect(error.message.contains("model '\(s.name)'"), "unnamed refusal: \(error.message)")
                reasons.insert(
                    String(error.message.split(separator: ":").dropFirst().first ?? "").prefix(20).description)
            }
        }
        #expect(accepted > 500, "the generator should produce valid specs too")
        #expect(trained > 50)
        #expect(reasons.count > 10, "refusals of many kinds: \(reasons.sorted())")
    }

    @Test("the specs that crashed the engine are refused by name")
    func knownCrashers() {
        let cases: [ModelSpec] = [
            // Padding 2^62: 2·p overflowed.
            ModelSpec(
                name: "pad", input: [1, 28, 28], classes: 10,
                layers: [.conv(outChannels: 1, kernel: 3, stride: 1, padding: 1 << 62), .flatten, .linear(outputs: 10)]),
            // 300×300 output positions: passed validation, trapped in the first backward pass.
            ModelSpec(
                name: "wide", input: [1, 300, 300], classes: 2,
                layers: [.conv(outChannels: 1, kernel: 1, stride: 1, padding: 0), .flatten, .linear(outputs: 2)]),
            // Unbounded weights.
            ModelSpec(
                name: "huge", input: [1, 1, 65536], classes: 2,
                layers: [.flatten, .linear(outputs: 65536), .linear(outputs: 2)]),
            ModelSpec(name: "overflow", input: [Int.max, 2, 2], classes: 2, layers: [.flatten, .linear(outputs: 2)]),
        ]
        for s in cases {
            #expect(throws: ConfigurationError.self, "\(s.name)") { try s.validate() }
        }
    }

    @Test("model spec JSON that is malformed is refused by the decoder, never trapped")
    func json() {
        let good =
            #"{"name":"t","input":[1,2,2],"classes":2,"layers":[{"type":"flatten"},{"type":"linear","outputs":2}]}"#
        var r = RandomSource(seed: 3)
        var decoded = 0
        for _ in 0..<2000 {
            var bytes = Array(good.utf8)
            for _ in 0..<(1 + Int(r.next() % 3)) {
                let at = Int(r.next() % UInt64(bytes.count))
                switch r.next() % 3 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: r.next())
                case 1: bytes.remove(at: at)
                default: bytes.insert(Array("9-e1\",{}[]".utf8)[Int(r.next() % 10)], at: at)
                }
            }
            if let s = try? JSONDecoder().decode(ModelSpec.self, from: Data(bytes)) {
                decoded += 1
                _ = try? s.validate()
            }
        }
        #expect(decoded < 2000)
    }
}
