import CZmq
import Foundation
import Synchronization

/// The set of node public keys a coordinator accepts, read from an allow-list file: one Z85 key per line,
/// `#` starts a comment, blank lines are ignored.
public struct AllowList: Hashable, Sendable {
    /// The accepted keys, Z85.
    public var keys: Set<String>

    /// An allow-list of `keys` (each must be a valid Z85 CURVE key).
    public init(keys: Set<String>) { self.keys = keys }

    /// Parses the text of an allow-list file; `path` names it in errors.
    public static func parse(_ text: String, path: String) throws(SecurityError) -> AllowList {
        var keys: Set<String> = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let key = line.trimmingCharacters(in: .whitespaces)
            if key.isEmpty { continue }
            guard CurveKeyPair.decode(z85: key) != nil else {
                throw SecurityError(
                    "\(path) line \(i + 1): '\(key.prefix(60))' is not a 40-character Z85 CURVE public key")
            }
            keys.insert(key)
        }
        return AllowList(keys: keys)
    }

    /// Reads an allow-list file.
    public static func load(path: String) throws(SecurityError) -> AllowList {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SecurityError("cannot read allow-list \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }
}
