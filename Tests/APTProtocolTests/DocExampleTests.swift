import APTCore
import Foundation
import Testing

@testable import APTProtocol

/// The worked examples in docs/protocol.md, checked byte for byte against the encoder.
enum DocExamples {
    /// The model of the WELCOME example: 3×3 input, one 2×2 convolution, ReLU, 2×2 pooling, two classes.
    static let tinyModel = ModelSpec(
        name: "tiny", input: [1, 3, 3], classes: 2,
        layers: [
            .conv(outChannels: 1, kernel: 2, stride: 1, padding: 0), .relu, .maxPool(size: 2), .flatten,
            .linear(outputs: 2),
        ])

    static let policy = Policy(
        layerBits: [.init(min: 8, max: 16), .init(min: 4, max: 8)], tradeoff: 0.5, localEpochs: 0, localSteps: 20,
        batchSize: 32, learningRate: 0.05, uplinkBits: 4, uplinkDensity: 0.25, roundEnergyJ: 0.5,
        errorBits: [.init(min: 6, max: 8), .init(min: 8, max: 8)])

    static let hello = Message.hello(
        Hello(
            name: "pi-1", version: .current,
            profile: DeviceProfile(
                name: "rpi4", description: "", int8MultiplyPJ: 0.1, int32AddPJ: 0.05,
                fp32MultiplyPJ: 1.85, fp32AddPJ: 0.45, sramBytes: 1 << 20, sramPJPerByte: 6.25,
                dramPJPerByte: 162.5, memoryBytes: 2 << 30, multiplierWidth: .storage),
            energyBudgetJ: 10, memoryBudgetBytes: 1 << 20, localSamples: 6000,
            capabilities: [.apt, .topK, .errorFeedback]))

    static let welcome = Message.welcome(Welcome(nodeId: 7, model: tinyModel, policy: policy))

    static let task = Message.task(
        TrainingTask(
            round: 3, attempt: 1, timeoutMs: 60_000, payload: .fullModel, baseRound: 0,
            tensors: [
                QuantizedTensor(
                    layer: 0, count: 4, bits: 8, scale: .powerOfTwo(exponent: -7), indices: nil,
                    codes: [64, -32, 16, 127]),
                QuantizedTensor(
                    layer: 1, count: 1, bits: 8, scale: .powerOfTwo(exponent: -7), indices: nil, codes: [-5]),
                QuantizedTensor(
                    layer: 2, count: 2, bits: 8, scale: .powerOfTwo(exponent: -7), indices: nil, codes: [100, -100]),
                QuantizedTensor(
                    layer: 3, count: 2, bits: 8, scale: .powerOfTwo(exponent: -7), indices: nil, codes: [1, 0]),
            ], policy: policy))

    static let policyMessage = Message.policy(policy)

    static let update = Message.update(
        Update(
            round: 1, attempt: 0, samplesTrained: 64, stepsDone: 1, stepsAsked: 1, stopReason: .completed,
            delta: [
                QuantizedTensor(layer: 0, count: 4, bits: 4, scale: .float32(0.5), indices: nil, codes: [1, -2, 7, 0])
            ],
            ledger: LedgerEntry(energyJ: 0.5, peakMemoryBytes: 1000, bits: [8], loss: 0.25, accuracy: 0.5, durationS: 1)
        ))

    static let sparseUpdate = Message.update(
        Update(
            round: 3, attempt: 1, samplesTrained: 384, stepsDone: 12, stepsAsked: 20, stopReason: .deadline,
            delta: [
                QuantizedTensor(
                    layer: 2, count: 10, bits: 3, scale: .float32(0.125), indices: [1, 4, 9], codes: [3, -2, 1])
            ],
            ledger: LedgerEntry(
                energyJ: 0.25, peakMemoryBytes: 4096, bits: [12, 6], loss: 0.5, accuracy: 0.75, durationS: 4)
        ))

    static let all: [String: Message] = [
        "hello": hello, "welcome": welcome, "task": task, "policy": policyMessage, "update": update,
        "sparse-update": sparseUpdate,
    ]

    static func hex(_ bytes: [UInt8]) -> String {
        stride(from: 0, to: bytes.count, by: 16).map { o in
            let line = bytes[o..<min(bytes.count, o + 16)].map { b in
                let s = String(b, radix: 16)
                return s.count == 1 ? "0" + s : s
            }.joined(separator: " ")
            let off = String(o, radix: 16)
            return String(repeating: "0", count: 4 - off.count) + off + ": " + line
        }.joined(separator: "\n")
    }
}

@Suite("docs/protocol.md examples")
struct DocExampleTests {
    static let docPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/protocol.md").path

    @Test(
        "every hex dump in the doc is what the encoder writes, and decodes back",
        arguments: ["hello", "welcome", "task", "policy", "update", "sparse-update"])
    func examples(which: String) throws {
        let m = try #require(DocExamples.all[which])
        let dump = DocExamples.hex(Frame.encode(m))
        let doc = try String(contentsOfFile: Self.docPath, encoding: .utf8)
        #expect(
            doc.contains("<!-- example: \(which) -->\n```\n\(dump)\n```"),
            "docs/protocol.md lacks the \(which) dump:\n\(dump)")
        #expect(try Frame.decode(Frame.encode(m)) == m)
    }

    @Test("the example model and sizes are consistent with the spec's formulas")
    func exampleModel() throws {
        #expect(try DocExamples.tinyModel.parameterCounts() == [4, 1, 2, 2])
        #expect(DocExamples.policy.topK(count: 10) == 2)
        #expect(DocExamples.policy.topK(count: 3) == 1)
        #expect(DocExamples.policy.topK(count: 1) == nil)
        // The payload limits the document states for the built-in models.
        #expect(try DecodeLimits(serving: .mlp).maxPayloadBytes == 1_376_629)
        #expect(try DecodeLimits(serving: .lenet).maxPayloadBytes == 509_557)
    }
}
