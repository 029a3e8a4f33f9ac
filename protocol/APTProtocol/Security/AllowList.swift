import CZmq
import Foundation
import Synchronization

/// The set of node public keys a coordinator accepts, read from an allow-list file: one Z85 key per line.
///
/// A line whose first non-blank character is `#` is a comment; blank lines are ignored. `#` is a Z85
/// character, so a comment may not follow a key on the same line. Lines may end in LF, CRLF or CR. Any other
/// line is refused with its number.
public struct AllowList: Hashable, Sendable {
    /// The accepted keys, Z85.
    public var keys: Set<String>

    /// An allow-list of `keys` (each must be a valid Z85 CURVE key).
    public init(keys: Set<String>) { self.keys = keys }

    /// Parses the text of an allow-list file; `path` names it in errors.
    public static func parse(_ text: String, path: String) throws(SecurityError) -> AllowList {
        var keys: Set<String> = []
        // Work on bytes: Swift's String treats CRLF as one character, so splitting on "\n" would miss it.
        let bytes = Array(text.utf8)
        var lineNumber = 0
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x0A && bytes[end] != 0x0D { end += 1 }
            lineNumber += 1
            let line = String(decoding: bytes[start..<end], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if !line.isEmpty && !line.hasPrefix("#") {
                guard CurveKeyPair.decode(z85: line) != nil else {
                    throw SecurityError(
                        "\(path) line \(lineNumber): '\(line.prefix(60))' is not a 40-character Z85 CURVE public key "
                            + "(comments must start their own line)")
                }
                keys.insert(line)
            }
            if end + 1 < bytes.count && bytes[end] == 0x0D && bytes[end + 1] == 0x0A { end += 1 }
            start = end + 1
        }
        return AllowList(keys: keys)
    }

    /// Reads an allow-list file.
    public static func load(path: String) throws(SecurityError) -> AllowList {
        try parse(try KeyFiles.readText(path: path, what: "allow-list"), path: path)
    }
}
