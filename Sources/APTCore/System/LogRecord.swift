/// One line of an operator's log: what happened (`event`), the sentence a person reads, and the facts as named
/// fields, so that `--log-format json` prints the same line for machines (one JSON object per line: `event`,
/// `message`, then the fields in order).
public struct LogRecord: Sendable, Equatable {
    /// A field's value.
    public enum Value: Sendable, Equatable {
        /// Text.
        case string(String)
        /// A whole number.
        case integer(Int)
        /// A number (non-finite values are written as null in JSON).
        case number(Double)
        /// A list.
        case list([Value])
    }

    /// What happened, a stable lower-case word (`round`, `joined`, `reconnecting`, …).
    public var event: String
    /// The line a person reads.
    public var message: String
    /// The facts, in order.
    public var fields: [(name: String, value: Value)]

    /// Creates a record.
    public init(_ event: String, _ message: String, _ fields: [(name: String, value: Value)] = []) {
        self.event = event
        self.message = message
        self.fields = fields
    }

    public static func == (a: LogRecord, b: LogRecord) -> Bool {
        a.event == b.event && a.message == b.message && a.fields.map(\.name) == b.fields.map(\.name)
            && a.fields.map(\.value) == b.fields.map(\.value)
    }

    /// The value of field `name`, if present.
    public subscript(name: String) -> Value? { fields.first { $0.name == name }?.value }

    /// The record as one line of JSON.
    public var json: String {
        var out = "{\"event\":\(Self.quote(event)),\"message\":\(Self.quote(message))"
        for (name, value) in fields { out += ",\(Self.quote(name)):\(Self.json(value))" }
        return out + "}"
    }

    static func json(_ v: Value) -> String {
        switch v {
        case .string(let s): return quote(s)
        case .integer(let n): return String(n)
        case .number(let d): return d.isFinite ? "\(d)" : "null"
        case .list(let items): return "[" + items.map(json).joined(separator: ",") + "]"
        }
    }

    /// `s` as a JSON string literal.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
