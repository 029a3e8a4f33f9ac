import APTCore
import Foundation
import Testing

@testable import APTProtocol

/// The worked examples in docs/protocol.md, checked byte for byte against the encoder.
enum DocExamples {
    static let hello = Message.hello(
        Hello(
            name: "pi-1", version: ProtocolVersion(major: 1, minor: 0),
            profile: DeviceProfile(
                name: "rpi4", description: "", int8MultiplyPJ: 0.1, int32AddPJ: 0.05,
                fp32MultiplyPJ: 1.85, fp32AddPJ: 0.45, sramBytes: 1 << 20, sramPJPerByte: 6.25,
                dramPJPerByte: 162.5, memoryBytes: 2 << 30),
            energyBudgetJ: 10, memoryBudgetBytes: 1 << 20, localSamples: 6000,
            capabilities: [.apt, .topK, .errorFeedback]))

    static let update = Message.update(
        Update(
            round: 1, samplesTrained: 64,
            delta: [
                QuantizedTensor(layer: 0, count: 4, bits: 4, scale: .float32(0.5), indices: nil, codes: [1, -2, 7, 0])
            ],
            ledger: LedgerEntry(energyJ: 0.5, peakMemoryBytes: 1000, bits: [8], loss: 0.25, accuracy: 0.5, durationS: 1)
        ))

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

    @Test("the HELLO and UPDATE hex dumps in the doc are what the encoder writes", arguments: ["hello", "update"])
    func examples(which: String) throws {
        let m = which == "hello" ? DocExamples.hello : DocExamples.update
        let dump = DocExamples.hex(Frame.encode(m))
        let doc = try String(contentsOfFile: Self.docPath, encoding: .utf8)
        #expect(doc.contains(dump), "docs/protocol.md lacks the \(which) dump:\n\(dump)")
        #expect(try Frame.decode(Frame.encode(m)) == m)
    }
}
