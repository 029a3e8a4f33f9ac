import APTCore
import APTProtocol
import Testing

@testable import APTCoordinator

/// The TASK carries the global model in the node's own fixed-point formats.
@Suite("TASK model encoding")
struct TaskEncodingTests {
    @Test("weights go at the bits the node last reported (or APT's start), held inside its policy's range")
    func bits() {
        let policy = Policy(layerBits: [.init(min: 6, max: 12), .init(min: 8, max: 16), .init(min: 4, max: 4)])
        #expect(CoordinatorServer.taskBits(reported: nil, policy: policy, start: 10) == [10, 10, 4])
        #expect(CoordinatorServer.taskBits(reported: nil, policy: policy, start: 2) == [6, 8, 4])
        #expect(CoordinatorServer.taskBits(reported: [10, 14, 9], policy: policy, start: 8) == [10, 14, 4])
        #expect(CoordinatorServer.taskBits(reported: [2, 16], policy: policy, start: 12) == [6, 16, 4])
    }

    @Test("each tensor is within half a step of the float model, with a power-of-two step")
    func encoding() throws {
        var r = RandomSource(seed: 3)
        let model: [[Float]] = [40, 5, 30, 3].map { n in (0..<n).map { _ in r.nextUnitFloat() - 0.5 } }
        let tensors = CoordinatorServer.encode(model, weightBits: [6, 11], round: 2)
        #expect(tensors.map(\.bits) == [6, 16, 11, 16])
        for (t, v) in zip(tensors, model) {
            guard case .powerOfTwo(let e) = t.scale else {
                Issue.record("tensor \(t.layer) has a float scale")
                continue
            }
            let step = Float(sign: .plus, exponent: Int(e), significand: 1)
            for (a, b) in zip(t.dequantized(), v) { #expect(abs(a - b) <= step / 2 + 1e-7, "tensor \(t.layer)") }
        }
    }
}

/// Prometheus text format details.
@Suite("Fleet metrics")
struct FleetMetricsTests {
    @Test("label values are escaped and numbers are spelled as Prometheus reads them")
    func spelling() {
        #expect(FleetMetrics.escape("pi \"4\"\\b\nc") == "pi \\\"4\\\"\\\\b\\nc")
        #expect(FleetMetrics.number(3) == "3")
        #expect(FleetMetrics.number(0.25) == "0.25")
        #expect(FleetMetrics.number(.nan) == "NaN")
        #expect(FleetMetrics.number(-.infinity) == "-Inf")
    }
}
