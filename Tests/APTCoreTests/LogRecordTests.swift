import Foundation
import Testing

@testable import APTCore

/// `--log-format json`: every record is one line of valid JSON with its event, message and fields in order.
@Suite struct LogRecordTests {
    @Test func jsonIsOneValidLineWithEveryField() throws {
        let r = LogRecord(
            "round", "round 3: \"quoted\"\\path\nnext\u{01}",
            [
                ("round", .integer(3)), ("loss", .number(0.25)), ("bad", .number(.nan)),
                ("bits", .list([.integer(8), .integer(12)])), ("who", .string("pi-1 ✓")),
            ])
        let line = r.json
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["event"] as? String == "round")
        #expect(object["message"] as? String == r.message)
        #expect(object["round"] as? Int == 3)
        #expect(object["loss"] as? Double == 0.25)
        #expect(object["bad"] is NSNull)
        #expect(object["bits"] as? [Int] == [8, 12])
        #expect(object["who"] as? String == "pi-1 ✓")
        #expect(line.hasPrefix("{\"event\":\"round\",\"message\":"), "event and message come first")
        #expect(r["round"] == .integer(3) && r["missing"] == nil)
    }
}
