/// Why bytes from the wire were refused. Every decoder failure is one of these, never a crash.
public enum WireError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The frame ended before a field: `field` needed `needed` bytes at `offset`, `available` were left.
    case truncated(field: String, offset: Int, needed: Int, available: Int)
    /// The frame does not start with the magic bytes `APTF`.
    case badMagic([UInt8])
    /// The peer speaks another major version.
    case unsupportedVersion(major: UInt8, minor: UInt8)
    /// Unknown message type code.
    case unknownMessageType(UInt8)
    /// The header's payload length disagrees with the frame.
    case lengthMismatch(declared: Int, actual: Int)
    /// A declared size is above the limit (checked before any allocation).
    case tooLarge(field: String, declared: Int, limit: Int)
    /// The payload's CRC-32C does not match the header's.
    case checksumMismatch(expected: UInt32, actual: UInt32)
    /// A field holds a value outside its domain.
    case invalidValue(field: String, reason: String)
    /// Bytes left over after the last field of a message of the same or older minor version.
    case trailingBytes(field: String, count: Int)

    public var description: String {
        switch self {
        case .truncated(let f, let o, let n, let a):
            return "truncated frame: \(f) needs \(n) bytes at offset \(o), \(a) left"
        case .badMagic(let b): return "bad magic \(b.map { String($0, radix: 16) }) (expected 41 50 54 46, 'APTF')"
        case .unsupportedVersion(let major, let minor):
            return "unsupported protocol version \(major).\(minor) (this peer speaks \(ProtocolVersion.current))"
        case .unknownMessageType(let t): return "unknown message type \(t)"
        case .lengthMismatch(let d, let a): return "header declares a \(d)-byte payload, frame carries \(a)"
        case .tooLarge(let f, let d, let l): return "\(f) declares \(d), above the limit \(l)"
        case .checksumMismatch(let e, let a):
            return "checksum mismatch: header says \(String(e, radix: 16)), payload hashes to \(String(a, radix: 16))"
        case .invalidValue(let f, let r): return "invalid \(f): \(r)"
        case .trailingBytes(let f, let c): return "\(c) unexpected trailing bytes after \(f)"
        }
    }
}

/// The protocol's version. A peer with another major version is refused; a newer minor version's extra
/// fields are skipped.
public struct ProtocolVersion: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Incompatible changes bump this.
    public var major: UInt8
    /// Compatible additions bump this.
    public var minor: UInt8
    /// Creates a version.
    public init(major: UInt8, minor: UInt8) {
        self.major = major
        self.minor = minor
    }
    /// The version this build speaks.
    public static let current = ProtocolVersion(major: 2, minor: 2)
    public var description: String { "\(major).\(minor)" }
}
